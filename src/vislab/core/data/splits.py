"""Train/val/test splits: stratified fractions, a fixed number per class, or a random fraction."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from vislab.core.data.images import DataError


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
