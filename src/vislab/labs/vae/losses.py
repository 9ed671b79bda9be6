"""ELBO pieces of the generative lab: closed-form KL to N(0, I), Bernoulli or Gaussian reconstruction
negative log-likelihood in nats, and the beta-ELBO."""
from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Likelihood = Literal["bernoulli", "gaussian"]
LOG_2PI = 1.8378770664093453

def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats: 0.5 * sum(exp(logvar) + mu^2 - 1 - logvar)."""
    return 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).flatten(1).sum(1)


def reconstruction_nll(out: torch.Tensor, x: torch.Tensor, likelihood: Likelihood = "bernoulli") -> torch.Tensor:
    """-log p(x | z) per sample, in nats, summed over pixels; x in [0, 1].

    bernoulli: `out` are logits; binary cross-entropy (the default; exact for binary x, the usual
    choice for [0, 1] intensities). gaussian: `out` are means; unit-variance Gaussian,
    0.5 * ||x - out||^2 + 0.5 * D * log(2 pi) (MSE up to constants)."""
    if likelihood == "bernoulli":
        nll = F.binary_cross_entropy_with_logits(out.float(), x.float(), reduction="none")
        return nll.flatten(1).sum(1)
    if likelihood == "gaussian":
        d = x[0].numel()
        return 0.5 * (out.float() - x.float()).pow(2).flatten(1).sum(1) + 0.5 * d * LOG_2PI
    raise ValueError(f"unknown likelihood {likelihood!r}; use 'bernoulli' or 'gaussian'")


def elbo_loss(out: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0,
              likelihood: Likelihood = "bernoulli") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Negative (beta-)ELBO per image, averaged over the batch: reconstruction + beta * KL, in nats.

    Returns (total, {"recon", "kl", "total"}); with beta = 1 the total is the negative ELBO, an
    upper bound on -log p(x)."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    recon = reconstruction_nll(out, x, likelihood).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    total = recon + beta * kl
    return total, {"recon": recon.detach(), "kl": kl.detach(), "total": total.detach()}




