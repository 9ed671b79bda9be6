"""Which predictions a person should check: per-attribute confidence thresholds.

A prediction is auto-accepted when its confidence reaches its attribute's threshold and goes to review
otherwise. Training chooses each threshold on the validation split: the lowest confidence at which the
accepted predictions are still right at least `review.precision` of the time (so the most images are
auto-accepted at that precision). An attribute that never reaches the precision gets no threshold
(None): every prediction of it needs review. Thresholds are stored in the checkpoint's metadata."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def choose_threshold(conf: np.ndarray, correct: np.ndarray, precision: float) -> dict:
    """The lowest threshold whose accepted share {conf >= t} is right >= `precision` of the time.
    Returns {"threshold": t or None, "coverage": accepted share, "precision": its accuracy, "n": rows}."""
    conf, correct = np.asarray(conf, np.float64), np.asarray(correct, bool)
    n = len(conf)
    if n == 0:
        return {"threshold": None, "coverage": 0.0, "precision": None, "n": 0}
    order = np.argsort(-conf, kind="stable")
    c, k = conf[order], correct[order]
    acc = np.cumsum(k) / np.arange(1, n + 1)
    group_end = np.r_[c[1:] != c[:-1], True]  # ties are accepted or refused together
    ok = np.flatnonzero((acc >= precision) & group_end)
    if not len(ok):
        return {"threshold": None, "coverage": 0.0, "precision": None, "n": n}
    i = int(ok[-1])
    return {"threshold": float(c[i]), "coverage": (i + 1) / n, "precision": float(acc[i]), "n": n}


def choose_thresholds(probs: Mapping[str, np.ndarray], targets: np.ndarray, precision: float,
                      split: str = "val") -> dict:
    """Per task from softmax outputs (N, C) and targets (N, tasks; -1 = unknown): the `review` metadata."""
    per_task = {}
    for j, (task, p) in enumerate(probs.items()):
        known = targets[:, j] >= 0
        pred = p.argmax(1)
        per_task[task] = choose_threshold(p.max(1)[known], pred[known] == targets[known, j], precision)
    return {"precision_target": precision, "split": split,
            "thresholds": {t: v["threshold"] for t, v in per_task.items()},
            "coverage": {t: v["coverage"] for t, v in per_task.items()},
            "precision": {t: v["precision"] for t, v in per_task.items()},
            "n": {t: v["n"] for t, v in per_task.items()}}


def accepted(conf: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which predictions are auto-accepted (the rest need review)."""
    conf = np.asarray(conf)
    return np.zeros(conf.shape, bool) if threshold is None else conf >= threshold


def coverage_curve(conf: np.ndarray, correct: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy of the accepted share as the accepted share (coverage) grows from the most confident."""
    order = np.argsort(-np.asarray(conf), kind="stable")
    k = np.asarray(correct, bool)[order]
    n = len(k)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    acc = np.cumsum(k) / np.arange(1, n + 1)
    idx = np.unique(np.linspace(0, n - 1, min(points, n)).round().astype(int))
    return (idx + 1) / n, acc[idx]


def resolve(meta: Mapping, override: Mapping[str, float | None] | None = None,
            default: float | None = None) -> dict[str, float | None]:
    """The thresholds in force: chosen at training (metadata), then the run config's `review.thresholds`,
    then `override` (e.g. --threshold). A checkpoint without chosen thresholds uses `default`."""
    tasks = list(meta["encoders"])
    chosen = (meta.get("review") or {}).get("thresholds") or {}
    fixed = ((meta.get("config") or {}).get("review") or {}).get("thresholds") or {}
    out = {t: chosen.get(t, default) for t in tasks}
    out.update({t: v for t, v in fixed.items() if t in out})
    out.update({t: v for t, v in (override or {}).items() if t in out})
    return out


def parse_threshold(text: str, tasks: list[str]) -> dict[str, float]:
    """--threshold 0.6 (every attribute) or gender=0.7,season=0.5 -> {task: threshold}."""
    from vislab.core.errors import UsageError
    text = text.strip()
    out: dict[str, float] = {}
    items = [("*", text)] if "=" not in text else [tuple(p.split("=", 1)) for p in text.split(",") if p.strip()]
    for task, value in items:
        task = task.strip()
        try:
            v = float(value)
        except ValueError:
            raise UsageError(f"--threshold: {value!r} is not a number (give 0.6 or task=0.6,task=0.5)") from None
        if not 0.0 <= v <= 1.0:
            raise UsageError(f"--threshold: {v} is outside 0..1")
        if task == "*":
            out.update(dict.fromkeys(tasks, v))
        elif task not in tasks:
            raise UsageError(f"--threshold: unknown attribute {task!r}; the model predicts {', '.join(tasks)}")
        else:
            out[task] = v
    return out
