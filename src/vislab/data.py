"""Tabular + image data: robust CSV reading, cleaning, label encoding, stratified splits,
a decode-once uint8 image cache, and batch transforms that run on the training device.

The flow for a CSV + image folder (the fashion lab, or any user data):

    table = read_csv(path)                       # survives unquoted commas, counts bad rows
    prepared = prepare(cfg)                       # clean -> decode (cached) -> encode -> split
    loader = batch_loader(prepared.images, prepared.targets, prepared.splits["train"], ...)

Images are decoded and resized exactly once per machine: the cache key covers the file list
(path, size, mtime) and the resolution, and epochs read slices of one uint8 tensor.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFile

from .config import DataConfig

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated JPEG is an error, never silently grey

NA_STRINGS = {"", "NA", "N/A", "NaN", "nan", "null", "None"}

# Raw baseColour values (46 in Fashion Product Images) -> at most 20 standard colours.
# Values not listed keep their own name. The README prints this table.
COLOUR_MAP: dict[str, str] = {
    "Off White": "White",
    "Charcoal": "Grey", "Grey Melange": "Grey", "Steel": "Grey",
    "Metallic": "Silver",
    "Turquoise Blue": "Blue", "Teal": "Blue",
    "Coffee Brown": "Brown", "Mushroom Brown": "Brown", "Taupe": "Brown", "Tan": "Brown",
    "Bronze": "Brown", "Copper": "Brown", "Rust": "Brown",
    "Cream": "Beige", "Skin": "Beige", "Nude": "Beige", "Khaki": "Beige",
    "Burgundy": "Maroon",
    "Rose": "Pink", "Magenta": "Pink", "Peach": "Pink",
    "Lavender": "Purple", "Mauve": "Purple",
    "Sea Green": "Green", "Lime Green": "Green", "Fluorescent Green": "Green",
    "Mustard": "Yellow",
}
STANDARD_COLOURS = ["Black", "White", "Grey", "Silver", "Blue", "Navy Blue", "Brown", "Beige", "Red",
                    "Maroon", "Pink", "Purple", "Green", "Olive", "Yellow", "Orange", "Gold", "Multi"]


class DataError(ValueError):
    """Bad input data, with a message that says what to fix."""


class ImageError(DataError):
    pass


# --------------------------------------------------------------------------- CSV


@dataclass
class CsvReport:
    rows: int = 0
    repaired: list[int] = field(default_factory=list)   # line numbers whose surplus commas were rejoined
    malformed: list[int] = field(default_factory=list)  # line numbers dropped (too few fields)


def read_csv(path: str | Path, text_col: str | None = None) -> tuple[pd.DataFrame, CsvReport]:
    """Read a CSV whose free-text column may contain unquoted commas.

    The original Kaggle `styles.csv` has 22 such rows (`productDisplayName`, the last column).
    A row with more fields than the header gets its surplus joined back into `text_col`
    (default: the last column), so nothing is lost; a row with too few fields is dropped and
    its line number reported. All values are read as strings; NA markers become missing.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file {path} does not exist")
    rep = CsvReport()
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"CSV file {path} is empty") from None
        n = len(header)
        ti = header.index(text_col) if text_col in header else n - 1
        rows = []
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) > n:
                extra = len(row) - n
                row = row[:ti] + [",".join(row[ti:ti + extra + 1])] + row[ti + extra + 1:]
                rep.repaired.append(reader.line_num)
            elif len(row) < n:
                rep.malformed.append(reader.line_num)
                continue
            rows.append(row)
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df = df.map(lambda v: None if v is None or v.strip() in NA_STRINGS else v.strip())
    rep.rows = len(df)
    return df, rep


def require_columns(df: pd.DataFrame, cols: Sequence[str], what: str = "label") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"{what} column(s) {missing} not in the CSV; columns present: {list(df.columns)}")


# --------------------------------------------------------------------------- images

