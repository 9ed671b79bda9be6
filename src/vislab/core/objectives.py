"""Generic training objectives: cross-entropy over one or several heads (`ClassificationObjective`), learned task
weights (`TaskUncertainty`), class-balance weights for rare classes (`class_balance_weights`) and flip test-time
augmentation (`FlipTTA`)."""
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


class TaskUncertainty(nn.Module):
    """Task weights learned with the network (Kendall, Gal and Cipolla, 2018): one log-variance s_t per task, and
    the total loss sum_t exp(-s_t) * L_t + s_t / 2 (their classification form, 1/sigma^2 * L + log sigma). A task
    whose loss stays high gets a smaller weight; at the optimum exp(-s_t) = 1 / (2 L_t). Every s_t starts at 0
    (weight 1, the fixed-weight objective's start)."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = list(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        s = self.log_vars
        return sum(torch.exp(-s[i]) * parts[t] + s[i] / 2 for i, t in enumerate(self.tasks))

    def weights(self) -> dict[str, float]:
        """Each task's current weight exp(-s_t)."""
        return {t: float(w) for t, w in zip(self.tasks, torch.exp(-self.log_vars.detach()).cpu())}


class ClassificationObjective:
    """Sum over tasks of (weighted, optionally label-smoothed, optionally class-balanced) cross-entropy.

    Outputs are `{task: logits}` and targets an int tensor (N, T), columns in task order.
    A single-task lab (CIFAR-10) is the special case of one task. `class_weights` maps a task to its per-class
    weights (`class_balance_weights`); the task's loss is then the weighted mean over the batch.
    `uncertainty=True` learns the task weights instead (`TaskUncertainty`, in `module`: the engine trains its
    parameters with the network's and keeps them in the resume state). The loss is a mean over samples of a loss
    per label, so mixed batches (`vislab.core.mixing`) can be scored as a blend of two losses (`mixable`).
    """

    mixable = True

    def __init__(self, tasks: dict[str, int], weights: dict[str, float] | None = None, label_smoothing: float = 0.0,
                 class_weights: dict[str, torch.Tensor] | None = None, uncertainty: bool = False):
        self.tasks = dict(tasks)
        self.weights = {t: float((weights or {}).get(t, 1.0)) for t in tasks}
        self.label_smoothing = label_smoothing
        self.class_weights = dict(class_weights or {})
        for t, w in self.class_weights.items():
            if t not in self.tasks or len(w) != self.tasks[t]:
                raise ValueError(f"class weights for {t!r}: {len(w)} values for a task of {self.tasks.get(t)} classes")
        if uncertainty and weights and any(v != 1.0 for v in weights.values()):
            raise ValueError("learned task weights (uncertainty) replace fixed task weights: give one or the other")
        self.module = TaskUncertainty(self.tasks) if uncertainty else None

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
        return self.combine(parts), parts

    def combine(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The total loss of the tasks' losses: fixed weights, or the learned ones."""
        if self.module is not None:
            if self.module.log_vars.device != next(iter(parts.values())).device:
                self.module.to(next(iter(parts.values())).device)
            return self.module(parts)
        return sum(self.weights[t] * v for t, v in parts.items())

    def log_row(self) -> dict[str, float]:
        """Columns for the history: the learned task weights (none when fixed)."""
        if self.module is None:
            return {}
        return {f"task_weight_{t}": round(w, 5) for t, w in self.module.weights().items()}

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
