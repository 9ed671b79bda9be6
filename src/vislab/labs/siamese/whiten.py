"""Within-class covariance normalisation (WCCN; Hatch et al., 2006), fit in closed form on the training people.

A new person's photos differ from each other along the directions in which the training people's photos of
one person differ (pose, light, glasses, expression). WCCN centres the embeddings on the training mean and
scales those directions down: it multiplies by W^(-1/2), the inverse square root of the within-person
covariance W of the training people, shrunk toward a multiple of the identity, then the embedding is
L2-normalised again and compared by cosine as before. It is one linear layer, fit without gradients in a
second, on whatever the network embeds (a trained projection or the untrained pooled backbone features).

With N training images in D dimensions, W has rank at most N - people, often below D (the untrained
features: 1,280 dimensions, ~220 images): the shrinkage s fills the rest, W_s = (1 - s) W + s (tr W / D) I,
and W_s^(-1/2) is computed from the singular vectors of the N x D residuals, never a D x D eigendecomposition.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fit_wccn(emb, labels, shrinkage: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, b) with whitened = emb @ A + b: centred on the mean of `emb`, scaled by W_s^(-1/2), W the covariance
    of each row around its person's mean (`labels`). A is symmetric, so it is also an nn.Linear weight."""
    if not 0 < shrinkage <= 1:
        raise ValueError(f"WCCN shrinkage must be in (0, 1], got {shrinkage}")
    x = torch.as_tensor(np.asarray(emb), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels))
    if len(torch.unique(y)) < 2 or len(y) <= len(torch.unique(y)):
        raise ValueError("WCCN needs at least two people and a person with two or more embeddings")
    mu = x.mean(0)
    resid = torch.cat([x[y == p] - x[y == p].mean(0) for p in torch.unique(y)])
    n, d = resid.shape
    _, s, vt = torch.linalg.svd(resid, full_matrices=False)
    lam = s ** 2 / n  # eigenvalues of W along the rows of vt; 0 in every other direction
    scale = lam.sum() / d
    if scale <= 0:
        raise ValueError("WCCN: every person's embeddings are identical; nothing to normalise")
    base = (shrinkage * scale) ** -0.5
    w = ((1 - shrinkage) * lam + shrinkage * scale) ** -0.5
    a = base * torch.eye(d, dtype=x.dtype) + vt.T @ torch.diag(w - base) @ vt
    a = (a + a.T) / 2
    return a.float(), (-mu @ a).float()


def whitening_layer(dim: int) -> nn.Linear:
    """The identity until `set_whitening` fits it; never trained (no gradient, in no optimiser group)."""
    layer = nn.Linear(dim, dim)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(dim))
        layer.bias.zero_()
    layer.requires_grad_(False)
    return layer


def set_whitening(layer: nn.Linear, a: torch.Tensor, b: torch.Tensor) -> None:
    with torch.no_grad():
        layer.weight.copy_(a.T)
        layer.bias.copy_(b)


@torch.no_grad()
def augmented_embeddings(model: nn.Module, images, transform: nn.Module, views: int, seed: int = 0,
                         batch_size: int = 128) -> torch.Tensor:
    """(views * N, D): the embeddings of `views` randomly augmented copies of each uint8 image (view-major),
    drawn by `transform` in training mode from a generator seeded with `seed`."""
    model.eval()
    transform.train()
    g = torch.Generator().manual_seed(seed)
    out = [model(transform(torch.from_numpy(np.array(images[i:i + batch_size])), generator=g)).float()
           for _ in range(views) for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def fit_model(model: nn.Module, images, labels, mean, std, shrinkage: float, tta: bool = False,
              views: int = 0, transform: nn.Module | None = None, seed: int = 0) -> dict:
    """Fit `model.whiten` (in place) on the embeddings the model makes without it of `images` (uint8, the
    training people's), with `tta` of their mirror images too, and of `views` copies augmented by `transform`
    (each a further sample of its person: the whitening learns to discount those changes). Returns what was
    fit, for the checkpoint's metadata."""
    from vislab.labs.siamese.lab import embed
    labels = np.asarray(labels)
    layer, model.whiten = model.whiten, None
    try:
        parts = [embed(model, images, mean, std)]
        if tta:
            parts.append(embed(model, np.ascontiguousarray(np.asarray(images)[..., ::-1]), mean, std))
        if views:
            if transform is None:
                raise ValueError("augmented WCCN views need the training transform")
            parts.append(augmented_embeddings(model, images, transform, views, seed))
        e = torch.cat(parts)
        labels = np.tile(labels, len(e) // len(labels))
    finally:
        model.whiten = layer
    if layer is None or layer.in_features != e.shape[1]:
        layer = model.whiten = whitening_layer(e.shape[1])
    set_whitening(layer, *fit_wccn(e, labels, shrinkage))
    return {"shrinkage": shrinkage, "people": int(len(np.unique(labels))), "images": int(len(images)),
            "views": len(e) // len(images), "dim": int(e.shape[1])}
