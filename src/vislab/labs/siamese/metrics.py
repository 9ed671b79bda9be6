"""Verification and retrieval metrics: pair distances, ROC AUC / EER, the validation threshold and
accuracy at it, the logistic calibration of P(same | distance), P@1 and MAP@R, nearest neighbours."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vislab.labs.siamese.losses import DISTANCES

if TYPE_CHECKING:
    from vislab.labs.siamese.objective import SiameseObjective


class VerificationMetrics(nn.Module):
    """Evaluation: embeddings of a labelled set, then over ALL its pairs the verification AUC and EER,
    and the loss of the whole set (one number, independent of batching)."""

    def __init__(self, objective: SiameseObjective):
        super().__init__()
        self.objective = objective
        self.reset()

    def reset(self) -> None:
        self.emb, self.lab = [], []

    def update(self, out, y, parts=None) -> None:
        if len(out) != len(y):
            raise ValueError("validation batches must be labelled images (one embedding per label)")
        self.emb.append(out.detach().float().cpu())
        self.lab.append(y.detach().cpu())

    def compute(self) -> dict[str, dict[str, float]]:
        if not self.emb:
            return {"average": {}}
        emb, lab = torch.cat(self.emb), torch.cat(self.lab)
        d, same = pair_distances(emb, lab, self.objective.distance)
        v = verification_metrics(d, same)
        out = {"auc": v["auc"], "eer": v["eer"]}
        if self.objective.has_val_loss:
            out["loss"] = float(self.objective.labelled_loss(emb, lab, mined=False))
        return {"average": out}


def pair_distances(emb, labels, distance: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Distances and same-person flags of every unordered pair i < j of a labelled set."""
    e = torch.as_tensor(np.asarray(emb) if not isinstance(emb, torch.Tensor) else emb).float()
    lab = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    i, j = torch.triu_indices(len(e), len(e), 1)
    d = DISTANCES[distance](e[i], e[j])
    return d.numpy().astype(np.float64), (lab[i] == lab[j]).numpy().astype(np.int64)


def verification_metrics(d: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """ROC of the score -distance (torchmetrics), AUC, and the equal error rate with its distance threshold."""
    from torchmetrics.functional.classification import binary_auroc, binary_roc
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=np.int64)
    if same.min(initial=1) == same.max(initial=0):
        raise ValueError("verification needs same-person and different-person pairs")
    s, t = torch.from_numpy(-d), torch.from_numpy(same)
    fpr, tpr, thr = binary_roc(s, t, thresholds=None)
    auc = float(binary_auroc(s, t, thresholds=None))
    fpr, tpr, thr = fpr.numpy(), tpr.numpy(), -thr.numpy()
    fnr = 1 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    # EER: where FNR and FPR cross, interpolated between the two ROC points around the crossing
    diff = fnr - fpr
    eer = float((fpr[k] + fnr[k]) / 2)
    for a in range(len(diff) - 1):
        if diff[a] >= 0 >= diff[a + 1]:
            w = diff[a] / (diff[a] - diff[a + 1]) if diff[a] != diff[a + 1] else 0.0
            eer = float(fpr[a] + w * (fpr[a + 1] - fpr[a]))
            break
    return {"auc": auc, "eer": eer, "eer_threshold": float(thr[k]), "fpr": fpr, "tpr": tpr, "thresholds": thr}


def choose_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (same person when d <= t) with the highest balanced accuracy on these pairs:
    chosen on VALIDATION pairs, then applied unchanged to test."""
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same).astype(bool)
    cand = np.unique(d)
    order = np.argsort(d)
    ds, ss = d[order], same[order]
    tp = np.cumsum(ss)  # same-person pairs with d <= ds[k]
    fp = np.cumsum(~ss)
    last = np.searchsorted(ds, cand, side="right") - 1
    tpr = tp[last] / max(ss.sum(), 1)
    tnr = 1 - fp[last] / max((~ss).sum(), 1)
    k = int(np.argmax(tpr + tnr))
    nxt = cand[k + 1] if k + 1 < len(cand) else cand[k]
    return float((cand[k] + nxt) / 2)  # halfway to the next distance: robust to ties and small shifts


def accuracy_at(d: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
    pred = np.asarray(d) <= threshold
    s = np.asarray(same).astype(bool)
    tpr = float((pred & s).sum() / max(s.sum(), 1))
    tnr = float((~pred & ~s).sum() / max((~s).sum(), 1))
    return {"accuracy": float((pred == s).mean()), "balanced_accuracy": (tpr + tnr) / 2, "tpr": tpr, "tnr": tnr}


def retrieval_metrics(emb: np.ndarray, labels: np.ndarray, distance: str = "euclidean") -> dict[str, float]:
    """precision@1 and MAP@R, every image querying all the others (pytorch-metric-learning's
    AccuracyCalculator with a plain distance kNN, no faiss)."""
    from pytorch_metric_learning import distances
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN
    dist = distances.LpDistance(normalize_embeddings=False) if distance == "euclidean" else distances.CosineSimilarity()
    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                              knn_func=CustomKNN(dist), k="max_bin_count")
    e = torch.as_tensor(np.asarray(emb)).float()
    y = torch.as_tensor(np.asarray(labels))
    r = calc.get_accuracy(e, y, e, y, ref_includes_query=True)
    return {"precision_at_1": float(r["precision_at_1"]), "map_at_r": float(r["mean_average_precision_at_r"])}


def nearest(query: torch.Tensor, gallery: torch.Tensor, k: int, distance: str = "euclidean",
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of the k nearest gallery rows of each query row, closest first."""
    d = (torch.cdist(query, gallery) if distance == "euclidean"
         else 1 - nn.functional.normalize(query, dim=1) @ nn.functional.normalize(gallery, dim=1).T)
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    k = min(k, gallery.shape[0] - int(exclude_self))
    v, i = d.topk(k, dim=1, largest=False)
    return i.numpy(), v.numpy()


def calibrate(d: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """P(same | distance) as a logistic function of the distance, fitted on validation pairs
    (class-balanced, so the 50% point sits near the balanced-accuracy threshold)."""
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression(class_weight="balanced").fit(np.asarray(d).reshape(-1, 1), np.asarray(same))
    return {"coef": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
