"""What to tag: image files, folders (recursive), glob patterns, or a CSV with an image column (a catalog
export). Everything is resolved to a list of paths before the model loads; CSV rows that cannot name an
image (malformed line, empty cell) become rows with an error, so the output accounts for every input row."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vislab.core.data.paths import expand_images
from vislab.core.errors import DataError


@dataclass
class TagInput:
    path: str
    """The image path as written to the output (the key `--resume` skips on)."""
    error: str = ""
    """Set when the input row names no image: the row is written with this error, never decoded."""
    id: str = ""
    """The product id: the CSV cell (e.g. Kaggle's 15970), else the file name without its extension."""

    def __post_init__(self):
        if not self.id:
            self.id = Path(self.path).stem if not self.error else self.path


def from_csv(csv: Path, image_col: str, image_dir: str | Path | None = None, image_ext: str = ".jpg") -> list[TagInput]:
    """One input per CSV row. Values are absolute paths or relative to `image_dir` (default: the CSV's folder);
    `image_ext` is appended to values without an extension (Kaggle styles.csv: id 15970 -> 15970.jpg)."""
    from vislab.core.data.csv import read_csv
    df, rep = read_csv(csv)
    if image_col not in df.columns:
        raise DataError(f"{csv} has no column {image_col!r} (columns: {', '.join(map(str, df.columns))}); "
                        "name the image column with --image-col")
    base = Path(image_dir) if image_dir is not None else csv.parent
    if image_dir is not None and not base.is_absolute() and not base.is_dir():
        base = csv.parent / base
    if not base.is_dir():
        raise DataError(f"image folder {base} does not exist (--image-dir)")
    out = [TagInput(f"{csv}:{line}", f"malformed CSV line {line} (fewer fields than the header)")
           for line in rep.malformed]
    for i, v in enumerate(df[image_col].tolist()):
        if v is None or v != v:  # None or NaN: an empty cell
            out.append(TagInput(f"{csv}:row {i + 1}", f"empty {image_col!r} cell"))
            continue
        p = Path(v).expanduser()
        if not p.suffix and image_ext:
            p = p.with_name(p.name + image_ext)
        pid = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        out.append(TagInput(str(p if p.is_absolute() else base / p), id=pid))
    if not out:
        raise DataError(f"{csv} has no rows")
    return out


def resolve_inputs(items: list[str], image_col: str | None = None, image_dir: str | None = None,
                   image_ext: str = ".jpg") -> list[TagInput]:
    """A single .csv argument is a catalog; anything else is files, folders and patterns."""
    if len(items) == 1 and items[0].lower().endswith(".csv"):
        csv = Path(items[0]).expanduser()
        if not csv.is_file():
            raise DataError(f"CSV file {csv} does not exist")
        return from_csv(csv, image_col or "image", image_dir, image_ext)
    if image_col is not None:
        raise DataError("--image-col applies to a CSV input; the input is files, folders or patterns")
    return [TagInput(str(p)) for p in expand_images(items)]
