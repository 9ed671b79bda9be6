"""The fitted prior: a density per class fitted to the training images' latent codes (one Gaussian
moment-matched to the aggregated posterior, or a K-component mixture by EM), saved beside the checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.labs.vae.config import VaeRunConfig
from vislab.labs.vae.data import VaeData, load_data
from vislab.labs.vae.metrics import encode_means


class FittedPrior:
    """Ex-post density estimate of the latent codes (Ghosh et al. 2020, "From variational to deterministic
    autoencoders"), per class for conditional models (one group for unconditional ones). A VAE's decoder only
    learnt the regions its training images' posteriors cover; N(0, I) also draws from the "holes" between
    them, which decode to blends of classes. Sampling from a density fitted to the training codes instead
    changes nothing in the trained model.

    components=1: one full-covariance Gaussian per group, moment-matched to the aggregated posterior
    q(z) = mean_i q(z|x_i): mean of the posterior means, covariance of the means + the mean posterior variance.
    components=K > 1: a K-component full-covariance Gaussian mixture (scikit-learn, EM) fitted to the posterior
    means, each component widened by the mean posterior variance."""

    def __init__(self, weights: torch.Tensor, mean: torch.Tensor, chol: torch.Tensor, counts: torch.Tensor):
        # (G, K) mixture weights, (G, K, D) means, (G, K, D, D) Cholesky factors, (G,) training codes per group
        self.weights, self.mean, self.chol = weights.double(), mean.double(), chol.double()
        self.counts = counts.long()

    @classmethod
    def fit(cls, mu: np.ndarray, logvar: np.ndarray, labels: np.ndarray | None = None, num_classes: int = 1,
            components: int = 1, seed: int = 0) -> FittedPrior:
        """labels=None: one density over all codes; else one per class 0..num_classes-1 (a class needs at least
        max(2, components) codes)."""
        mu, var = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
        if components < 1:
            raise ValueError(f"components must be >= 1, got {components}")
        groups = [np.arange(len(mu))] if labels is None else [np.flatnonzero(labels == k) for k in range(num_classes)]
        d = mu.shape[1]
        ws, means, chols = [], [], []
        for k, rows in enumerate(groups):
            if len(rows) < max(2, components):
                raise ValueError(f"the fitted prior needs at least {max(2, components)} training images of class {k}, "
                                 f"got {len(rows)}")
            extra = np.diag(var[rows].mean(0))
            if components == 1:
                w, m, covs = (np.ones(1), mu[rows].mean(0)[None],
                              (np.cov(mu[rows], rowvar=False).reshape(d, d) + extra)[None])
            else:
                from sklearn.mixture import GaussianMixture
                gm = GaussianMixture(components, covariance_type="full", reg_covar=1e-4,
                                     random_state=seed).fit(mu[rows])
                w, m, covs = gm.weights_, gm.means_, gm.covariances_ + extra
            ws.append(w)
            means.append(m)
            chols.append(np.linalg.cholesky(covs + 1e-6 * np.eye(d)))
        return cls(torch.from_numpy(np.stack(ws)), torch.from_numpy(np.stack(means)), torch.from_numpy(np.stack(chols)),
                   torch.tensor([len(r) for r in groups]))

    @property
    def conditional(self) -> bool:
        return len(self.mean) > 1

    @property
    def components(self) -> int:
        return self.mean.shape[1]

    def sample(self, n: int, labels=None, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n codes (float32): of class labels[i] (conditional) or from the single density; `temperature` scales
        each component's spread."""
        g = torch.zeros(n, dtype=torch.long) if not self.conditional else torch.as_tensor(labels).long().reshape(-1)
        if len(g) != n:
            raise ValueError(f"{n} codes but {len(g)} labels")
        comp = (torch.multinomial(self.weights[g], 1, generator=generator).squeeze(1) if self.components > 1
                else torch.zeros(n, dtype=torch.long))
        eps = temperature * torch.randn(n, self.mean.shape[-1], generator=generator, dtype=torch.float64)
        return (self.mean[g, comp] + torch.einsum("nij,nj->ni", self.chol[g, comp], eps)).float()

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"weights": self.weights.contiguous(), "mean": self.mean.contiguous(), "chol": self.chol.contiguous(),
                   "counts": self.counts}, str(path), metadata={"what": "vislab fitted latent prior"})
        return path

    @classmethod
    def load(cls, path: str | Path) -> FittedPrior:
        from safetensors.torch import load_file
        t = load_file(str(path))
        missing = {"weights", "mean", "chol", "counts"} - set(t)
        if missing:
            raise ckpt.CheckpointError(f"{path} is not a fitted prior (missing {sorted(missing)})")
        return cls(t["weights"], t["mean"], t["chol"], t["counts"])


def checkpoint_file(checkpoint: str | Path) -> Path:
    """A checkpoint file, or a run folder's best one."""
    p = Path(checkpoint)
    return p / "checkpoints" / "best.safetensors" if p.is_dir() else p


def prior_path(checkpoint: str | Path) -> Path:
    """Where the fitted prior of a checkpoint lives: beside it, <stem>.prior.safetensors."""
    p = checkpoint_file(checkpoint)
    return p.with_name(p.name.removesuffix(".safetensors") + ".prior.safetensors")


def fit_prior(model: nn.Module, data: VaeData, components: int = 10) -> FittedPrior:
    """The FittedPrior of a model on its training rows (per class for a conditional model)."""
    rows = data.train_rows
    labels = data.train.labels[rows]
    mu, lv = encode_means(model, data.train.images[rows], labels)
    return FittedPrior.fit(mu, lv, labels if model.conditional else None, model.num_classes, components)


def load_or_fit_prior(checkpoint: str | Path, model: nn.Module, cfg: VaeRunConfig,
                      data: VaeData | None = None) -> FittedPrior:
    """The checkpoint's saved fitted prior, or fit it (eval.prior_components) on the run's training data and
    save it beside; a prior older than its checkpoint (e.g. a resumed run's new best) is refitted."""
    ck, p = checkpoint_file(checkpoint), prior_path(checkpoint)
    if p.is_file() and not (ck.is_file() and ck.stat().st_mtime > p.stat().st_mtime):
        return FittedPrior.load(p)
    prior = fit_prior(model, data or load_data(cfg), cfg.eval.prior_components)
    prior.save(p)
    return prior
