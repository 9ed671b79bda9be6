"""What matters first in a run report: the summary card (best epoch and why, each task against its
majority baseline, warnings in plain words) and the per-class tables, for any classification lab.

    card = summary_card(history, "val_loss", "min", planned_epochs=8, metrics=m, baselines=b,
                        per_class={"gender": per_class_report(y, p, names)})
    sections = [card, *per_class_sections(per_class)]
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from vislab.core.report import Section, Table

BASELINE_MARGIN = 0.005
"""A task within half a point of its majority baseline (or under it) has not learned anything useful."""


def pct(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def _best_row(history: Sequence[Mapping], monitor: str, mode: str | None) -> Mapping | None:
    """The history row the engine kept as best: the first with the lowest (highest, for mode max) finite
    `monitor` (train.monitor_mode; None: min for a loss, else max)."""
    rows = [r for r in history if monitor in r and _finite(r[monitor])]
    if not rows:
        return None
    mode = mode or ("min" if "loss" in monitor else "max")
    return (min if mode == "min" else max)(rows, key=lambda r: float(r[monitor]))


def best_epoch(history: Sequence[Mapping], monitor: str, mode: str | None) -> int | None:
    """The epoch whose checkpoint is `best` (see `_best_row`)."""
    row = _best_row(history, monitor, mode)
    return None if row is None else int(row["epoch"])


def best_epoch_text(history: Sequence[Mapping], monitor: str, mode: str | None) -> str:
    """'Best epoch 4 of 5: lowest val loss (0.4123).' from the history the engine logged."""
    best = _best_row(history, monitor, mode)
    if best is None:
        return f"No epoch has a finite {monitor}: there is no best epoch."
    word = "lowest" if (mode or ("min" if "loss" in monitor else "max")) == "min" else "highest"
    return (f"Best epoch {int(best['epoch'])} of {len(history)}: {word} {monitor.replace('_', ' ')} "
            f"({float(best[monitor]):.4f}); its checkpoint is the one evaluated.")


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def run_warnings(history: Sequence[Mapping] | None, monitor: str, planned_epochs: int | None,
                 metrics: Mapping[str, Mapping[str, float]], baselines: Mapping[str, float],
                 per_class: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
                 max_steps: int | None = None, mode: str | None = None) -> list[str]:
    """Plain-word warnings: a task at or under its majority baseline, classes never recognised (recall 0), a
    run stopped before its planned epochs, NaN values, a validation curve still improving at the end."""
    out: list[str] = []
    for task, base in baselines.items():
        acc = metrics.get(task, {}).get("accuracy")
        if acc is not None and _finite(acc) and _finite(base) and acc <= base + BASELINE_MARGIN:
            out.append(f"{task}: accuracy {pct(acc)} is at or under its majority baseline ({pct(base)}, always "
                       "predicting the most frequent class): the model has not learned this task.")
    for task, rows in (per_class or {}).items():
        zero = [(c, int(r["support"])) for c, r in rows.items() if c != "macro avg" and r.get("support", 0) > 0
                and r.get("recall", 1) == 0]
        if zero:
            worst = sorted(zero, key=lambda x: -x[1])[:8]
            names = ", ".join(f"{c} ({n} image{'s' if n > 1 else ''})" for c, n in worst)
            more = f" and {len(zero) - 8} more" if len(zero) > 8 else ""
            out.append(f"{task}: {len(zero)} class{'es' if len(zero) > 1 else ''} never predicted right (recall 0): "
                       f"{names}{more}.")
    history = list(history or [])
    if history and planned_epochs and int(history[-1].get("epoch", 0)) < planned_epochs:
        why = f" (--max-steps {max_steps})" if max_steps else ""
        out.append(f"Training stopped after epoch {int(history[-1]['epoch'])} of {planned_epochs} planned"
                   f"{why}, at step {int(history[-1].get('step', 0))}.")
    bad = sorted({k for r in history for k, v in r.items() if isinstance(v, float) and not math.isfinite(v)})
    bad += [f"test {task} {k}" for task, m in metrics.items() for k, v in m.items() if not _finite(v)]
    if bad:
        out.append(f"NaN or infinite values in: {', '.join(bad[:8])}.")
    rows = [r for r in history if _finite(r.get(monitor))]
    if len(rows) >= 2:
        mode_min = (mode or ("min" if "loss" in monitor else "max")) == "min"
        vals = [float(r[monitor]) for r in rows]
        best = min(vals) if mode_min else max(vals)
        if vals[-1] == best and vals[-1] != vals[-2]:
            out.append(f"{monitor.replace('_', ' ')} was still improving at the last epoch: more epochs may help.")
    return out


def summary_card(history: Sequence[Mapping] | None, monitor: str, mode: str | None, planned_epochs: int | None,
                 metrics: Mapping[str, Mapping[str, float]], baselines: Mapping[str, float],
                 per_class: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None, scope: str = "",
                 max_steps: int | None = None) -> Section:
    """The card at the top of a run report: best epoch and why, each task's accuracy and macro F1 against its
    majority baseline, and the warnings."""
    lines = []
    if scope:
        lines.append(f"Scored: {scope}.")
    if history:
        lines.append(best_epoch_text(history, monitor, mode))
    rows = []
    for task, base in baselines.items():
        m = metrics.get(task, {})
        acc, f1 = m.get("accuracy"), m.get("f1")
        gain = (acc - base) * 100 if _finite(acc) and _finite(base) else None
        rows.append([task, pct(acc), pct(base), "-" if gain is None else f"{gain:+.1f}", pct(f1)])
    if "average" in metrics and len(baselines) > 1:
        a = metrics["average"]
        base = sum(baselines.values()) / len(baselines)
        gain = (a.get("accuracy", math.nan) - base) * 100
        rows.append(["average", pct(a.get("accuracy")), pct(base), f"{gain:+.1f}" if _finite(gain) else "-",
                     pct(a.get("f1"))])
    table = Table(["task", "accuracy", "majority baseline", "gain (points)", "macro F1"], rows)
    notes = run_warnings(history, monitor, planned_epochs, metrics, baselines, per_class, max_steps, mode)
    if not notes:
        lines.append("No warnings: every task beats its majority baseline and every class is recognised at least once.")
    return Section("Summary", "\n".join(lines), tables=[table], notes=notes, card=True)


def training_card(history: Sequence[Mapping] | None, monitor: str, mode: str | None, planned_epochs: int | None,
                  tables: Sequence[Table], scope: str = "", max_steps: int | None = None) -> Section:
    """The summary card of a run whose headline is not per-task accuracy (verification, generation): best epoch
    and why, the headline table(s), and the training warnings (stopped early, NaN, still improving)."""
    lines = [f"Scored: {scope}."] if scope else []
    if history:
        lines.append(best_epoch_text(history, monitor, mode))
    notes = run_warnings(history, monitor, planned_epochs, {}, {}, None, max_steps, mode)
    if not notes:
        lines.append("No warnings: the run finished its epochs with finite losses.")
    return Section("Summary", "\n".join(lines), tables=list(tables), notes=notes, card=True)


def per_class_table(task: str, rows: Mapping[str, Mapping[str, float]]) -> Table:
    """Precision / recall / F1 / support of every class, worst F1 first (so recall-0 classes lead)."""
    present = [(c, r) for c, r in rows.items() if c != "macro avg" and r["support"] > 0]
    absent = sum(1 for c, r in rows.items() if c != "macro avg" and r["support"] == 0)
    body = sorted(present, key=lambda cr: (cr[1]["f1"], -cr[1]["support"]))
    out = [[c, r["precision"], r["recall"], r["f1"], int(r["support"])] for c, r in body]
    if "macro avg" in rows:
        m = rows["macro avg"]
        out.append(["macro average", m["precision"], m["recall"], m["f1"], int(m["support"])])
    note = f"; {absent} known class{'es' if absent > 1 else ''} with no scored image left out" if absent else ""
    return Table(["class", "precision", "recall", "F1", "support"], out,
                 caption=f"{task}: per class, worst F1 first{note}")


def per_class_sections(per_class: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Section:
    """One section with every task's per-class table."""
    return Section("Per-class metrics", "Precision, recall and F1 of every class on the scored rows, worst F1 "
                   "first: a class with recall 0 is one the model never recognises.",
                   tables=[per_class_table(t, rows) for t, rows in per_class.items()])


HYPERPARAMETERS = ("optimizer", "scheduler", "lr", "backbone_lr_mult", "weight_decay", "label_smoothing", "grad_clip",
                   "momentum", "epochs", "max_steps", "batch_size", "tta", "augment", "seed", "precision")


def hyperparameter_table(train) -> Table:
    """The training settings that actually ran (a `TrainConfig`): every field the recipe fills in resolved, never
    null, with where it came from, and the learning rate of each parameter group."""
    from vislab.core.recipes import RECIPES
    filled, recipe = train.filled(), RECIPES[train.recipe]
    rows = []
    for name in HYPERPARAMETERS:
        v = getattr(filled, name)
        source = f"recipe {train.recipe}" if name in recipe and getattr(train, name) is None else "config"
        rows.append([f"train.{name}", "none" if v is None else v, source])
    rows.append(["lr of the heads", filled.lr, "train.lr"])
    rows.append(["lr of the pretrained backbone (if any)", filled.lr * filled.backbone_lr_mult,
                 "train.lr x train.backbone_lr_mult"])
    return Table(["setting", "value", "from"], rows)
