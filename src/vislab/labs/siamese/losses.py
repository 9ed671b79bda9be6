"""Metric-learning losses of the Siamese lab (issue 4).

Contrastive loss on the Euclidean distance d between two embeddings, y = 1 for a same-person pair:

    original: y * d**2 + (1 - y) * max(0, m**2 - d**2)     (the original experiment's form)
    hadsell:  y * d**2 + (1 - y) * max(0, m - d)**2        (Hadsell, Chopra & LeCun 2006)

Both are averaged over the batch, without the 1/2 factor some papers add. They agree for
positive pairs; for negative pairs the original form pushes on squared distances, so its
gradient grows with d while Hadsell's vanishes as d approaches m.

Triplet loss: mean(max(d(a, p) - d(a, n) + margin, 0)) with Euclidean or cosine distance
(1 - cosine similarity), computed by torch's TripletMarginWithDistanceLoss.
"""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

ContrastiveForm = Literal["original", "hadsell"]
Distance = Literal["euclidean", "cosine"]

# the small constant keeps sqrt differentiable at d = 0 (identical embeddings)
_EPS = 1e-12


def euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Euclidean distance of two (N, D) batches."""
    return ((a - b).pow(2).sum(-1) + _EPS).sqrt()


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise 1 - cosine similarity of two (N, D) batches (0 same direction, 2 opposite)."""
    return 1 - F.cosine_similarity(a, b, dim=-1)


DISTANCES = {"euclidean": euclidean, "cosine": cosine_distance}


def contrastive_loss(d: torch.Tensor, y: torch.Tensor, margin: float = 1.0,
                     form: ContrastiveForm = "original") -> torch.Tensor:
    """Mean contrastive loss of distances `d` (N,) and labels `y` (N,; 1 same, 0 different)."""
    if margin <= 0:
        raise ValueError(f"contrastive margin must be > 0, got {margin}")
    y = y.to(d.dtype)
    if form == "original":
        neg = (margin ** 2 - d.pow(2)).clamp_min(0)
    elif form == "hadsell":
        neg = (margin - d).clamp_min(0).pow(2)
    else:
        raise ValueError(f"unknown contrastive form {form!r}; use 'original' or 'hadsell'")
    return (y * d.pow(2) + (1 - y) * neg).mean()


class ContrastiveLoss(nn.Module):
    """contrastive_loss on the Euclidean distance of two embedding batches."""

    def __init__(self, margin: float = 1.0, form: ContrastiveForm = "original"):
        super().__init__()
        contrastive_loss(torch.zeros(1), torch.ones(1), margin, form)  # validates margin and form now
        self.margin, self.form = margin, form

    def forward(self, a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return contrastive_loss(euclidean(a, b), y, self.margin, self.form)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, form={self.form!r}"


def triplet_loss(margin: float = 1.0, distance: Distance = "euclidean") -> nn.TripletMarginWithDistanceLoss:
    """torch's triplet loss, mean over the batch, with vislab's distance functions."""
    if margin <= 0:
        raise ValueError(f"triplet margin must be > 0, got {margin}")
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; use one of {sorted(DISTANCES)}")
    return nn.TripletMarginWithDistanceLoss(distance_function=DISTANCES[distance], margin=margin, reduction="mean")