OK, MISSING, EMPTY, UNREADABLE, TOO_LARGE = range(5)
STATUS_NAMES = {MISSING: "image file missing", EMPTY: "image file empty",
                UNREADABLE: "image unreadable (corrupt, truncated or not an image)",
                TOO_LARGE: "image over PIL's decompression-bomb limit"}


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, ...) -> RGB; transparency composited on white."""
    if im.mode == "RGB":
        return im
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    if im.mode.startswith("I;16"):  # fixed 16-bit range: a white 16-bit image stays white
        arr = np.asarray(im, dtype=np.float32) / 257.0
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode == "I":  # 32-bit, range unknown: stretch
        arr = np.asarray(im, dtype=np.float32)
        arr = (255 * (arr - arr.min()) / max(float(np.ptp(arr)), 1.0)).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    return im.convert("RGB")


def fit_image(im: Image.Image, size: tuple[int, int], fill=(255, 255, 255)) -> Image.Image:
    """Resize to (height, width), padding with `fill` to keep the aspect ratio."""
    h, w = size
    iw, ih = im.size
    target_ratio, ratio = w / h, iw / ih
    if abs(ratio - target_ratio) > 0.01:
        if ratio > target_ratio:  # too wide: pad height
            nh = round(iw / target_ratio)
            canvas = Image.new("RGB", (iw, nh), fill)
            canvas.paste(im, (0, (nh - ih) // 2))
        else:
            nw = round(ih * target_ratio)
            canvas = Image.new("RGB", (nw, ih), fill)
            canvas.paste(im, ((nw - iw) // 2, 0))
        im = canvas
    if im.size != (w, h):
        im = im.resize((w, h), Image.BILINEAR, reducing_gap=3.0)
    return im


def load_image(src: str | Path | bytes | Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Decode one image to a (H, W, 3) uint8 array. Raises ImageError with a clear message."""
    name = "<image>" if isinstance(src, (bytes, Image.Image)) else str(src)
    try:
        if not isinstance(src, (bytes, Image.Image)):
            p = Path(src)
            if not p.is_file():
                raise ImageError(f"{name}: file does not exist")
            if p.stat().st_size == 0:
                raise ImageError(f"{name}: file is empty")
        with warnings.catch_warnings():  # Image.open warns (MAX..2*MAX pixels): an error too
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(src, Image.Image):
                im = src
            else:
                im = Image.open(io.BytesIO(src) if isinstance(src, bytes) else src)
            if im.format == "JPEG":  # decode at reduced scale when the file is much larger
                im.draft("RGB", (size[1] * 2, size[0] * 2))
            im.load()
        return np.asarray(fit_image(to_rgb(im), size), dtype=np.uint8)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{name}: refused, larger than PIL's decompression-bomb limit "
                         f"({Image.MAX_IMAGE_PIXELS:,} pixels): {e}. If you trust the file, raise "
                         f"PIL.Image.MAX_IMAGE_PIXELS.") from None
    except Exception as e:  # PIL raises OSError/SyntaxError/ValueError on corrupt files
        raise ImageError(f"{name}: cannot be decoded as an image ({type(e).__name__}: {e})") from None


def _status_of(exc: ImageError) -> int:
    msg = str(exc)
    if "does not exist" in msg:
        return MISSING
    if "is empty" in msg:
        return EMPTY
    if "decompression-bomb" in msg:
        return TOO_LARGE
    return UNREADABLE


def _decode_chunk(args) -> list[tuple[int, int]]:
    out_path, shape, paths, start, size = args
    arr = np.lib.format.open_memmap(out_path, mode="r+")
    status = []
    for i, p in enumerate(paths):
        try:
            arr[start + i] = load_image(p, size).transpose(2, 0, 1)
            status.append((start + i, OK))
        except ImageError as e:
            arr[start + i] = 0
            status.append((start + i, _status_of(e)))
    arr.flush()
    del arr
    return status


