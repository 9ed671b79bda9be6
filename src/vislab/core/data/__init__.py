"""Generic data pieces every lab uses: image loading, the decode-once cache, CSV reading, class
folders, splits and batch loaders. Lab-specific readers (the fashion CSV cleaning, CIFAR pickles,
IDX files) live in their lab."""
from vislab.core.data.cache import cache_root, decode_images
from vislab.core.data.csv import CsvReport, read_csv, require_columns
from vislab.core.data.folders import IMAGE_EXTS, ImageSet, load_folder, scan_folder
from vislab.core.data.images import (
           EMPTY,
           MISSING,
           OK,
           STATUS_NAMES,
           TOO_LARGE,
           UNREADABLE,
           DataError,
           ImageError,
           fit_image,
           load_image,
           to_rgb,
)
from vislab.core.data.loaders import ArrayDataset, batch_loader
from vislab.core.data.splits import stratified_split, take_per_class, val_split

__all__ = ["cache_root", "decode_images", "CsvReport", "read_csv", "require_columns", "IMAGE_EXTS", "ImageSet",
           "load_folder", "scan_folder", "EMPTY", "MISSING", "OK", "STATUS_NAMES", "TOO_LARGE", "UNREADABLE",
           "DataError", "ImageError", "fit_image", "load_image", "to_rgb", "ArrayDataset", "batch_loader",
           "stratified_split", "take_per_class", "val_split"]
