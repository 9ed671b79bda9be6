"""Fashion-MNIST: the IDX reader (gzip or not, every IDX type, clear errors naming the file), the
torchvision download, and the lab's in-memory data with its per-class validation split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vislab.core.data.folders import ImageSet
from vislab.core.data.images import DataError
from vislab.core.data.splits import take_per_class, val_split
from vislab.labs.vae.config import VaeRunConfig

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot"]


FASHION_MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


# IDX type codes (third magic byte) -> big-endian numpy dtypes
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """An IDX file (LeCun's MNIST format; `.gz` read transparently) as a numpy array.

    Header: two zero bytes, a type code, the number of dimensions, then each dimension as a
    big-endian uint32; the data follows. A wrong magic number, a file shorter than its header
    promises or with trailing bytes is a DataError naming the file."""
    import gzip
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: IDX file does not exist")
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as e:  # bad gzip stream, or cut short inside it
        raise DataError(f"{path}: cannot be read as gzip ({type(e).__name__}: {e}); "
                        "the download may be truncated") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = int.from_bytes(raw[:4].ljust(4, b"\0"), "big")
        raise DataError(f"{path}: not an IDX file (magic number {magic} = 0x{magic:08x}; expected 0x0000TTNN, e.g. "
                        "2051 for images, 2049 for labels)")
    dtype, nd = _IDX_TYPES[raw[2]], raw[3]
    if ndim is not None and nd != ndim:
        raise DataError(f"{path}: IDX file has {nd} dimensions, expected {ndim} "
                        f"(magic {int.from_bytes(raw[:4], 'big')}; images are 2051, labels 2049)")
    head = 4 + 4 * nd
    if len(raw) < head:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes, the header alone needs {head})")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd))
    need = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(raw) - head
    if have != need:
        raise DataError(f"{path}: {'truncated' if have < need else 'has trailing bytes'}: the header declares shape "
                        f"{shape} = {need:,} bytes of data, the file holds {have:,}")
    return np.frombuffer(raw, dtype=dtype, offset=head).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def _idx_file(root: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    raise DataError(f"{root}: neither {stem}.gz nor {stem} found (the four original Fashion-MNIST IDX files)")


def load_fashion_mnist(root: str | Path) -> tuple[ImageSet, ImageSet]:
    """Fashion-MNIST (or MNIST) from its four IDX files, as uint8 (N, 1, 28, 28) images and int64 labels."""
    root = Path(root)
    out = []
    for split, (img_stem, lab_stem) in FASHION_MNIST_FILES.items():
        ip, lp = _idx_file(root, img_stem), _idx_file(root, lab_stem)
        x, y = read_idx(ip, ndim=3), read_idx(lp, ndim=1)
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise DataError(f"{ip} / {lp}: expected unsigned-byte IDX data, got {x.dtype} / {y.dtype}")
        if len(x) != len(y):
            raise DataError(f"{ip} holds {len(x):,} images but {lp} {len(y):,} labels")
        if y.size and y.max() >= len(FASHION_MNIST_CLASSES):
            raise DataError(f"{lp}: label {int(y.max())} outside 0-9")
        out.append(ImageSet(np.ascontiguousarray(x[:, None]), y.astype(np.int64), list(FASHION_MNIST_CLASSES),
                            f"fashion-mnist idx {root} ({split})"))
    return out[0], out[1]


def load_torchvision_fashion_mnist(root: str | Path, download: bool = True) -> tuple[ImageSet, ImageSet]:
    """torchvision.datasets.FashionMNIST (downloads ~30 MB once when online; checks its MD5)."""
    from torchvision.datasets import FashionMNIST
    out = []
    for train in (True, False):
        try:
            ds = FashionMNIST(str(root), train=train, download=download)
        except Exception as e:
            raise DataError(f"torchvision Fashion-MNIST could not be {'downloaded to' if download else 'found in'} "
                            f"{root} ({type(e).__name__}: {str(e).splitlines()[0][:160]}). Offline? Put the four IDX "
                            f".gz files in a folder and read them with load_fashion_mnist.") from None
        out.append(ImageSet(ds.data.numpy()[:, None].copy(), ds.targets.numpy().astype(np.int64),
                            list(FASHION_MNIST_CLASSES), f"torchvision FashionMNIST {root}"))
    return out[0], out[1]


@dataclass
class VaeData:
    train: ImageSet
    test: ImageSet
    train_rows: np.ndarray
    val_rows: np.ndarray


def load_data(cfg: VaeRunConfig) -> VaeData:
    dc = cfg.data
    train, test = (load_fashion_mnist(dc.root) if dc.source == "idx"
                   else load_torchvision_fashion_mnist(dc.root, dc.download))
    rows = np.arange(len(train))
    if dc.limit_per_class:
        rows = take_per_class(train.labels, dc.limit_per_class + dc.val_per_class, dc.seed)
    tr, va = val_split(train.labels[rows], "per_class", dc.val_per_class, seed=dc.seed)
    return VaeData(train, test, rows[tr], rows[va])
