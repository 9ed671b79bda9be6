"""Knowledge distillation from fixed soft targets: `DistillationObjective` mixes each task's label loss with the
KL divergence to a teacher's (e.g. an ensemble's) probabilities, looked up per training row.

The teachers' probabilities are computed once, before training, on the un-augmented training images (offline
distillation): on a CPU a teacher forward pass per step would cost about a third of the student's step per
teacher. The training loader carries each sample's row number as one extra target column (`with_row_ids`); a
batch without it (validation, test) gets the plain label loss, so val_loss stays comparable across runs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def with_row_ids(targets: np.ndarray) -> np.ndarray:
    """Targets (N, T) with each row's number appended as column T: what `DistillationObjective` looks rows up by."""
    t = np.asarray(targets)
    return np.concatenate([t, np.arange(len(t), dtype=t.dtype)[:, None]], axis=1)


class DistillationObjective:
    """Per task: (1 - weight) * the base objective's loss on the labels + weight * T^2 * KL(teacher || student at
    temperature T) (Hinton et al., 2015; T^2 keeps the soft part's gradients the size of the hard part's).

    `soft` maps each task to the teacher probabilities (at temperature T) of every row of the data, (N, classes);
    targets with one extra column (row numbers) select them. The tasks' loss weights are the base objective's.
    Mixed batches (`vislab.core.mixing`) blend two losses whose targets carry their own row numbers: the soft part
    follows the mixed-in image's teacher probabilities too.
    """

    mixable = True

    def __init__(self, base, soft: dict[str, torch.Tensor], weight: float, temperature: float):
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"distillation weight must lie in (0, 1], got {weight}")
        if temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {temperature}")
        for t, n in base.tasks.items():
            if t not in soft or soft[t].ndim != 2 or soft[t].shape[1] != n:
                got = None if t not in soft else tuple(soft[t].shape)
                raise ValueError(f"teacher probabilities for {t!r}: shape {got}, need (rows, {n})")
        self.base, self.weight, self.temperature = base, float(weight), float(temperature)
        self.soft = {t: soft[t].float() for t in base.tasks}
        self.tasks = base.tasks

    def __call__(self, outputs, targets: torch.Tensor):
        outputs = self.base.as_dict(outputs)
        if targets.ndim == 1 or targets.shape[1] != len(self.tasks) + 1:
            return self.base(outputs, targets)  # no row numbers: evaluation, the label loss alone
        rows, targets = targets[:, -1], targets[:, :-1]
        _, parts = self.base(outputs, targets)
        T, w = self.temperature, self.weight
        for t in self.tasks:
            soft = self.soft[t]
            if soft.device != outputs[t].device:
                soft = self.soft[t] = soft.to(outputs[t].device)
            log_q = nn.functional.log_softmax(outputs[t].float() / T, dim=-1)
            kd = nn.functional.kl_div(log_q, soft[rows], reduction="batchmean") * (T * T)
            parts[t] = (1 - w) * parts[t] + w * kd
        return self.base.combine(parts), parts

    @property
    def module(self):
        """The base objective's learned task weights (None when fixed)."""
        return self.base.module

    def log_row(self) -> dict[str, float]:
        return self.base.log_row()

    def as_dict(self, outputs):
        return self.base.as_dict(outputs)

    def make_metrics(self, train: bool = False, sync: bool = True):
        return self.base.make_metrics(train=train, sync=sync)
