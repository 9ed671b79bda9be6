"""The report's "Review thresholds" section: coverage vs accuracy per attribute, thresholds checked."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vislab.core.report import Figure, Section, Table
from vislab.labs.fashion.plots import coverage_accuracy
from vislab.labs.fashion.review import accepted


def review_section(review: dict, probs: dict, targets: np.ndarray, tasks: list[str], fig: Path,
                   scope: str) -> Section:
    """Coverage vs accuracy per attribute on the scored rows, with the thresholds chosen on validation."""
    rows, curves = [], {}
    for j, t in enumerate(tasks):
        k = targets[:, j] >= 0
        conf, correct = probs[t].max(1)[k], probs[t].argmax(1)[k] == targets[k, j]
        th = review["thresholds"].get(t)
        acc_mask = accepted(conf, th)
        curves[t] = (conf, correct, th)
        rows.append([t, "none (all reviewed)" if th is None else round(th, 3),
                     _pct(review["coverage"].get(t)), _pct(review["precision"].get(t)),
                     _pct(acc_mask.mean() if len(conf) else None),
                     _pct(correct[acc_mask].mean() if acc_mask.any() else None)])
    img = coverage_accuracy(curves, review["precision_target"], fig / "review.png")
    return Section("Review thresholds", f"A prediction is auto-accepted when its confidence reaches its attribute's "
                   f"threshold, chosen on the validation split for {review['precision_target']:.0%} precision; the "
                   f"rest need a person's review (`vislab fashion tag` flags them). The last two columns check the "
                   f"thresholds on {scope}.",
                   tables=[Table(["task", "threshold", "val auto-accepted", "val precision", "auto-accepted",
                                  "accuracy of accepted"], rows)],
                   images=[Figure(img, "Accuracy of the auto-accepted predictions as more are accepted (most "
                                  "confident first); the dot is the chosen threshold, the dashed line the "
                                  "target precision.", "wide")])


def _pct(v) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"
