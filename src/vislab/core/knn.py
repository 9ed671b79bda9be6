"""Neighbour vote: the labels of the k most similar labelled images, blended with a classifier's probabilities.

    vote = NeighbourVote(bank_features, bank_targets, classes={"colour": 18, ...}, k=10, temperature=0.05)
    knn = vote.probs(query_features)                     # {task: (Q, classes)}: similarity-weighted label votes
    weights = choose_weights(model_probs, knn, targets)  # per task, the blend weight with the best accuracy
    probs = blend(model_probs, knn, weights)             # (1 - w) * model + w * vote

Similarity is the cosine of the model's pooled features; the k nearest bank images vote with weights
softmax(similarity / temperature). A bank target of -1 (label unknown) casts no vote for that task. The vote
is a classifier of its own (Wang et al., "Revisiting k-NN for pre-trained models", 2022): it remembers
individual training photos (near-duplicates, one shoot's look) that the linear heads average away."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.functional import normalize

WEIGHT_GRID = tuple(round(0.05 * i, 2) for i in range(21))
"""The blend weights `choose_weights` tries: 0, 0.05, ..., 1."""


class NeighbourVote:
    """k-nearest-neighbour label votes over a bank of labelled feature vectors (cosine similarity)."""

    def __init__(self, bank: torch.Tensor, targets: torch.Tensor, classes: dict[str, int], k: int = 10,
                 temperature: float = 0.05):
        bank, targets = torch.as_tensor(bank), torch.as_tensor(targets).long()
        if bank.ndim != 2 or targets.shape != (len(bank), len(classes)):
            raise ValueError(f"bank {tuple(bank.shape)} and targets {tuple(targets.shape)} do not fit "
                             f"{len(classes)} tasks")
        if not 1 <= k <= len(bank):
            raise ValueError(f"k must lie between 1 and the bank's {len(bank)} images, got {k}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.bank = normalize(bank.float(), dim=1)
        self.targets, self.classes, self.k, self.temperature = targets, dict(classes), int(k), float(temperature)

    def neighbours(self, features: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
        """(similarities, bank rows) of each query's k nearest bank images, most similar first."""
        q = normalize(torch.as_tensor(features).float(), dim=1)
        sims, rows = [], []
        for i in range(0, len(q), chunk):
            s, j = (q[i:i + chunk] @ self.bank.T).topk(self.k, dim=1)
            sims.append(s)
            rows.append(j)
        return torch.cat(sims), torch.cat(rows)

    @torch.no_grad()
    def probs(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per task, (Q, classes) vote shares; a query whose neighbours know no label for a task gets zeros."""
        sims, rows = self.neighbours(features)
        w = torch.softmax(sims / self.temperature, dim=1)
        out = {}
        for j, (task, n) in enumerate(self.classes.items()):
            y = self.targets[rows, j]
            known = y >= 0
            p = torch.zeros(len(rows), n).scatter_add_(1, y.clamp_min(0), w * known)
            out[task] = p / p.sum(1, keepdim=True).clamp_min(1e-12)
        return out


def blend(model: dict[str, torch.Tensor], vote: dict[str, torch.Tensor],
          weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """(1 - w) * model probabilities + w * vote shares, per task (tasks without a weight keep the model's)."""
    return {t: (1 - weights.get(t, 0.0)) * p + weights.get(t, 0.0) * vote[t].to(p) for t, p in model.items()}


def choose_weights(model: dict[str, torch.Tensor], vote: dict[str, torch.Tensor], targets: np.ndarray | torch.Tensor,
                   grid: tuple[float, ...] = WEIGHT_GRID) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Per task, the blend weight of `grid` with the highest accuracy on these labelled rows (ties: the
    smallest weight, so 0, the model alone, unless the vote helps); and {task: {"model", "blend"}} accuracies."""
    y = torch.as_tensor(np.asarray(targets)).long()
    weights, scores = {}, {}
    for j, (t, p) in enumerate(model.items()):
        keep = y[:, j] >= 0
        accs = [float((((1 - w) * p + w * vote[t])[keep].argmax(1) == y[keep, j]).float().mean()) for w in grid]
        best = int(np.argmax(accs))  # first maximum: the smallest weight
        weights[t] = float(grid[best])
        scores[t] = {"model": accs[grid.index(0.0)] if 0.0 in grid else float("nan"), "blend": accs[best]}
    return weights, scores