def cache_root(cfg_dir: str | None = None) -> Path:
    root = Path(cfg_dir or os.environ.get("VISLAB_CACHE") or Path.home() / ".cache" / "vislab")
    root.mkdir(parents=True, exist_ok=True)
    return root


def _files_key(paths: Sequence[Path], size: tuple[int, int]) -> str:
    h = hashlib.sha1(f"v1|{size[0]}x{size[1]}|{len(paths)}".encode())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|-\n".encode())
    return h.hexdigest()[:20]


def decode_images(paths: Sequence[str | Path], size: tuple[int, int], cache_dir: str | None = None,
                  workers: int = 0, progress: bool = True) -> tuple[np.ndarray, np.ndarray, Path]:
    """Decode + resize every image once; return (uint8 N x 3 x H x W memmap, status N, cache file).

    A second call with the same files (path, size, mtime) and resolution reads the cache.
    """
    paths = [Path(p) for p in paths]
    key = _files_key(paths, size)
    d = cache_root(cache_dir) / "images"
    d.mkdir(parents=True, exist_ok=True)
    arr_path, st_path = d / f"{key}.npy", d / f"{key}.status.npy"
    if arr_path.is_file() and st_path.is_file():
        return np.load(arr_path, mmap_mode="r"), np.load(st_path), arr_path
    n = len(paths)
    shape = (n, 3, size[0], size[1])
    tmp = d / f"{key}.{os.getpid()}.tmp.npy"
    np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape).flush()
    workers = workers or os.cpu_count() or 1
    chunk = max(64, math.ceil(n / (workers * 8)))
    jobs = [(str(tmp), shape, paths[s:s + chunk], s, size) for s in range(0, n, chunk)]
    status = np.zeros(n, dtype=np.uint8)
    from rich.progress import Progress
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(f"decoding {n} images to {size[0]}x{size[1]} (once; cached)", total=n)
        if workers > 1 and n > 256:
            ctx = torch.multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
                for res in ex.map(_decode_chunk, jobs):
                    for i, s in res:
                        status[i] = s
                    bar.advance(task, len(res))
        else:
            for job in jobs:
                res = _decode_chunk(job)
                for i, s in res:
                    status[i] = s
                bar.advance(task, len(res))
    st_tmp = d / f"{key}.{os.getpid()}.tmp.status.npy"
    np.save(st_tmp, status)
    os.replace(tmp, arr_path)
    os.replace(st_tmp, st_path)
    return np.load(arr_path, mmap_mode="r"), status, arr_path


# --------------------------------------------------------------------------- cleaning


@dataclass
class CleanStep:
    step: str
    removed: int
    remaining: int
    detail: str = ""


def merge_colours(values: pd.Series) -> pd.Series:
    return values.map(lambda v: COLOUR_MAP.get(v, v) if isinstance(v, str) else v)


def drop_rare_classes(df: pd.DataFrame, cols: Sequence[str], min_samples: int) -> tuple[pd.DataFrame, list[str]]:
    """Drop rows of classes with < min_samples in any column; repeat until stable."""
    dropped: list[str] = []
    while min_samples > 1:
        bad = pd.Series(False, index=df.index)
        for c in cols:
            counts = df[c].value_counts()
            rare = counts[counts < min_samples]
            if len(rare):
                dropped += [f"{c}={k} ({v})" for k, v in rare.items()]
                bad |= df[c].isin(rare.index)
        if not bad.any():
            break
        df = df[~bad]
    return df, dropped


# --------------------------------------------------------------------------- encoding + split


def fit_encoders(df: pd.DataFrame, cols: Sequence[str]) -> dict[str, list[str]]:
    """One encoder per task: the sorted list of class names (index = class id)."""
    enc = {c: sorted(df[c].astype(str).unique().tolist()) for c in cols}
    for c, classes in enc.items():
        if len(classes) < 2:
            raise DataError(f"task {c!r} has {len(classes)} class(es) after cleaning ({classes}); "
                            f"a classifier needs at least 2. Lower data.min_samples or add data.")
    return enc


