"""Fashion data: the CSV's cleaning steps (missing labels, merged colours, rare classes), label encoders,
the decoded images and the split, as one `Prepared`; the colour table."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from vislab.core.data.cache import decode_images
from vislab.core.data.csv import read_csv, require_columns
from vislab.core.data.images import OK, STATUS_NAMES, DataError
from vislab.core.data.splits import stratified_split
from vislab.labs.fashion.config import FashionDataConfig

# Raw baseColour values (46 in Fashion Product Images) -> at most 20 standard colours.
# Values not listed keep their own name. The docs (labs/fashion.md) print this table.
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


@dataclass
class CleanStep:
    step: str
    removed: int
    remaining: int
    detail: str = ""
    table: list[list] | None = None
    """Rows that detail the step (the colour merge: raw value, merged value, rows)."""


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


def image_paths(df: pd.DataFrame, root: Path, cfg: FashionDataConfig) -> list[Path]:
    img_dir = Path(cfg.image_dir)
    img_dir = img_dir if img_dir.is_absolute() else root / img_dir
    out = []
    for v in df[cfg.image_col].astype(str):
        p = Path(v)
        if not p.suffix:
            p = p.with_name(p.name + cfg.image_ext)
        out.append(p if p.is_absolute() else img_dir / p)
    return out


def resolve_root(cfg: FashionDataConfig) -> Path:
    if cfg.root is None:
        from vislab.labs.fashion import synthetic
        return synthetic.generate(synthetic.default_root(), n=cfg.synthetic_n)
    root = Path(cfg.root).expanduser()
    if not root.exists():
        raise DataError(f"data root {root} does not exist")
    return root


def load_table(cfg: FashionDataConfig,
               encoders: dict[str, list[str]] | None = None) -> tuple[pd.DataFrame, list[CleanStep], Path]:
    """Read the CSV and apply the label-level cleaning steps (no image decoding yet)."""
    root = resolve_root(cfg)
    csv_path = Path(cfg.csv) if Path(cfg.csv).is_absolute() else root / cfg.csv
    df, rep = read_csv(csv_path)
    require_columns(df, [cfg.image_col], what="image")
    require_columns(df, cfg.label_cols)
    steps = [CleanStep("rows read", 0, rep.rows + len(rep.malformed),
                       f"{len(rep.repaired)} rows had unquoted commas, rejoined" if rep.repaired else "")]
    lines = ", ".join(map(str, rep.malformed[:10])) + (" ..." if len(rep.malformed) > 10 else "")
    steps.append(CleanStep("malformed rows (too few fields)", len(rep.malformed), rep.rows,
                           f"lines {lines}" if rep.malformed else ""))
    if cfg.limit:
        before = len(df)
        df = df.sample(frac=1.0, random_state=cfg.seed).head(cfg.limit).sort_index()
        steps.append(CleanStep(f"limit={cfg.limit}", before - len(df), len(df)))
    missing = df[cfg.label_cols].isna().any(axis=1) | df[cfg.image_col].isna()
    per_col = {c: int(df[c].isna().sum()) for c in cfg.label_cols if df[c].isna().any()}
    df = df[~missing]
    steps.append(CleanStep("missing value in a target column", int(missing.sum()), len(df),
                           ", ".join(f"{c} {n}" for c, n in per_col.items())))
    if cfg.merge_colours and cfg.colour_col in cfg.label_cols:
        raw = df[cfg.colour_col]
        counts = raw.value_counts()
        merged = [[v, COLOUR_MAP[v], int(n)] for v, n in counts.items() if v in COLOUR_MAP]
        df = df.assign(**{cfg.colour_col: merge_colours(raw)})
        steps.append(CleanStep("colours merged (no rows removed)", 0, len(df),
                               f"{raw.nunique()} -> {df[cfg.colour_col].nunique()} values",
                               sorted(merged, key=lambda r: (r[1], -r[2]))))
    return df.reset_index(drop=True), steps, root


def _decode(cfg: FashionDataConfig, df: pd.DataFrame, root: Path, steps: list[CleanStep], progress: bool):
    """Decode the table's images once (cached); count each failure kind as a cleaning step. Returns
    (images, positions of the decodable rows, cache file); `df` gains the `_image` path column."""
    paths = image_paths(df, root, cfg)
    images, status, cache_file = decode_images(paths, cfg.image_size, cfg.cache_dir, cfg.workers, progress)
    df["_image"] = [str(p) for p in paths]
    remaining = len(df)
    for code, name in STATUS_NAMES.items():
        hit = np.flatnonzero(status == code)
        remaining -= len(hit)
        ex = [paths[i].name for i in hit[:5]]
        steps.append(CleanStep(name, len(hit), remaining, f"e.g. {', '.join(ex)}" if ex else ""))
    return images, np.flatnonzero(status == OK), cache_file


def _rare_step(cfg: FashionDataConfig, before: int, after: int, dropped: list[str]) -> CleanStep:
    detail = f"{len(dropped)} classes: " + ", ".join(dropped[:12]) + (" ..." if len(dropped) > 12 else "")
    return CleanStep(f"classes with < {cfg.min_samples} samples (repeated until stable)", before - after, after,
                     detail if dropped else "")


def _nothing_left(cfg: FashionDataConfig, steps: list[CleanStep]) -> DataError:
    """Why no row survived cleaning, with the knob that would keep some."""
    removed = "; ".join(f"{s.step}: {s.removed} removed" for s in steps if s.removed)
    hint = ""
    if steps and steps[-1].step.startswith("classes with <"):
        hint = (f". Every class has fewer than data.min_samples={cfg.min_samples} rows"
                + (f" in the {cfg.limit} rows that --limit keeps" if cfg.limit else "")
                + f": lower it (e.g. data.min_samples={max(1, cfg.min_samples // 10)})"
                + (" or raise --limit" if cfg.limit else ""))
    return DataError(f"no rows left after cleaning ({removed}){hint}")


def prepare(cfg: FashionDataConfig, progress: bool = True) -> Prepared:
    """CSV -> cleaned, decoded (cached), encoded and split data: the training pipeline."""
    df, steps, root = load_table(cfg)
    # The rare-class filter on the labels alone, before any image is decoded: if it leaves nothing even when
    # every image decodes, say so now (with the knob) instead of after decoding.
    if len(df) and not len(drop_rare_classes(df, cfg.label_cols, cfg.min_samples)[0]):
        raise _nothing_left(cfg, steps + [_rare_step(cfg, len(df), 0, [])])
    images, rows, cache_file = _decode(cfg, df, root, steps, progress)
    sub = df.iloc[rows]
    sub2, dropped = drop_rare_classes(sub, cfg.label_cols, cfg.min_samples)
    steps.append(_rare_step(cfg, len(sub), len(sub2), dropped))
    if len(sub2) == 0:
        raise _nothing_left(cfg, steps)
    positions = rows[np.isin(rows, sub2.index.to_numpy())]  # row positions into the decoded array
    df = df.iloc[positions].reset_index(drop=True)
    encoders = fit_encoders(df, cfg.label_cols)
    targets, _ = encode(df, encoders)
    strat_col = cfg.stratify_col if cfg.stratify_col in df.columns else cfg.label_cols[0]
    splits = stratified_split(df[strat_col].tolist(), cfg.split, cfg.seed)
    # Gather only the kept rows (contiguous copy when rows were dropped; the memmap otherwise).
    imgs = images if len(positions) == len(images) else np.ascontiguousarray(images[positions])
    return Prepared(df, imgs, targets, encoders, splits, steps, cache_file)


def prepare_eval(cfg: FashionDataConfig, encoders: dict[str, list[str]], partial: bool = False,
                 progress: bool = True) -> tuple[Prepared, dict[str, dict[str, int]]]:
    """Evaluation data for a checkpoint with `encoders`: every row whose labels the checkpoint knows. The
    rare-class filter is a training-time step and is not applied. A row with a label unseen in training is
    counted (per task, in the returned `{task: {label: rows}}`) and left out, or with `partial` kept and
    scored on the tasks whose labels are known (its unknown ones are -1 in `targets`). `splits` holds "all"
    (every kept row) beside a fresh train/val/test split of them."""
    df, steps, root = load_table(cfg)
    images, rows, cache_file = _decode(cfg, df, root, steps, progress)
    df = df.iloc[rows].reset_index(drop=True)
    targets, unseen = encode(df, encoders)
    known = targets >= 0
    keep = known.any(1) if partial else known.all(1)
    detail = "; ".join(f"{t}: " + ", ".join(f"{k} ({v})" for k, v in sorted(c.items(), key=lambda kv: -kv[1])[:6])
                       for t, c in unseen.items())
    what = ("rows with no label known to the model" if partial else "rows with a label unseen in training")
    steps.append(CleanStep(what, int((~keep).sum()), int(keep.sum()), detail))
    if not keep.any():
        raise DataError("no row of the evaluation data can be scored: " + "; ".join(
            f"{s.step}: {s.removed} removed" for s in steps if s.removed))
    positions = rows[keep]
    df, targets = df[keep].reset_index(drop=True), targets[keep]
    strat_col = cfg.stratify_col if cfg.stratify_col in df.columns else cfg.label_cols[0]
    splits = stratified_split(df[strat_col].tolist(), cfg.split, cfg.seed) if len(df) >= 3 else {}
    splits["all"] = np.arange(len(df))
    imgs = images if len(positions) == len(images) else np.ascontiguousarray(images[positions])
    return Prepared(df, imgs, targets, dict(encoders), splits, steps, cache_file), unseen


def train_class_counts(prepared: Prepared) -> dict[str, list[int]]:
    """{task: rows per class (encoder order)} of the training split: stored in the checkpoint, for the majority
    baseline of any later evaluation."""
    tr = prepared.targets[prepared.splits["train"]]
    return {t: np.bincount(tr[:, j], minlength=len(c)).tolist() for j, (t, c) in enumerate(prepared.encoders.items())}


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
