"""Bootstrap intervals of accuracy and macro F1: they contain the full-sample value, shrink like 1/sqrt(n),
agree with torchmetrics' macro F1, and leave unknown targets out."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassF1Score

from vislab.core.metrics import bootstrap_intervals


def noisy(n: int, c: int, acc: float, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    p = np.where(rng.random(n) < acc, y, rng.integers(0, c, n))
    return y, p


def test_intervals_contain_the_value_and_shrink_with_more_images():
    y, p = noisy(1600, 5, 0.7, 0)
    full = bootstrap_intervals({"t": (y, p, 5)})["t"]
    quarter = bootstrap_intervals({"t": (y[:400], p[:400], 5)})["t"]
    acc = float((y == p).mean())
    f1 = float(MulticlassF1Score(5, average="macro")(torch.from_numpy(p), torch.from_numpy(y)))
    assert full["accuracy"][0] < acc < full["accuracy"][1] and full["f1"][0] < f1 < full["f1"][1]
    w_full = full["accuracy"][1] - full["accuracy"][0]
    w_quarter = quarter["accuracy"][1] - quarter["accuracy"][0]
    assert w_quarter / w_full == pytest.approx(2.0, rel=0.25)  # 1/sqrt(n)
    # the 95% interval of a proportion: about +-1.96 sqrt(a (1 - a) / n)
    assert w_full == pytest.approx(2 * 1.96 * np.sqrt(acc * (1 - acc) / 1600), rel=0.15)


def test_perfect_rare_classes_unknown_targets_and_the_average():
    y = np.array([0, 1, 2, 2, 1, 0] * 50)
    out = bootstrap_intervals({"a": (y, y, 4), "b": (np.where(y == 2, -1, y), np.zeros_like(y), 3)}, n=200)
    assert out["a"]["accuracy"] == [1.0, 1.0] and out["a"]["f1"] == [1.0, 1.0]  # class 3 never occurs: not averaged
    lo, hi = out["b"]["accuracy"]  # known rows only: half of them are class 0
    assert lo < 0.5 < hi and hi - lo < 0.2
    assert out["average"]["accuracy"][0] == pytest.approx((1.0 + lo) / 2, abs=0.03)
    with pytest.raises(ValueError, match="one target per image"):
        bootstrap_intervals({"a": (y, y, 4), "b": (y[:10], y[:10], 4)})


def test_paired_difference_sees_what_overlapping_intervals_hide():
    from vislab.core.metrics import bootstrap_difference
    y, p = noisy(2000, 5, 0.80, 1)
    better = p.copy()
    wrong = np.flatnonzero(p != y)
    better[wrong[: len(y) // 100]] = y[wrong[: len(y) // 100]]  # 1 point more accuracy, same images
    a, b = {"t": (y, p, 5)}, {"t": (y, better, 5)}
    ia, ib = bootstrap_intervals(a)["t"]["accuracy"], bootstrap_intervals(b)["t"]["accuracy"]
    assert ib[0] < ia[1]  # the two intervals overlap ...
    d = bootstrap_difference(a, b)["t"]["accuracy"]
    assert 0 < d[0] <= 0.01 <= d[1] < 0.02  # ... but the paired difference excludes 0
    assert bootstrap_difference(a, a)["average"]["accuracy"] == [0.0, 0.0]