def encode(df: pd.DataFrame, encoders: dict[str, list[str]]) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Labels -> int64 (N, T). Unseen labels get -1 and are reported as {task: {value: count}}."""
    out = np.full((len(df), len(encoders)), -1, dtype=np.int64)
    unseen: dict[str, dict[str, int]] = {}
    for j, (c, classes) in enumerate(encoders.items()):
        lut = {v: i for i, v in enumerate(classes)}
        vals = df[c].astype(str).tolist()
        out[:, j] = [lut.get(v, -1) for v in vals]
        bad = Counter(v for v in vals if v not in lut)
        if bad:
            unseen[c] = dict(bad)
    return out, unseen


def stratified_split(strata: Sequence, fractions: tuple[float, float, float], seed: int
                     ) -> dict[str, np.ndarray]:
    """Indices for train/val/test, stratified on `strata`.

    Fallback for classes too small to stratify: a class with fewer than
    ceil(1 / smallest non-zero fraction) members is pooled into one "rare" stratum; if that
    pool is itself too small, its members all go to train (they are never silently dropped).
    """
    from sklearn.model_selection import train_test_split
    strata = np.asarray([str(s) for s in strata], dtype=object)
    n = len(strata)
    idx = np.arange(n)
    nz = [f for f in fractions if f > 0]
    need = math.ceil(1 / min(nz)) if nz else 1
    counts = Counter(strata)
    lab = np.array([s if counts[s] >= need else "__rare__" for s in strata], dtype=object)
    forced_train = np.zeros(n, dtype=bool)
    if (lab == "__rare__").sum() and (lab == "__rare__").sum() < need:
        forced_train = lab == "__rare__"
    pool, pool_lab = idx[~forced_train], lab[~forced_train]
    tr_f, va_f, te_f = fractions
    out = {"train": idx[forced_train], "val": np.array([], dtype=int), "test": np.array([], dtype=int)}
    rest_f = va_f + te_f
    if rest_f <= 0 or len(pool) == 0:
        out["train"] = np.sort(np.concatenate([out["train"], pool]))
        return out
    tr, rest = train_test_split(pool, test_size=rest_f, random_state=seed, stratify=pool_lab)
    out["train"] = np.sort(np.concatenate([out["train"], tr]))
    if va_f > 0 and te_f > 0:
        rest_lab = lab[rest]
        c2 = Counter(rest_lab)
        strat2 = rest_lab if min(c2.values()) >= 2 else None
        va, te = train_test_split(rest, test_size=te_f / rest_f, random_state=seed, stratify=strat2)
        out["val"], out["test"] = np.sort(va), np.sort(te)
    elif va_f > 0:
        out["val"] = np.sort(rest)
    else:
        out["test"] = np.sort(rest)
    return out


# --------------------------------------------------------------------------- the whole pipeline


@dataclass
class Prepared:
    """Everything a lab needs to train: images, targets, encoders, splits and the cleaning log."""
    df: pd.DataFrame                 # cleaned rows (index reset), with an `_image` path column
    images: np.ndarray               # uint8 N x 3 x H x W (memmap into the cache)
    targets: np.ndarray              # int64 N x T
    encoders: dict[str, list[str]]
    splits: dict[str, np.ndarray]
    steps: list[CleanStep]
    cache_file: Path | None = None

    @property
    def tasks(self) -> dict[str, int]:
        return {t: len(c) for t, c in self.encoders.items()}

    def summary_rows(self) -> list[list]:
        return [[s.step, s.removed, s.remaining, s.detail] for s in self.steps]


def image_paths(df: pd.DataFrame, root: Path, cfg: DataConfig) -> list[Path]:
    img_dir = Path(cfg.image_dir)
    img_dir = img_dir if img_dir.is_absolute() else root / img_dir
    out = []
    for v in df[cfg.image_col].astype(str):
        p = Path(v)
        if not p.suffix:
            p = p.with_name(p.name + cfg.image_ext)
        out.append(p if p.is_absolute() else img_dir / p)
    return out


def resolve_root(cfg: DataConfig) -> Path:
    if cfg.root is None:
        from . import synthetic
        return synthetic.generate(synthetic.default_root(), n=cfg.synthetic_n)
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"data root {root} does not exist")
    return root


def load_table(cfg: DataConfig, encoders: dict[str, list[str]] | None = None) -> tuple[pd.DataFrame, list[CleanStep], Path]:
    """Read the CSV and apply the label-level cleaning steps (no image decoding yet)."""
    root = resolve_root(cfg)
    csv_path = Path(cfg.csv) if Path(cfg.csv).is_absolute() else root / cfg.csv
    df, rep = read_csv(csv_path)
    require_columns(df, [cfg.image_col], what="image")
    require_columns(df, cfg.label_cols)
    steps = [CleanStep("rows read", 0, rep.rows + len(rep.malformed),
                       f"{len(rep.repaired)} rows had unquoted commas, rejoined")]
    steps.append(CleanStep("malformed rows (too few fields)", len(rep.malformed), rep.rows,
                           f"lines {rep.malformed[:10]}" if rep.malformed else ""))
    if cfg.limit:
        before = len(df)
        df = df.sample(frac=1.0, random_state=cfg.seed).head(cfg.limit).sort_index()
        steps.append(CleanStep(f"limit={cfg.limit}", before - len(df), len(df)))
    missing = df[cfg.label_cols].isna().any(axis=1) | df[cfg.image_col].isna()
    per_col = {c: int(df[c].isna().sum()) for c in cfg.label_cols if df[c].isna().any()}
    df = df[~missing]
    steps.append(CleanStep("missing value in a target column", int(missing.sum()), len(df), str(per_col) if per_col else ""))
    if cfg.merge_colours and cfg.colour_col in cfg.label_cols:
        before = df[cfg.colour_col].nunique()
        df = df.assign(**{cfg.colour_col: merge_colours(df[cfg.colour_col])})
        steps.append(CleanStep("colours merged (no rows removed)", 0, len(df),
                               f"{before} -> {df[cfg.colour_col].nunique()} values"))
    return df.reset_index(drop=True), steps, root


def prepare(cfg: DataConfig, progress: bool = True) -> Prepared:
    """CSV -> cleaned, decoded (cached), encoded and split data."""
    df, steps, root = load_table(cfg)
    paths = image_paths(df, root, cfg)
    images, status, cache_file = decode_images(paths, cfg.image_size, cfg.cache_dir, cfg.workers, progress)
    df["_image"] = [str(p) for p in paths]
    keep = status == OK
    remaining = len(df)
    for code, name in STATUS_NAMES.items():
        hit = np.flatnonzero(status == code)
        remaining -= len(hit)
        ex = [paths[i].name for i in hit[:5]]
        steps.append(CleanStep(name, len(hit), remaining, f"e.g. {ex}" if ex else ""))
    rows = np.flatnonzero(keep)
    sub = df.iloc[rows]
    sub2, dropped = drop_rare_classes(sub, cfg.label_cols, cfg.min_samples)
    steps.append(CleanStep(f"classes with < {cfg.min_samples} samples (repeated until stable)",
                           len(sub) - len(sub2), len(sub2),
                           f"{len(dropped)} classes: " + ", ".join(dropped[:12]) + (" ..." if len(dropped) > 12 else "")))
    if len(sub2) == 0:
        raise DataError("no rows left after cleaning: " + "; ".join(f"{s.step}: -{s.removed}" for s in steps))
    positions = rows[np.isin(rows, sub2.index.to_numpy())]  # row positions into the decoded array
    df = df.iloc[positions].reset_index(drop=True)
    encoders = fit_encoders(df, cfg.label_cols)
    targets, _ = encode(df, encoders)
    strat_col = cfg.stratify_col if cfg.stratify_col in df.columns else cfg.label_cols[0]
    splits = stratified_split(df[strat_col].tolist(), cfg.split, cfg.seed)
    # Gather only the kept rows (contiguous copy when rows were dropped; the memmap otherwise).
    imgs = images if len(positions) == len(images) else np.ascontiguousarray(images[positions])
    return Prepared(df, imgs, targets, encoders, splits, steps, cache_file)


# --------------------------------------------------------------------------- batches


class ArrayDataset(torch.utils.data.Dataset):
    """Rows `index` of in-memory arrays; fetched a whole batch at a time (`__getitems__`)."""

    def __init__(self, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, index: np.ndarray | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # read-only memmap: we never write to it
            self.x = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
        self.y = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
        self.index = torch.as_tensor(np.arange(len(self.x)) if index is None else np.asarray(index), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        j = self.index[i]
        return self.x[j], self.y[j]

    def __getitems__(self, idxs):
        j = self.index[torch.as_tensor(idxs, dtype=torch.long)].sort().values
        return self.x[j], self.y[j]


def _identity(batch):
    return batch


def batch_loader(x, y, index, batch_size: int, shuffle: bool, seed: int = 0, num_workers: int = 0,
                 drop_last: bool = False) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ArrayDataset(x, y, index), batch_size=batch_size, shuffle=shuffle,
                                       generator=g, num_workers=num_workers, collate_fn=_identity,
                                       drop_last=drop_last, persistent_workers=num_workers > 0)


class BatchTransform(torch.nn.Module):
    """uint8 batch -> normalised float batch, with per-sample augmentation when training.

    Runs on whatever device the batch is on (GPU in training), vectorised over the batch:
    random horizontal flip, small scale/shift (edges replicated: product photos sit on white),
    brightness/contrast jitter. No hue or saturation change: colour is a label.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: bool = False,
                 flip: bool = True, max_shift: float = 0.06, max_scale: float = 0.08, jitter: float = 0.1,
                 channels_last: bool = True):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.augment, self.flip, self.max_shift, self.max_scale, self.jitter = augment, flip, max_shift, max_scale, jitter
        self.channels_last = channels_last

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if self.augment and self.training:
            x = self._augment(x, generator)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _augment(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        n = x.shape[0]

        def u(lo, hi):
            return torch.rand(n, generator=g).mul_(hi - lo).add_(lo).to(x.device)

        s = u(1 - self.max_scale, 1 + self.max_scale)
        sx = s * (torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(x.device) if self.flip else 1.0)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 1, 1] = sx, s
        theta[:, 0, 2], theta[:, 1, 2] = u(-self.max_shift, self.max_shift) * 2, u(-self.max_shift, self.max_shift) * 2
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.jitter:
            b = u(1 - self.jitter, 1 + self.jitter).view(n, 1, 1, 1)
            c = u(1 - self.jitter, 1 + self.jitter).view(n, 1, 1, 1)
            m = x.mean(dim=(2, 3), keepdim=True)  # per channel: a uniform colour keeps its channel ratios
            x = ((x - m) * c + m) * b
        return x.clamp_(0, 1)


def class_counts(prepared: Prepared, split: str | None = None) -> dict[str, dict[str, int]]:
    rows = prepared.df if split is None else prepared.df.iloc[prepared.splits[split]]
    return {t: rows[t].value_counts().to_dict() for t in prepared.encoders}


def save_summary(prepared: Prepared, path: str | Path) -> Path:
    path = Path(path)
    path.write_text(json.dumps({
        "steps": [s.__dict__ for s in prepared.steps],
        "rows": len(prepared.df),
        "split_sizes": {k: int(len(v)) for k, v in prepared.splits.items()},
        "classes": {t: len(c) for t, c in prepared.encoders.items()},
    }, indent=2))
    return path
