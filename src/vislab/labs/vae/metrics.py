"""Generative metrics: sampling (N(0, I) or a fitted prior), posterior means, KL per dimension, the IWAE
bound, the cVAE's controllability, the classifier's accuracy on reconstructions, the temperature sweep,
traversals and per-class sample grids."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from vislab.labs.vae.prior import FittedPrior



def class_id(name: str | int, classes: Sequence[str]) -> int:
    """A class by name (case-insensitive; 'T-shirt' matches 'T-shirt/top') or index; the error lists them all."""
    s = str(name).strip()
    if s.isdigit() and int(s) < len(classes):
        return int(s)
    low = [c.lower() for c in classes]
    for cand in (s.lower(), s.lower().split("/")[0]):
        for i, c in enumerate(low):
            if cand == c or cand == c.split("/")[0]:
                return i
    raise ValueError(f"unknown class {name!r}; the classes are: {', '.join(classes)}")


def to_unit(images) -> torch.Tensor:
    t = torch.from_numpy(np.array(images)) if not isinstance(images, torch.Tensor) else images
    return t.float().div(255.0) if t.dtype == torch.uint8 else t.float()


@torch.no_grad()
def generate(model: nn.Module, n: int, labels=None, seed: int = 0, batch_size: int = 1000,
             temperature: float = 1.0, prior: FittedPrior | None = None) -> torch.Tensor:
    """n images in [0, 1] (N, 1, 28, 28) from the prior N(0, I) or a FittedPrior (seeded). A conditional model
    gets `labels` (N,), by default every class in turn (n/10 each); an unconditional one ignores them."""
    g = torch.Generator().manual_seed(seed)
    if model.conditional and labels is None:
        labels = np.arange(n) % model.num_classes
    out = []
    for i in range(0, n, batch_size):
        y = None if not model.conditional else torch.as_tensor(np.asarray(labels)[i:i + batch_size])
        m = min(batch_size, n - i)
        if prior is None:
            out.append(model.sample(m, y, generator=g, temperature=temperature))
        else:
            z = prior.sample(m, y, generator=g, temperature=temperature).to(next(model.parameters()).device)
            out.append(model.mean_image(model.decode(z, y)))
    return torch.cat(out) if out else torch.zeros(0, 1, 28, 28)


@torch.no_grad()
def encode_means(model: nn.Module, images, labels, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances (N, latent) of uint8 images."""
    mus, lvs = [], []
    for i in range(0, len(images), batch_size):
        mu, lv = model.encode(to_unit(images[i:i + batch_size]), torch.as_tensor(labels[i:i + batch_size]))
        mus.append(mu)
        lvs.append(lv)
    return torch.cat(mus).numpy(), torch.cat(lvs).numpy()


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_d|x) || N(0, 1)) of each latent dimension over the images, nats."""
    return (0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar)).mean(0)


def temperature_sweep(model: nn.Module, classifier, classes: Sequence[str], prior: FittedPrior, real,
                      temperatures: Sequence[float], n_per_class: int = 1000) -> list[dict]:
    """FID (a) against `real` and (conditional model) controllability of the prior's samples at each temperature
    (each component's spread x T; T < 1 keeps codes nearer the component means: more typical, less diverse
    samples), one row per distinct T, falling."""
    from vislab.labs.vae.classifier import fid_classifier
    rows = []
    for t in sorted(set(map(float, temperatures)), reverse=True):
        fake = generate(model, len(real), seed=1, temperature=t, prior=prior)
        row = {"temperature": t, "fid_classifier": fid_classifier(real, fake, classifier)}
        if model.conditional:
            row["controllability"] = controllability(model, classifier, classes, n_per_class, temperature=t,
                                                     prior=prior)
        rows.append(row)
    return rows


ACTIVE_KL = 0.01  # a latent dimension is "active" when its mean KL exceeds this many nats


@torch.no_grad()
def iwae_bound(model: nn.Module, images, labels, k: int = 100, batch_size: int = 100, seed: int = 0) -> float:
    """Importance-weighted bound on log p(x) (Burda et al. 2016) with k samples from q(z|x), mean nats per
    image; it tightens towards log p(x) as k grows (k=1: the ELBO)."""
    from vislab.labs.vae.losses import reconstruction_nll
    torch.manual_seed(seed)
    total, n = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = to_unit(images[i:i + batch_size])
        y = torch.as_tensor(labels[i:i + batch_size])
        mu, lv = model.encode(x, y)
        std = (0.5 * lv).exp()
        eps = torch.randn(k, *mu.shape)
        z = mu + std * eps  # (k, B, D)
        B = x.shape[0]
        yk = None if not model.conditional else y.repeat(k)
        out = model.decode(z.reshape(k * B, -1), yk)
        log_px_z = -reconstruction_nll(out, x.repeat(k, 1, 1, 1), model.likelihood).view(k, B)
        log_pz = (-0.5 * z.pow(2) - 0.5 * np.log(2 * np.pi)).sum(-1)
        log_qz = (-0.5 * eps.pow(2) - 0.5 * lv - 0.5 * np.log(2 * np.pi)).sum(-1)
        w = log_px_z + log_pz - log_qz
        total += float((torch.logsumexp(w, 0) - np.log(k)).sum())
        n += B
    return total / max(n, 1)


def controllability(model: nn.Module, classifier, classes: Sequence[str], n_per_class: int = 1000,
                    seed: int = 0, temperature: float = 1.0, prior: FittedPrior | None = None) -> dict:
    """A conditional model's samples of each class (from N(0, I) or `prior`), classified by the shipped
    classifier: the share classified as the class asked for, per class, their mean, and the worst class."""
    from vislab.labs.vae.classifier import classify
    if not model.conditional:
        raise ValueError("controllability needs a conditional model (cvae)")
    y = np.repeat(np.arange(len(classes)), n_per_class)
    imgs = generate(model, len(y), y, seed=seed, temperature=temperature, prior=prior)
    pred, _ = classify(classifier, imgs)
    per = {c: float((pred[y == i] == i).mean()) for i, c in enumerate(classes)}
    worst = min(per, key=per.get)
    return {"per_class": per, "mean": float(np.mean(list(per.values()))), "worst_class": worst,
            "worst": per[worst], "n_per_class": n_per_class,
            "confusion": np.bincount(y * len(classes) + pred, minlength=len(classes) ** 2)
            .reshape(len(classes), len(classes)).tolist()}


@torch.no_grad()
def reconstruction_accuracy(model: nn.Module, classifier, mu: np.ndarray, labels, classes: Sequence[str],
                            batch_size: int = 1000) -> dict:
    """The classifier's accuracy on the model's reconstructions of test images (their posterior means `mu`,
    from encode_means, decoded), per class and mean: how much class detail survives the VAE's bottleneck,
    an upper guide for samples."""
    from vislab.labs.vae.classifier import classify
    rec = torch.cat([model.mean_image(model.decode(torch.from_numpy(mu[i:i + batch_size]),
                                                   torch.as_tensor(labels[i:i + batch_size])))
                     for i in range(0, len(mu), batch_size)])
    pred, _ = classify(classifier, rec)
    per = {c: float((pred[labels == i] == i).mean()) for i, c in enumerate(classes) if (labels == i).any()}
    return {"mean": float(np.mean(list(per.values()))), "per_class": per}


@torch.no_grad()
def traversal(model: nn.Module, z0: np.ndarray, y: int | None = None, dims: Sequence[int] = range(8),
              values: Sequence[float] = np.linspace(-3, 3, 9)) -> torch.Tensor:
    """Decode z0 with one latent dimension at a time set to each of `values`, the others fixed:
    (len(dims) * len(values), 1, 28, 28), one row per dimension."""
    zs = np.repeat(np.asarray(z0, np.float32)[None], len(dims) * len(values), 0)
    for r, d in enumerate(dims):
        zs[r * len(values):(r + 1) * len(values), d] = values
    ys = None if not model.conditional else torch.full((len(zs),), int(y if y is not None else 0))
    return model.mean_image(model.decode(torch.from_numpy(zs), ys))


def samples_by_class(model: nn.Module, classifier, classes: Sequence[str], per_class: int = 20,
                     seed: int = 0, pool: int = 4000,
                     prior: FittedPrior | None = None) -> tuple[torch.Tensor, dict[str, int]]:
    """`per_class` samples of each class in class order (per_class * 10 images): a conditional model's
    samples of that class; an unconditional model's samples that the classifier assigns to it (drawn from
    a pool of `pool` samples; how many each class got is returned, a class may run short)."""
    from vislab.labs.vae.classifier import classify
    if model.conditional:
        y = np.repeat(np.arange(len(classes)), per_class)
        return generate(model, len(y), y, seed=seed, prior=prior), {c: per_class for c in classes}
    imgs = generate(model, pool, seed=seed, prior=prior)
    pred, _ = classify(classifier, imgs)
    out, counts = [], {}
    for i, c in enumerate(classes):
        rows = np.flatnonzero(pred == i)
        counts[c] = int(len(rows))
        pick = imgs[rows[:per_class]]
        out.append(torch.cat([pick, torch.ones(per_class - len(pick), *imgs.shape[1:])]) if len(pick) < per_class
                   else pick)
    return torch.cat(out), counts


def traversal_dims(kld: np.ndarray, k: int, order: str = "kl") -> list[int]:
    """Which latent dimensions to traverse: the k with the highest mean KL (order="kl": the ones the model
    uses; with beta >= 1 most of the 64 sit at the prior and do nothing) or the first k (order="first")."""
    if order not in ("kl", "first"):
        raise ValueError(f"order must be 'kl' or 'first', got {order!r}")
    k = min(k, len(kld))
    return [int(d) for d in (np.argsort(-kld, kind="stable")[:k] if order == "kl" else range(k))]
