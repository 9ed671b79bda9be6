"""DistillationObjective: each task's loss is (1 - w) * label loss + w * T^2 * KL(teacher || student at T)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vislab.core.distill import DistillationObjective, with_row_ids
from vislab.core.objectives import ClassificationObjective

TASKS = {"a": 3, "b": 5}


def _batch(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {t: torch.randn(n, c, generator=g) * 2 for t, c in TASKS.items()}
    y = torch.stack([torch.randint(0, c, (n,), generator=g) for c in TASKS.values()], 1)
    return out, y


def test_row_ids_are_appended_as_the_last_column():
    t = np.array([[2, 0], [1, 4], [0, 3]])
    assert with_row_ids(t).tolist() == [[2, 0, 0], [1, 4, 1], [0, 3, 2]]


def test_teacher_equal_to_the_student_leaves_only_the_weighted_label_loss():
    out, y = _batch()
    base = ClassificationObjective(TASKS, {"a": 2.0})
    T, w = 3.0, 0.25
    # rows 10..17 of a 20-row table hold the student's own tempered probabilities: KL = 0
    soft = {t: torch.rand(20, c) for t, c in TASKS.items()}
    for t in TASKS:
        soft[t][10:18] = (out[t] / T).softmax(-1)
    obj = DistillationObjective(base, soft, w, T)
    rows = torch.arange(10, 18)[:, None]
    total, parts = obj(out, torch.cat([y, rows], 1))
    base_total, base_parts = base(out, y)
    for t in TASKS:
        assert float(parts[t]) == pytest.approx((1 - w) * float(base_parts[t]), rel=1e-5)
    assert float(total) == pytest.approx((1 - w) * float(base_total), rel=1e-5)


def test_one_hot_teacher_at_temperature_one_is_the_cross_entropy():
    out, y = _batch(seed=1)
    base = ClassificationObjective(TASKS)
    soft = {t: torch.nn.functional.one_hot(y[:, j], c).float() for j, (t, c) in enumerate(TASKS.items())}
    total, parts = DistillationObjective(base, soft, 1.0, 1.0)(out, with_row_ids_t(y))
    assert float(total) == pytest.approx(float(base(out, y)[0]), rel=1e-5)


def test_a_wrong_teacher_moves_the_loss_and_batches_without_rows_get_the_label_loss():
    out, y = _batch(seed=2)
    base = ClassificationObjective(TASKS)
    wrong = {t: torch.nn.functional.one_hot((y[:, j] + 1) % c, c).float() for j, (t, c) in enumerate(TASKS.items())}
    obj = DistillationObjective(base, wrong, 0.5, 1.0)
    kd_total, _ = obj(out, with_row_ids_t(y))
    ce_wrong = ClassificationObjective(TASKS)(out, torch.stack([(y[:, j] + 1) % c for j, c in
                                                                enumerate(TASKS.values())], 1))[0]
    assert float(kd_total) == pytest.approx(0.5 * float(base(out, y)[0]) + 0.5 * float(ce_wrong), rel=1e-5)
    assert float(obj(out, y)[0]) == pytest.approx(float(base(out, y)[0]))  # validation: no row column


def test_bad_settings_and_shapes_are_refused():
    base = ClassificationObjective(TASKS)
    soft = {t: torch.rand(4, c) for t, c in TASKS.items()}
    with pytest.raises(ValueError, match="weight"):
        DistillationObjective(base, soft, 0.0, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        DistillationObjective(base, soft, 0.5, 0.0)
    with pytest.raises(ValueError, match=r"'b': shape \(4, 4\), need \(rows, 5\)"):
        DistillationObjective(base, {"a": soft["a"], "b": torch.rand(4, 4)}, 0.5, 1.0)


def with_row_ids_t(y: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(with_row_ids(y.numpy()))
