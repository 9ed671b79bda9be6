"""Generic data pieces every lab uses: image loading, the decode-once cache, CSV reading, class
folders, splits, batch loaders and the expansion of image arguments. Lab-specific readers (the fashion
CSV cleaning, CIFAR pickles, IDX files) live in their lab.

The names below are re-exported lazily (PEP 562): importing one submodule (say `images`) does not
import the others, so light commands never load torch."""
from __future__ import annotations

import importlib

_HOMES = {
    "cache": ["cache_root", "decode_images"],
    "csv": ["CsvReport", "read_csv", "require_columns"],
    "folders": ["ImageSet", "load_folder", "scan_folder"],
    "paths": ["IMAGE_EXTS", "expand_images"],
    "images": ["EMPTY", "MISSING", "OK", "STATUS_NAMES", "TOO_LARGE", "UNREADABLE", "DataError", "ImageError",
               "fit_image", "load_image", "to_rgb"],
    "loaders": ["ArrayDataset", "batch_loader"],
    "splits": ["stratified_split", "take_per_class", "val_split"],
}
_WHERE = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"vislab.core.data.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
