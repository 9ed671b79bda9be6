"""Class-folder datasets held in memory as uint8 arrays (N, 3, H, W): `ImageSet`, `scan_folder`,
`load_folder` (torchvision's ImageFolder layout: root/<class>/<image>, decoded once and cached;
corrupt, empty and non-image files are skipped and counted)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vislab.core.data.cache import decode_images
from vislab.core.data.images import EMPTY, MISSING, OK, TOO_LARGE, UNREADABLE, DataError
from vislab.core.data.paths import IMAGE_EXTS  # noqa: E402,F401  (re-exported)

_STATUS = {MISSING: "missing", EMPTY: "empty file", UNREADABLE: "unreadable (corrupt or not an image)",
           TOO_LARGE: "over the decompression-bomb limit"}


@dataclass
class ImageSet:
    images: np.ndarray
    """uint8 (N, C, H, W): 3 channels, or 1 for grayscale sets such as Fashion-MNIST."""
    labels: np.ndarray
    """int64 (N,), indices into `classes`."""
    classes: list[str]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    """Files left out, by reason (non-image files, corrupt images ...)."""
    skipped_examples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self, index: np.ndarray | None = None) -> dict[str, int]:
        lab = self.labels if index is None else self.labels[index]
        c = np.bincount(lab, minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, c)}


# --------------------------------------------------------------------------- class folders


def scan_folder(root: str | Path,
                classes: Sequence[str] | None = None) -> tuple[list[Path], np.ndarray, list[str], list[Path]]:
    """(image paths, labels, classes, other files) of root/<class>/<file>.

    With `classes` (e.g. the training classes when reading a test folder) a folder of an unknown
    class is an error; a missing class folder is allowed (that class is simply not evaluated).
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder does not exist")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"{root}: no class folders (expected root/<class>/<image>, the ImageFolder layout)")
    if classes is None:
        classes = found
    else:
        classes = list(classes)
        extra = sorted(set(found) - set(classes))
        if extra:
            raise DataError(f"{root}: class folders {extra} are not among the model's classes {classes}")
    paths, labels, other = [], [], []
    for k, c in enumerate(classes):
        d = root / c
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                (paths if p.suffix.lower() in IMAGE_EXTS else other).append(p)
                if p.suffix.lower() in IMAGE_EXTS:
                    labels.append(k)
    return paths, np.asarray(labels, dtype=np.int64), list(classes), other


def load_folder(root: str | Path, size: tuple[int, int] = (32, 32), classes: Sequence[str] | None = None,
                cache_dir: str | None = None, workers: int = 0, progress: bool = True,
                require_all: bool = True) -> ImageSet:
    """Every image under root/<class>/, decoded once to `size` (cached); bad files skipped and counted."""
    paths, labels, classes, other = scan_folder(root, classes)
    if not paths:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_EXTS))}) in the class folders")
    images, status, _ = decode_images(paths, tuple(size), cache_dir, workers, progress)
    ok = status == OK
    skipped = {"not an image file (by extension)": len(other)} if other else {}
    for s, name in _STATUS.items():
        n = int((status == s).sum())
        if n:
            skipped[name] = n
    examples = [str(p) for p in other[:3]] + [str(paths[i]) for i in np.flatnonzero(~ok)[:5]]
    keep = np.flatnonzero(ok)
    images = images if ok.all() else np.asarray(images[keep])
    labels = labels[keep]
    counts = np.bincount(labels, minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty and require_all:
        raise DataError(f"{root}: class folders {empty} hold no readable image; every class needs examples")
    return ImageSet(images, labels, classes, f"folder {root}", skipped, examples)
