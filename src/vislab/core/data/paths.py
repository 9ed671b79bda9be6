"""Image arguments as a user types them: files, folders (searched recursively) and glob patterns
(`shop/*.jpg`, `photos/**/*.png`), expanded to a sorted list of image files before any model is loaded."""
from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from vislab.core.errors import DataError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
"""File extensions (lower case) taken as images when a folder is searched."""


def _is_pattern(text: str) -> bool:
    return any(c in text for c in "*?[")


def folder_images(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursive; hidden files and folders skipped), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def expand_images(items: Iterable[str | Path]) -> list[Path]:
    """Files as given, folders as their images (recursive), glob patterns as their matches; duplicates
    dropped, order kept. Anything that names nothing is one DataError listing what was not found."""
    out: dict[Path, None] = {}
    problems: list[str] = []
    for item in items:
        text = str(item)
        p = Path(text).expanduser()
        if p.is_dir():
            found = folder_images(p)
            if not found:
                problems.append(f"folder {p} holds no images ({', '.join(sorted(IMAGE_EXTS))})")
            out.update(dict.fromkeys(found))
        elif p.is_file():
            out[p] = None
        elif _is_pattern(text):
            found = [Path(m) for m in sorted(glob.glob(str(p), recursive=True)) if Path(m).is_file()]
            if not found:
                problems.append(f"pattern {text!r} matches no file")
            out.update(dict.fromkeys(found))
        else:
            problems.append(f"{p}: no such file or folder")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DataError("; ".join(problems[:5]) + more)
    if not out:
        raise DataError("no images given")
    return list(out)
