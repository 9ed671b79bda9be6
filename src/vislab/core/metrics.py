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
from torchmetrics.classification import (
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

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
        """A target of -1 (a label this task does not know, e.g. on other data) is left out."""
        logits, target = logits.detach().float(), target.detach()
        known = target >= 0
        if not bool(known.all()):
            logits, target = logits[known], target[known]
            if not len(target):
                return
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


def majority_baseline(train_targets, test_targets, train_counts=None) -> float:
    """Accuracy of always predicting the most frequent training class (from `train_counts`, rows per class, when
    given); test targets of -1 (unknown labels) are left out."""
    test_targets = torch.as_tensor(test_targets)
    test_targets = test_targets[test_targets >= 0]
    counts = torch.as_tensor(train_counts) if train_counts is not None else torch.bincount(
        torch.as_tensor(train_targets)[torch.as_tensor(train_targets) >= 0])
    return float((test_targets == counts.argmax()).float().mean()) if len(test_targets) else float("nan")


# ------------------------------------------------------------------- per-class reports (numpy, sklearn-exact)
import numpy as np  # noqa: E402


def _labels(y) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    return np.asarray(y).astype(np.int64).reshape(-1)


def confusion_counts(y_true, y_pred, num_classes: int):
    """``cm[true, pred]`` counts, an int64 ``(C, C)`` numpy array (= sklearn's ``confusion_matrix`` with
    ``labels=range(C)``)."""
    t, p = _labels(y_true), _labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    c = int(num_classes)
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= c):
            raise ValueError(f"{name} must lie in [0, {c}), got range [{v.min()}, {v.max()}]")
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def per_class_report(y_true, y_pred, class_names) -> dict[str, dict[str, float]]:
    """{class: {"precision", "recall", "f1", "support"}} for every class in ``class_names`` (label i =
    class_names[i]) plus "macro avg" (unweighted mean over all classes; support = total). A 0/0 ratio
    is 0, as sklearn's ``classification_report(..., labels=range(C), zero_division=0)``."""
    names = [str(n) for n in class_names]
    cm = confusion_counts(y_true, y_pred, len(names)).astype(np.float64)
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = support + predicted  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    out: dict[str, dict[str, float]] = {
        n: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "support": int(support[i])} for i, n in enumerate(names)}
    out["macro avg"] = {"precision": float(precision.mean()) if names else 0.0,
                        "recall": float(recall.mean()) if names else 0.0,
                        "f1": float(f1.mean()) if names else 0.0, "support": int(support.sum())}
    return out


def confused_pairs(cm, class_names, top: int = 5) -> list[tuple[str, str, int, float]]:
    """The ``top`` most confused unordered class pairs: ``(class_i, class_j, n, share)`` with i < j,
    n = cm[i, j] + cm[j, i] (both directions, > 0) and share = n / (samples of class i + of class j)
    (row sums of ``cm[true, pred]``). Sorted by n descending, ties by (i, j)."""
    if isinstance(cm, torch.Tensor):
        cm = cm.detach().cpu().numpy()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"need a square (C, C) matrix for {len(class_names)} classes, got shape {cm.shape}")
    rows = cm.sum(axis=1)
    sym = cm + cm.T
    i, j = np.triu_indices(cm.shape[0], k=1)
    n = sym[i, j]
    keep = n > 0
    i, j, n = i[keep], j[keep], n[keep]
    order = np.lexsort((j, i, -n))[: max(int(top), 0)]
    out = []
    for k in order:
        tot = rows[i[k]] + rows[j[k]]
        out.append((str(class_names[i[k]]), str(class_names[j[k]]), int(n[k]), float(n[k] / tot) if tot > 0 else 0.0))
    return out


