"""Classification metrics per task and averaged over tasks, on torchmetrics.

Per task: accuracy (plain, i.e. micro: torchmetrics' MulticlassAccuracy defaults to macro, so
`average="micro"` is set explicitly), macro F1 / precision / recall, mean loss, and micro-average
ROC-AUC (one-vs-rest on the flattened one-hot targets, as sklearn's `average="micro"`).
States sync across DDP processes when `compute()` is called.
"""
from __future__ import annotations

import torch
import torchmetrics
from torch import nn
from torchmetrics.classification import (BinaryAUROC, MulticlassAccuracy, MulticlassF1Score,
                                         MulticlassPrecision, MulticlassRecall)

METRICS = ["accuracy", "f1", "precision", "recall", "auroc", "loss"]


class ClassificationMetrics(nn.Module):
    """Metrics of one classification task."""

    def __init__(self, num_classes: int, auroc: bool = True, sync: bool = True):
        super().__init__()
        c, kw = num_classes, {"sync_on_compute": sync}
        self.num_classes = c
        self.accuracy = MulticlassAccuracy(c, average="micro", **kw)
        self.f1 = MulticlassF1Score(c, average="macro", **kw)
        self.precision = MulticlassPrecision(c, average="macro", **kw)
        self.recall = MulticlassRecall(c, average="macro", **kw)
        self.auroc = BinaryAUROC(**kw) if auroc else None
        self.loss = torchmetrics.MeanMetric(**kw)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor, loss: torch.Tensor | None = None) -> None:
        logits, target = logits.detach().float(), target.detach()
        pred = logits.argmax(-1)
        for m in (self.accuracy, self.f1, self.precision, self.recall):
            m.update(pred, target)
        if self.auroc is not None:
            probs = logits.softmax(-1)
            onehot = nn.functional.one_hot(target, self.num_classes)
            self.auroc.update(probs.flatten(), onehot.flatten())
        if loss is not None:
            self.loss.update(loss.detach().float(), weight=target.numel())

    def compute(self) -> dict[str, float]:
        out = {k: float(getattr(self, k).compute()) for k in ("accuracy", "f1", "precision", "recall")}
        if self.auroc is not None:
            out["auroc"] = float(self.auroc.compute())
        if self.loss.update_count:
            out["loss"] = float(self.loss.compute())
        return out

    def reset(self) -> None:
        for m in self.children():
            m.reset()


class MultiTaskMetrics(nn.Module):
    """{task: ClassificationMetrics}; `compute()` adds an "average" entry over tasks."""

    def __init__(self, tasks: dict[str, int], auroc: bool = True, sync: bool = True):
        super().__init__()
        self.tasks = nn.ModuleDict({t: ClassificationMetrics(n, auroc, sync) for t, n in tasks.items()})

    def update(self, logits: dict[str, torch.Tensor], targets: torch.Tensor,
               losses: dict[str, torch.Tensor] | None = None) -> None:
        for j, (t, m) in enumerate(self.tasks.items()):
            m.update(logits[t], targets[:, j], None if losses is None else losses[t])

    def compute(self) -> dict[str, dict[str, float]]:
        out = {t: m.compute() for t, m in self.tasks.items()}
        keys = set.intersection(*(set(v) for v in out.values()))
        out["average"] = {k: sum(v[k] for v in out.values()) / len(self.tasks) for k in METRICS if k in keys}
        return out

    def reset(self) -> None:
        for m in self.tasks.values():
            m.reset()


def majority_baseline(train_targets, test_targets) -> float:
    """Accuracy of always predicting the most frequent training class."""
    train_targets, test_targets = torch.as_tensor(train_targets), torch.as_tensor(test_targets)
    mode = torch.bincount(train_targets).argmax()
    return float((test_targets == mode).float().mean())
