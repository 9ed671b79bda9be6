"""Image-classification datasets held in memory as uint8 arrays (N, 3, H, W).

Three sources give the same `ImageSet`:
- class folders (torchvision's ImageFolder layout: root/<class>/<image>), decoded once and cached
  by `data.decode_images` (corrupt, empty and non-image files are skipped and counted);
- CIFAR-10's original python pickles (`cifar-10-batches-py/`), read with an unpickler that only
  admits numpy arrays and plain containers (a pickle can run code; this one cannot);
- torchvision's CIFAR10 with `download=True` (a clear error when offline).

Validation is split off the training set in one of two documented ways: a fixed number of images
per class (`per_class`), or a random fraction of all images (`fraction`, not stratified).
"""
from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import data as D
from .data import DataError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_STATUS = {D.MISSING: "missing", D.EMPTY: "empty file", D.UNREADABLE: "unreadable (corrupt or not an image)",
           D.TOO_LARGE: "over the decompression-bomb limit"}


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


def scan_folder(root: str | Path, classes: Sequence[str] | None = None) -> tuple[list[Path], np.ndarray, list[str], list[Path]]:
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
    images, status, _ = D.decode_images(paths, tuple(size), cache_dir, workers, progress)
    ok = status == D.OK
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


# --------------------------------------------------------------------------- CIFAR-10 pickles / torchvision


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
                            f"{root}/cifar-10-batches-py (data.source=pickles) or use class folders (data.source=folder).") from None
        out.append(ImageSet(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)), np.asarray(ds.targets, dtype=np.int64),
                            list(ds.classes), f"torchvision CIFAR10 {root}"))
    return out[0], out[1]


# --------------------------------------------------------------------------- IDX (MNIST / Fashion-MNIST)

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
        raise DataError(f"{path}: cannot be read as gzip ({type(e).__name__}: {e}); the download may be truncated") from None
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
            raise DataError(f"torchvision Fashion-MNIST could not be {'downloaded to' if download else 'found in'} {root} "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:160]}). Offline? Put the four IDX .gz files "
                            f"in a folder and read them with load_fashion_mnist.") from None
        out.append(ImageSet(ds.data.numpy()[:, None].copy(), ds.targets.numpy().astype(np.int64),
                            list(FASHION_MNIST_CLASSES), f"torchvision FashionMNIST {root}"))
    return out[0], out[1]


# --------------------------------------------------------------------------- validation split


def val_split(labels: np.ndarray, mode: str = "per_class", per_class: int = 200, fraction: float = 0.1,
              seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, val rows), both sorted. per_class: `per_class` random images of every class;
    fraction: a random `fraction` of all images (class shares then vary a little)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    if mode == "per_class":
        val = []
        for c in np.unique(labels):
            rows = np.flatnonzero(labels == c)
            if len(rows) <= per_class:
                raise DataError(f"class {c} has {len(rows)} training images; val_per_class={per_class} would leave "
                                f"none to train on. Lower data.val_per_class or use data.val_mode=fraction.")
            val.append(rng.choice(rows, per_class, replace=False))
        val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    elif mode == "fraction":
        if not 0 < fraction < 1:
            raise DataError(f"val_fraction must be in (0, 1), got {fraction}")
        val = np.sort(rng.permutation(n)[: max(1, round(n * fraction))])
    else:
        raise DataError(f"unknown validation split mode {mode!r}; use per_class or fraction")
    train = np.setdiff1d(np.arange(n), val)
    return train, val


def take_per_class(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """At most n random rows of every class (sorted): quick runs on a balanced subset."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:n] for c in np.unique(labels)]
    return np.sort(np.concatenate(rows))