def frechet_distance(real, fake, extractor, batch_size: int = 1000) -> float:
    """FID between two image sets in the feature space of `extractor` (a module mapping images to
    (N, d) features, with `num_features`), via torchmetrics' FrechetInceptionDistance: ||mu_r - mu_f||^2 +
    Tr(S_r + S_f - 2 (S_r S_f)^(1/2)). Images are (N, C, H, W), uint8 or float in [0, 1]. FID values are
    comparable only within one extractor."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    fid = FrechetInceptionDistance(feature=extractor, normalize=True, reset_real_features=True)
    for imgs, is_real in ((real, True), (fake, False)):
        t = torch.as_tensor(np.asarray(imgs)) if not isinstance(imgs, torch.Tensor) else imgs
        if len(t) < 2:
            raise ValueError("FID needs at least 2 images per set")
        for i in range(0, len(t), batch_size):
            b = t[i:i + batch_size]
            fid.update(b.float().div(255.0) if b.dtype == torch.uint8 else b.float(), real=is_real)
    return float(fid.compute())


class MeanParts(nn.Module):
    """Batch-size-weighted mean of each scalar part of an objective ({"loss": ..., "kl": ...}) over an
    epoch, as {"average": {...}}: the metrics of objectives without per-class scores (Siamese training,
    VAEs)."""

    def __init__(self):
        super().__init__()
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def update(self, outputs, targets, parts) -> None:
        n = len(targets)
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * n
        self.n += n

    def compute(self) -> dict[str, dict[str, float]]:
        return {"average": {k: v / max(self.n, 1) for k, v in self.sums.items()}}


def bootstrap_samples(tasks: dict[str, tuple], n: int = 1000, seed: int = 0,
                      chunk: int = 100) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{task: (accuracy (n,), macro F1 (n,))} over `n` resamples of the images, the same resample for every
    task; two calls with the same `n`, `seed` and image count draw the same resamples (paired comparisons).

    `tasks`: {task: (targets (N,), predictions (N,), num_classes)}; a target of -1 (unknown) is left out of
    that task. Macro F1 averages the classes that occur in the resample's targets or predictions (what
    torchmetrics' macro F1 does)."""
    lengths = {len(v[0]) for v in tasks.values()}
    if len(lengths) != 1:
        raise ValueError(f"every task needs one target per image, got lengths {sorted(lengths)}")
    size = lengths.pop()
    rng = np.random.default_rng(seed)
    acc = {t: [] for t in tasks}
    f1 = {t: [] for t in tasks}
    for start in range(0, n, chunk):
        b = min(chunk, n - start)
        idx = rng.integers(0, size, (b, size))
        for t, (y, p, c) in tasks.items():
            y, p = _labels(y), _labels(p)
            yi, pi = y[idx], p[idx]
            known = yi >= 0
            codes = np.where(known, yi * c + pi, c * c) + (np.arange(b) * (c * c + 1))[:, None]
            cm = np.bincount(codes.ravel(), minlength=b * (c * c + 1)).reshape(b, c * c + 1)[:, :c * c]
            cm = cm.reshape(b, c, c).astype(np.float64)
            tp = np.diagonal(cm, axis1=1, axis2=2)
            denom = cm.sum(2) + cm.sum(1)  # 2tp + fp + fn per class
            present = denom > 0
            f = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=present)
            acc[t].append(tp.sum(1) / np.maximum(known.sum(1), 1))
            f1[t].append(f.sum(1) / np.maximum(present.sum(1), 1))
    out = {t: (np.concatenate(acc[t]), np.concatenate(f1[t])) for t in tasks}
    out["average"] = (np.mean([a for a, _ in out.values()], axis=0), np.mean([f for _, f in out.values()], axis=0))
    return out


def _interval(samples: np.ndarray, level: float) -> list[float]:
    return np.percentile(samples, [100 * (1 - level) / 2, 100 * (1 + level) / 2]).tolist()


def bootstrap_intervals(tasks: dict[str, tuple], n: int = 1000, level: float = 0.95, seed: int = 0
                        ) -> dict[str, dict[str, list[float]]]:
    """Percentile bootstrap intervals of accuracy and macro F1 per task and of their averages over tasks
    (`bootstrap_samples`): {task | "average": {"accuracy": [lo, hi], "f1": [lo, hi]}}."""
    return {t: {"accuracy": _interval(a, level), "f1": _interval(f, level)}
            for t, (a, f) in bootstrap_samples(tasks, n, seed).items()}


def bootstrap_difference(a: dict[str, tuple], b: dict[str, tuple], n: int = 1000, level: float = 0.95,
                         seed: int = 0) -> dict[str, dict[str, list[float]]]:
    """Paired intervals of b - a (two models, or one with and without a change, on the same images): the
    same resamples for both, so what the images share cancels. {task | "average": {"accuracy": [lo, hi],
    "f1": [lo, hi]}}; an interval that excludes 0 is a difference the test split can tell."""
    sa, sb = bootstrap_samples(a, n, seed), bootstrap_samples(b, n, seed)
    return {t: {"accuracy": _interval(sb[t][0] - sa[t][0], level), "f1": _interval(sb[t][1] - sa[t][1], level)}
            for t in sa}
