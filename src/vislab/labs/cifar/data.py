"""CIFAR-10 readers: the original python pickles (an unpickler that only admits numpy arrays and plain
containers: a pickle can run code, this one cannot) and torchvision's CIFAR10 download (a clear error
offline). Class folders use `vislab.core.data.load_folder`."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from vislab.core.data.folders import ImageSet
from vislab.core.data.images import DataError

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class _SafeUnpickler(pickle.Unpickler):
    """Admits only what the CIFAR pickles contain: numpy arrays, dtypes and builtin containers."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: not part of a CIFAR-10 batch file")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except FileNotFoundError:
        raise DataError(f"{path}: CIFAR-10 batch file missing") from None
    except (pickle.UnpicklingError, KeyError, ValueError, EOFError, TypeError) as e:
        raise DataError(f"{path}: not a valid CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if len(data) != len(labels) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels, or labels outside 0-9")
    return data, labels


def load_cifar_pickles(root: str | Path) -> tuple[ImageSet, ImageSet]:
    """(train, test) from the original `cifar-10-batches-py` folder (root itself or root/cifar-10-batches-py)."""
    root = Path(root)
    d = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    tr = [_read_batch(d / f"data_batch_{i}") for i in range(1, 6)]
    te = _read_batch(d / "test_batch")
    x, y = np.concatenate([a for a, _ in tr]), np.concatenate([b for _, b in tr])
    return (ImageSet(x, y, list(CIFAR10_CLASSES), f"cifar pickles {d}"),
            ImageSet(te[0], te[1], list(CIFAR10_CLASSES), f"cifar pickles {d}"))


def load_torchvision_cifar(root: str | Path, download: bool = True) -> tuple[ImageSet, ImageSet]:
    """torchvision.datasets.CIFAR10 (downloads ~170 MB once when online; checks its MD5)."""
    from torchvision.datasets import CIFAR10
    out = []
    for train in (True, False):
        try:
            ds = CIFAR10(str(root), train=train, download=download)
        except Exception as e:  # URLError, RuntimeError("Dataset not found or corrupted")
            raise DataError(f"torchvision CIFAR-10 could not be {'downloaded to' if download else 'found in'} {root} "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:160]}). Offline? Put the python pickles in "
                            f"{root}/cifar-10-batches-py (data.source=pickles) or use class folders "
                            "(data.source=folder).") from None
        out.append(ImageSet(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64),
                            list(ds.classes), f"torchvision CIFAR10 {root}"))
    return out[0], out[1]
