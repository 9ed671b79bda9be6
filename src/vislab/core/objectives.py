"""Generic training objectives: cross-entropy over one or several heads (`ClassificationObjective`), class-balance
weights for rare classes (`class_balance_weights`) and flip test-time augmentation (`FlipTTA`)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vislab.core.metrics import MultiTaskMetrics


def class_balance_weights(targets: np.ndarray, n_classes: int, power: float) -> torch.Tensor:
    """Per-class loss weights w_c proportional to (1 / n_c)^power, from one task's training targets (-1 = unknown,
    ignored): power 0 is plain cross-entropy, 1 weighs every class equally in total, 0.5 is in between.

    Scaled so that the mean weight over the training samples is 1 (the loss keeps its size, so the learning rate
    still fits). A class absent from the targets counts as one sample.
    """
    t = np.asarray(targets)
    counts = np.bincount(t[t >= 0].astype(np.int64), minlength=n_classes)[:n_classes].astype(np.float64)
    w = np.maximum(counts, 1.0) ** -float(power)
    w *= counts.sum() / max(float((w * counts).sum()), 1e-12) if counts.sum() else 1.0
    return torch.tensor(w, dtype=torch.float32)


class ClassificationObjective:
    """Sum over tasks of (weighted, optionally label-smoothed, optionally class-balanced) cross-entropy.

    Outputs are `{task: logits}` and targets an int tensor (N, T), columns in task order.
    A single-task lab (CIFAR-10) is the special case of one task. `class_weights` maps a task to its per-class
    weights (`class_balance_weights`); the task's loss is then the weighted mean over the batch.
    """

    def __init__(self, tasks: dict[str, int], weights: dict[str, float] | None = None, label_smoothing: float = 0.0,
                 class_weights: dict[str, torch.Tensor] | None = None):
        self.tasks = dict(tasks)
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in tasks}
        self.label_smoothing = label_smoothing
        self.class_weights = dict(class_weights or {})
        for t, w in self.class_weights.items():
            if t not in self.tasks or len(w) != self.tasks[t]:
                raise ValueError(f"class weights for {t!r}: {len(w)} values for a task of {self.tasks.get(t)} classes")

    def _class_weight(self, task: str, device) -> torch.Tensor | None:
        w = self.class_weights.get(task)
        if w is not None and w.device != device:
            w = self.class_weights[task] = w.to(device)
        return w

    def __call__(self, outputs: dict[str, torch.Tensor] | torch.Tensor, targets: torch.Tensor):
        outputs = self.as_dict(outputs)
        if targets.ndim == 1:
            targets = targets[:, None]
        # -1: a label the task does not know (evaluation on other data with --partial); left out of the mean
        parts = {t: nn.functional.cross_entropy(outputs[t].float(), targets[:, j], ignore_index=-1,
                                                weight=self._class_weight(t, outputs[t].device),
                                                label_smoothing=self.label_smoothing)
                 for j, t in enumerate(self.tasks)}
        total = sum(self.weights[t] * v for t, v in parts.items())
        return total, parts

    def as_dict(self, outputs):
        """A plain logits tensor is the output of a single-task model (e.g. a CIFAR-10 CNN)."""
        if isinstance(outputs, torch.Tensor):
            if len(self.tasks) != 1:
                raise ValueError(f"the model returned one tensor but the objective has tasks {list(self.tasks)}")
            return {next(iter(self.tasks)): outputs}
        return outputs

    def make_metrics(self, train: bool = False, sync: bool = True) -> MultiTaskMetrics:
        return _SingleOrMulti(self, MultiTaskMetrics(self.tasks, auroc=not train, sync=sync))


class _SingleOrMulti(nn.Module):
    """MultiTaskMetrics that also accepts a single-task model's plain logits and (N,) targets."""

    def __init__(self, objective: ClassificationObjective, metrics: MultiTaskMetrics):
        super().__init__()
        self.objective, self.metrics = objective, metrics

    def update(self, outputs, targets, parts=None) -> None:
        self.metrics.update(self.objective.as_dict(outputs), targets[:, None] if targets.ndim == 1 else targets, parts)

    def compute(self):
        return self.metrics.compute()

    def reset(self) -> None:
        self.metrics.reset()


class FlipTTA(nn.Module):
    """Test-time augmentation: the mean of the logits of each image and its mirror image."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        a, b = self.model(x), self.model(x.flip(-1))
        if isinstance(a, dict):
            return {k: (a[k] + b[k]) / 2 for k in a}
        return (a + b) / 2
