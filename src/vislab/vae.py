"""Generative lab: VAEs on Fashion-MNIST on the shared engine.

    data = load_data(cfg)         # IDX files -> uint8 (N, 1, 28, 28) in memory, per-class val split
    eda(cfg)                      # class balance, pixel intensities, non-zero pixels, examples per class
    run_dir = train(cfg)          # fit (best checkpoint by validation loss), then evaluate_run
    evaluate_run(run_dir)         # test nats (total, reconstruction, KL), FID, controllability, grids, report
    sample(ckpt, 16, "Coat")      # a PNG grid of samples (of one class for the cVAE)
    traverse(ckpt)                # latent traversal grid
    compare([run_a, run_b, ...])  # the results table, traversals per beta, cVAE vs VAE grids

FID (a) uses the shipped Fashion-MNIST classifier's features (vae_classifier), FID (b) Inception-v3.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from . import plots
from .config import VaeEvalConfig, VaeRunConfig
from .data import batch_loader
from .datasets import ImageSet, load_fashion_mnist, load_torchvision_fashion_mnist, take_per_class, val_split
from .engine import Trainer, open_run, seed_all
from .losses import elbo_loss
from .metrics import MeanParts
from .report import Section, Table, flat_config, hardware, write_report
from .vae_models import create_vae_model


def _console():
    from rich.console import Console
    return Console()


@dataclass
class VaeData:
    train: ImageSet
    test: ImageSet
    train_rows: np.ndarray
    val_rows: np.ndarray


def load_data(cfg: VaeRunConfig) -> VaeData:
    dc = cfg.data
    train, test = (load_fashion_mnist(dc.root) if dc.source == "idx"
                   else load_torchvision_fashion_mnist(dc.root, dc.download))
    rows = np.arange(len(train))
    if dc.limit_per_class:
        rows = take_per_class(train.labels, dc.limit_per_class + dc.val_per_class, dc.seed)
    tr, va = val_split(train.labels[rows], "per_class", dc.val_per_class, seed=dc.seed)
    return VaeData(train, test, rows[tr], rows[va])


class ToUnit(nn.Module):
    """uint8 images -> float in [0, 1] (the Bernoulli likelihood's range); no augmentation."""
    channels_last = False

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


class VAEObjective:
    """Negative beta-ELBO per image (nats); metrics: mean total, reconstruction and KL."""

    def __init__(self, beta: float = 1.0, likelihood: str = "bernoulli"):
        elbo_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1), beta, likelihood)
        self.beta, self.likelihood = beta, likelihood

    def __call__(self, out: dict, y: torch.Tensor):
        total, parts = elbo_loss(out["out"], out["x"], out["mu"], out["logvar"], self.beta, self.likelihood)
        return total, {"loss": parts["total"], "recon": parts["recon"], "kl": parts["kl"]}

    def make_metrics(self, train: bool = False, sync: bool = True) -> MeanParts:
        return MeanParts()  # mean loss (= total), recon and KL per image


def train(cfg: VaeRunConfig, resume: str | Path | None = None, progress: bool = True, report: bool = True,
          data: VaeData | None = None) -> Path:
    cfg, fabric, run_dir = open_run(cfg, resume)
    data = data or load_data(cfg)
    tc = cfg.train.filled()
    seed_all(tc.seed)
    model = build_model(cfg)
    objective = VAEObjective(cfg.model.beta, cfg.model.likelihood)
    meta = {"lab": "vae", "config": cfg.model_dump(mode="json"), "classes": data.train.classes,
            "likelihood": cfg.model.likelihood, "beta": cfg.model.beta}
    x = torch.from_numpy(np.array(data.train.images))
    y = torch.from_numpy(data.train.labels)
    loader = batch_loader(x, y, data.train_rows, tc.batch_size, shuffle=True, seed=tc.seed, drop_last=True)
    val_loader = batch_loader(x, y, data.val_rows, tc.eval_batch_size, shuffle=False)
    trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress)
    trainer.fit(model, objective, loader, val_loader, ToUnit(), resume=bool(resume))
    if fabric.is_global_zero and report:
        evaluate_run(run_dir, data)
    fabric.barrier()
    return run_dir


def build_model(cfg: VaeRunConfig):
    return create_vae_model(cfg.model.name, cfg.model.latent_dim, likelihood=cfg.model.likelihood,
                            width=cfg.model.width, depth=cfg.model.depth)


def load_model(path: str | Path):
    """(model in eval mode, checkpoint metadata, its VaeRunConfig) from a checkpoint or a run folder."""
    path = checkpoint_file(path)
    weights, meta = ckpt.load_weights(path)
    if meta.get("lab") != "vae":
        raise ckpt.CheckpointError(f"{path} is a {meta.get('lab')!r} checkpoint, not a VAE one")
    cfg = VaeRunConfig.model_validate(meta["config"])
    model = build_model(cfg)
    ckpt.load_into(model, weights, path)
    return model.eval(), meta, cfg


@torch.no_grad()
def test_loss(model: nn.Module, images: np.ndarray, labels: np.ndarray, beta: float, likelihood: str,
              batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean total / reconstruction / KL per test image in nats, z sampled once per image (seeded)."""
    torch.manual_seed(seed)
    obj, m = VAEObjective(beta, likelihood), MeanParts()
    for i in range(0, len(images), batch_size):
        xb = torch.from_numpy(np.array(images[i:i + batch_size])).float().div(255)
        yb = torch.from_numpy(labels[i:i + batch_size])
        out = model(xb, yb, sample=True)
        m.update(out, yb, obj(out, yb)[1])
    r = m.compute()["average"]
    return {"total": r["loss"], "recon": r["recon"], "kl": r["kl"], "likelihood": likelihood, "beta": beta}



# --------------------------------------------------------------------------- helpers


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


def _unit(images) -> torch.Tensor:
    t = torch.from_numpy(np.array(images)) if not isinstance(images, torch.Tensor) else images
    return t.float().div(255.0) if t.dtype == torch.uint8 else t.float()


@torch.no_grad()
def generate(model: nn.Module, n: int, labels=None, seed: int = 0, batch_size: int = 1000,
             temperature: float = 1.0, prior: "FittedPrior | None" = None) -> torch.Tensor:
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
        mu, lv = model.encode(_unit(images[i:i + batch_size]), torch.as_tensor(labels[i:i + batch_size]))
        mus.append(mu)
        lvs.append(lv)
    return torch.cat(mus).numpy(), torch.cat(lvs).numpy()


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_d|x) || N(0, 1)) of each latent dimension over the images, nats."""
    return (0.5 * (np.exp(logvar) + mu ** 2 - 1 - logvar)).mean(0)


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
            components: int = 1, seed: int = 0) -> "FittedPrior":
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
                w, m, covs = np.ones(1), mu[rows].mean(0)[None], (np.cov(mu[rows], rowvar=False).reshape(d, d) + extra)[None]
            else:
                from sklearn.mixture import GaussianMixture
                gm = GaussianMixture(components, covariance_type="full", reg_covar=1e-4, random_state=seed).fit(mu[rows])
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
    def load(cls, path: str | Path) -> "FittedPrior":
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


def temperature_sweep(model: nn.Module, classifier, classes: Sequence[str], prior: FittedPrior, real,
                      temperatures: Sequence[float], n_per_class: int = 1000) -> list[dict]:
    """FID (a) against `real` and (conditional model) controllability of the prior's samples at each temperature
    (each component's spread x T; T < 1 keeps codes nearer the component means: more typical, less diverse
    samples), one row per distinct T, falling."""
    from .vae_classifier import fid_classifier
    rows = []
    for t in sorted(set(map(float, temperatures)), reverse=True):
        fake = generate(model, len(real), seed=1, temperature=t, prior=prior)
        row = {"temperature": t, "fid_classifier": fid_classifier(real, fake, classifier)}
        if model.conditional:
            row["controllability"] = controllability(model, classifier, classes, n_per_class, temperature=t, prior=prior)
        rows.append(row)
    return rows


ACTIVE_KL = 0.01  # a latent dimension is "active" when its mean KL exceeds this many nats


@torch.no_grad()
def iwae_bound(model: nn.Module, images, labels, k: int = 100, batch_size: int = 100, seed: int = 0) -> float:
    """Importance-weighted bound on log p(x) (Burda et al. 2016) with k samples from q(z|x), mean nats per
    image; it tightens towards log p(x) as k grows (k=1: the ELBO)."""
    from .losses import reconstruction_nll
    torch.manual_seed(seed)
    total, n = 0.0, 0
    for i in range(0, len(images), batch_size):
        x = _unit(images[i:i + batch_size])
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
    from .vae_classifier import classify
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
    from .vae_classifier import classify
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
                     seed: int = 0, pool: int = 4000, prior: FittedPrior | None = None) -> tuple[torch.Tensor, dict[str, int]]:
    """`per_class` samples of each class in class order (per_class * 10 images): a conditional model's
    samples of that class; an unconditional model's samples that the classifier assigns to it (drawn from
    a pool of `pool` samples; how many each class got is returned, a class may run short)."""
    from .vae_classifier import classify
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
        out.append(torch.cat([pick, torch.ones(per_class - len(pick), *imgs.shape[1:])]) if len(pick) < per_class else pick)
    return torch.cat(out), counts


# --------------------------------------------------------------------------- EDA


def eda(cfg: VaeRunConfig, out: str | Path | None = None, data: VaeData | None = None) -> Path:
    """Class distribution (train and test), pixel-intensity histogram, the share and histogram of non-zero
    pixels, a grid of examples per class; numbers in eda.json, figures in report.html."""
    data = data or load_data(cfg)
    out = Path(out or Path(cfg.out_dir) / "fashion-mnist-eda")
    pdir = out / "plots"
    tr, te = data.train, data.test
    classes = tr.classes
    counts = {name: {c: int((s.labels == i).sum()) for i, c in enumerate(classes)} for name, s in (("train", tr), ("test", te))}
    rng = np.random.default_rng(0)
    sub = {name: s.images[rng.choice(len(s), min(len(s), 5000), replace=False)] for name, s in (("train", tr), ("test", te))}
    nonzero = {name: (s.images.reshape(len(s), -1) > 0).mean(1) for name, s in (("train", tr), ("test", te))}
    stats = {"images": {"train": len(tr), "test": len(te)}, "shape": list(tr.images.shape[1:]), "counts": counts,
             "mean_intensity": {k: float(v.mean()) for k, v in sub.items()},
             "nonzero_share": {k: float(v.mean()) for k, v in nonzero.items()},
             "nonzero_share_per_class": {c: float(nonzero["train"][tr.labels == i].mean()) for i, c in enumerate(classes)},
             "zero_pixels_share": {k: float((v == 0).mean()) for k, v in sub.items()},
             "sample_for_pixel_stats": 5000}
    out.mkdir(parents=True, exist_ok=True)
    (out / "eda.json").write_text(json.dumps(stats, indent=2))
    figs = [plots.class_distribution(counts["train"], pdir / "classes_train.png", "Fashion-MNIST train classes"),
            plots.class_distribution(counts["test"], pdir / "classes_test.png", "Fashion-MNIST test classes"),
            plots.histograms({k: v.ravel() for k, v in sub.items()}, pdir / "pixel_intensity.png",
                             "Pixel intensities (5,000 random images per split)", "intensity (0-255)",
                             bins=np.arange(0, 257, 4), log_y=True, unit="pixels"),
            plots.histograms({k: v for k, v in nonzero.items()}, pdir / "nonzero_share.png",
                             "Share of non-zero pixels per image", "non-zero pixels / 784", bins=40, unit="images")]
    per = 10
    rows = np.concatenate([np.flatnonzero(tr.labels == i)[:per] for i in range(len(classes))])
    figs.append(plots.mosaic_panels({"train examples": (tr.images[rows], len(classes), per)}, pdir / "examples.png",
                                    row_labels=classes))
    text = (f"{len(tr):,} training and {len(te):,} test images, {tuple(tr.images.shape[1:])} uint8, {len(classes)} "
            f"classes, perfectly balanced ({min(counts['train'].values()):,}-{max(counts['train'].values()):,} per "
            f"class in train). {100 * stats['zero_pixels_share']['train']:.1f}% of pixels are exactly 0 (background); "
            f"the mean share of non-zero pixels per image is {100 * stats['nonzero_share']['train']:.1f}% (train), "
            f"lowest for {min(stats['nonzero_share_per_class'], key=stats['nonzero_share_per_class'].get)} and highest "
            f"for {max(stats['nonzero_share_per_class'], key=stats['nonzero_share_per_class'].get)}. Most pixels are "
            "near 0 or bright: a Bernoulli likelihood over [0, 1] intensities fits this well.")
    write_report(out, "Fashion-MNIST EDA", [Section("Summary", text, [Table(["class", "train", "test", "non-zero share"],
                 [[c, counts["train"][c], counts["test"][c], stats["nonzero_share_per_class"][c]] for c in classes])],
                 figs)])
    return out


# --------------------------------------------------------------------------- evaluation


def evaluate_run(run_dir: str | Path, data: VaeData | None = None, path: Path | None = None, classifier=None,
                 ev: VaeEvalConfig | None = None, console=None) -> dict:
    """Everything about one trained VAE, into run_dir/metrics.json and report.html: test nats per image
    (total, reconstruction, KL), active latent dimensions, FID (a) of ev.fid_n samples vs ev.fid_n test
    images, FID (b) when ev.inception, the cVAE's controllability, the optional importance-weighted bound
    (ev.iwae_k > 0); reconstruction, sample, traversal, per-class and latent t-SNE figures. `ev` defaults
    to the run's own eval section; `classifier` = (model, meta) overrides ev.classifier."""
    from .vae_classifier import fid_classifier, fid_inception, load_classifier
    console = console or _console()
    run_dir = Path(run_dir)
    path = path or run_dir / "checkpoints" / "best.safetensors"
    model, meta, cfg = load_model(path)
    ev = ev or cfg.eval
    data = data or load_data(cfg)
    classifier, cmeta = classifier or load_classifier(ev.classifier)
    t = data.test
    classes = t.classes
    pdir = run_dir / "plots"
    t0 = time.time()
    out = {"model": cfg.model.name, "beta": cfg.model.beta, "latent_dim": model.latent_dim,
           "likelihood": cfg.model.likelihood, "best_epoch": meta.get("epoch"), "epochs": cfg.train.filled().epochs,
           "checkpoint": str(path), "test_nats_per_image": test_loss(model, t.images, t.labels, cfg.model.beta,
                                                                     cfg.model.likelihood)}
    mu, lv = encode_means(model, t.images, t.labels)
    kld = kl_per_dim(mu, lv)
    out["active_dims"] = int((kld > ACTIVE_KL).sum())
    out["kl_per_dim_sorted"] = [round(float(v), 4) for v in np.sort(kld)[::-1]]
    n = min(ev.fid_n, len(t))
    fake = generate(model, n, seed=1)
    real = t.images[np.random.default_rng(0).permutation(len(t))[:n]]
    out["fid"] = {"classifier": fid_classifier(real, fake, classifier), "n": n,
                  "classifier_test_accuracy": cmeta.get("test_accuracy")}
    if ev.inception:
        out["fid"]["inception"] = fid_inception(real, fake, ev.inception_weights)
    out["reconstruction_accuracy"] = reconstruction_accuracy(model, classifier, mu, t.labels, classes)
    if model.conditional:
        out["controllability"] = controllability(model, classifier, classes, ev.controllability_n)
    prior = None
    if ev.fitted_prior:
        prior = fit_prior(model, data, ev.prior_components)
        prior.save(prior_path(path))
        fake_fitted = generate(model, n, seed=1, prior=prior)
        out["fitted_prior"] = {"file": str(prior_path(path)), "components": ev.prior_components,
                               "per_class": bool(model.conditional),
                               "fid": {"classifier": fid_classifier(real, fake_fitted, classifier), "n": n}}
        if ev.inception:
            out["fitted_prior"]["fid"]["inception"] = fid_inception(real, fake_fitted, ev.inception_weights)
        if model.conditional:
            out["fitted_prior"]["controllability"] = controllability(model, classifier, classes,
                                                                     ev.controllability_n, prior=prior)
        fp = out["fitted_prior"]  # T = 1 was just measured; the sweep adds the other temperatures
        at_one = {"temperature": 1.0, "fid_classifier": fp["fid"]["classifier"],
                  **({"controllability": fp["controllability"]} if "controllability" in fp else {})}
        fp["temperature_sweep"] = sorted([at_one] + temperature_sweep(
            model, classifier, classes, prior, real, [t for t in ev.temperatures if t != 1.0], ev.controllability_n),
            key=lambda r: -r["temperature"])
    if ev.iwae_k:
        out["iwae"] = {"k": ev.iwae_k, "log_px_bound": iwae_bound(model, t.images, t.labels, ev.iwae_k)}
    out["hardware"] = hardware()
    figs = []
    with torch.no_grad():
        xb = _unit(t.images[:10])
        rec = model.mean_image(model(xb, torch.from_numpy(t.labels[:10]))["out"])
        figs.append(plots.mosaic_panels({"test images (top), reconstructions (bottom)": (torch.cat([xb, rec]), 2, 10)},
                                        pdir / "reconstructions.png", row_labels=["input", "output"]))
        figs.append(plots.mosaic_panels({"random samples from the prior": (fake[:40], 4, 10)}, pdir / "samples.png"))
        figs.append(_traversal_figure(model, cfg, mu[0], int(t.labels[0]), kld, pdir / "traversal.png"))
        what = "samples conditioned on each class" if model.conditional else "samples sorted by the classifier's class"
        chosen = None
        if model.conditional:
            ctrl = out["controllability"]["per_class"]
            chosen = [classes[class_id(c, classes)] for c in ev.detail_classes] if ev.detail_classes else \
                sorted(ctrl, key=ctrl.get)[:3]
            out["detail_classes"] = chosen
        for suffix, pr in [("", None)] + ([("_fitted", prior)] if prior is not None else []):
            grid, got = samples_by_class(model, classifier, classes, prior=pr)
            figs.append(plots.mosaic_panels({what + (", fitted prior" if pr else ""): (grid, len(classes), 20)},
                                            pdir / f"samples_per_class{suffix}.png",
                                            row_labels=[c if model.conditional else f"{c} ({got[c]})" for c in classes]))
            if chosen:
                figs.append(_detail_figure(model, classifier, classes, chosen, pdir / f"detail_classes{suffix}.png", pr))
        if prior is not None and len(out["fitted_prior"]["temperature_sweep"]) > 1:
            figs.append(plots.temperature_sweep(out["fitted_prior"]["temperature_sweep"], pdir / "temperature_sweep.png",
                                                title="Fitted prior: sampling temperature (1 = the fitted density)"))
    if ev.tsne:
        figs.append(plots.tsne_scatter(mu, t.labels, classes, pdir / "latent_tsne.png",
                                       title=f"t-SNE of test posterior means ({cfg.model.name}, beta {cfg.model.beta:g})"))
    out["eval_seconds"] = round(time.time() - t0, 1)
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    _print_summary(console, out)
    write_report(run_dir, f"{cfg.model.name} (beta {cfg.model.beta:g}) on Fashion-MNIST",
                 [Section("Results", _summary_text(out), [results_table({run_dir.name: out})], figs),
                  Section("Configuration", tables=[Table(["field", "value"], flat_config(cfg.model_dump(mode="json")))])],
                 meta={"hardware": out["hardware"]})
    return out


def traversal_dims(kld: np.ndarray, k: int, order: str = "kl") -> list[int]:
    """Which latent dimensions to traverse: the k with the highest mean KL (order="kl": the ones the model
    uses; with beta >= 1 most of the 64 sit at the prior and do nothing) or the first k (order="first")."""
    if order not in ("kl", "first"):
        raise ValueError(f"order must be 'kl' or 'first', got {order!r}")
    k = min(k, len(kld))
    return [int(d) for d in (np.argsort(-kld, kind="stable")[:k] if order == "kl" else range(k))]


def _traversal_figure(model, cfg, z0, y0, kld, path, k: int = 8, steps: int = 9, span: float = 3.0,
                      order: str = "kl") -> Path:
    dims = traversal_dims(kld, k, order)
    values = np.linspace(-span, span, steps)
    return plots.mosaic_panels(
        {f"{cfg.model.name}, beta={cfg.model.beta:g}: latent traversal": (traversal(model, z0, y0, dims, values),
                                                                          len(dims), steps)},
        path, row_labels=[f"z{d} (KL {kld[d]:.2f})" for d in dims], col_labels=[f"{v:+.1f}" for v in values])


def _detail_figure(model, classifier, classes, chosen, path, prior: FittedPrior | None = None) -> Path:
    """Three chosen classes in detail: 10 samples each (one row per class), with what the classifier calls them."""
    from .vae_classifier import classify
    ids = [class_id(c, classes) for c in chosen]
    y = np.repeat(ids, 10)
    imgs = generate(model, len(y), y, seed=2, prior=prior)
    pred, prob = classify(classifier, imgs)
    labels = [f"{classes[p].split('/')[0]} {100 * prob[i, p]:.0f}%" for i, p in enumerate(pred)]
    src = "the fitted prior" if prior is not None else "N(0, I)"
    return plots.image_grid(imgs, path, title=f"cVAE samples of {', '.join(chosen)} from {src} (one class per row), "
                                                "labelled with the classifier's prediction", ncols=10, labels=labels)


def _summary_text(m: dict) -> str:
    t = m["test_nats_per_image"]
    s = (f"Test loss per image ({t['likelihood']} likelihood, nats): total {t['total']:.2f} = reconstruction "
         f"{t['recon']:.2f} + {t['beta']:g} x KL {t['kl']:.2f}. {m['active_dims']} of {m['latent_dim']} latent dimensions "
         f"active (mean KL > {ACTIVE_KL} nats). FID (a, classifier features, {m['fid']['n']:,} vs {m['fid']['n']:,}): "
         f"{m['fid']['classifier']:.2f}.")
    if "inception" in m["fid"]:
        s += f" FID (b, Inception-v3): {m['fid']['inception']:.2f}."
    if "reconstruction_accuracy" in m:
        r = m["reconstruction_accuracy"]
        worst = min(r["per_class"], key=r["per_class"].get)
        s += (f" The classifier recognises {100 * r['mean']:.1f}% of the test reconstructions (worst {worst} "
              f"{100 * r['per_class'][worst]:.1f}%).")
    if "controllability" in m:
        c = m["controllability"]
        s += (f" Controllability: {100 * c['mean']:.1f}% mean, worst class {c['worst_class']} "
              f"{100 * c['worst']:.1f}% ({c['n_per_class']} samples per class).")
    if "fitted_prior" in m:
        f = m["fitted_prior"]
        k = f.get("components", 1)
        what = f"{k} Gaussians per class" if f.get("per_class", "controllability" in f) else f"a mixture of {k} Gaussians"
        s += f" Sampling from the fitted prior ({what}) instead of N(0, I): FID (a) {f['fid']['classifier']:.2f}"
        if "inception" in f["fid"]:
            s += f", FID (b) {f['fid']['inception']:.2f}"
        if "controllability" in f:
            c = f["controllability"]
            s += f", controllability {100 * c['mean']:.1f}% mean, worst class {c['worst_class']} {100 * c['worst']:.1f}%"
        s += "."
        cooler = [r for r in f.get("temperature_sweep", []) if r["temperature"] != 1.0]
        if cooler:
            s += " Fitted prior at other sampling temperatures: " + "; ".join(
                f"T {r['temperature']:g}: FID (a) {r['fid_classifier']:.2f}" + (
                    f", controllability {100 * r['controllability']['mean']:.1f}% (worst "
                    f"{r['controllability']['worst_class']} {100 * r['controllability']['worst']:.1f}%)"
                    if "controllability" in r else "") for r in cooler) + "."
    if "iwae" in m:
        s += f" Importance-weighted bound (k={m['iwae']['k']}): log p(x) >= {m['iwae']['log_px_bound']:.2f} nats."
    return s


def _print_summary(console, m: dict) -> None:
    console.print(_summary_text(m))


def results_table(results: dict[str, dict]) -> Table:
    rows = []
    for name, m in results.items():
        t = m["test_nats_per_image"]
        c = m.get("controllability")
        f = m.get("fitted_prior", {})
        fc = f.get("controllability")
        ra = m.get("reconstruction_accuracy", {}).get("mean")
        rows.append([name, m["model"], m["beta"], m.get("epochs"), t["total"], t["recon"], t["kl"], t["recon"] + t["kl"],
                     m["active_dims"],
                     m["fid"]["classifier"], m["fid"].get("inception", "-"),
                     f"{100 * ra:.1f}%" if ra is not None else "-",
                     f"{100 * c['mean']:.1f}% (worst {c['worst_class']} {100 * c['worst']:.1f}%)" if c else "-",
                     f.get("fid", {}).get("classifier", "-"),
                     f"{100 * fc['mean']:.1f}% (worst {fc['worst_class']} {100 * fc['worst']:.1f}%)" if fc else "-"])
    return Table(["run", "model", "beta", "epochs", "total (nats)", "reconstruction", "KL", "-ELBO (beta 1)", "active dims",
                  "FID (a) classifier", "FID (b) Inception", "classifier on reconstructions", "controllability",
                  "FID (a) fitted prior", "controllability fitted prior"], rows,
                 caption="Per test image, nats: total = reconstruction + beta x KL (what was trained), -ELBO = "
                         "reconstruction + KL (a bound on -log p(x), comparable across beta); Bernoulli likelihood unless "
                         "stated; FID compares only within one extractor. Samples come from N(0, I) unless the column "
                         "says fitted prior (a Gaussian mixture per class fitted to the training codes, FittedPrior).")


def evaluate(checkpoint: str | Path, overrides: dict | None = None, **kw) -> dict:
    """evaluate_run for a checkpoint file or run folder (results go to its run folder); `overrides`
    change the run's eval section ({"fid_n": 2000, "inception": True, ...})."""
    p = Path(checkpoint)
    run_dir = _run_dir_of(p)
    saved = ckpt.read_meta(checkpoint_file(p))["config"]
    ev = VaeEvalConfig.model_validate({**saved.get("eval", {}), **(overrides or {})})
    return evaluate_run(run_dir, path=None if p.is_dir() else p, ev=ev, **kw)


# --------------------------------------------------------------------------- sample, traverse, compare


def sample(checkpoint: str | Path, n: int = 16, class_name: str | None = None, out: str | Path | None = None,
           seed: int = 0, temperature: float = 1.0, ncols: int = 8, prior: str = "standard") -> Path:
    """A PNG grid of n samples; `class_name` (cVAE only) picks the class; prior "standard" draws z from
    N(0, I), "fitted" from the checkpoint's FittedPrior (saved by evaluate, else fitted now on the run's
    training data). Returns the PNG's path."""
    if prior not in ("standard", "fitted"):
        raise ValueError(f"prior must be 'standard' or 'fitted', got {prior!r}")
    model, meta, cfg = load_model(checkpoint)
    classes = meta["classes"]
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    y = None
    if class_name is not None:
        cid = class_id(class_name, classes)
        if not model.conditional:
            raise ValueError(f"{cfg.model.name} is unconditional: --class needs a cvae checkpoint")
        y = np.full(n, cid)
    elif model.conditional:
        y = np.arange(n) % len(classes)
    fitted = load_or_fit_prior(checkpoint, model, cfg) if prior == "fitted" else None
    imgs = generate(model, n, y, seed=seed, temperature=temperature, prior=fitted)
    what = classes[int(y[0])] if class_name is not None else ("each class in turn" if model.conditional else "prior")
    out = Path(out) if out else _run_dir_of(checkpoint) / "plots" / (
        f"sample-{(class_name or 'all').replace('/', '-')}-{n}{'-fitted' if fitted else ''}.png")
    return plots.image_grid(imgs, out, title=f"{cfg.model.name} samples ({what}, {prior} prior, seed {seed})",
                            ncols=min(ncols, n))


def traverse(checkpoint: str | Path, k: int = 8, steps: int = 9, span: float = 3.0, image_index: int = 0,
             out: str | Path | None = None, data: VaeData | None = None, order: str = "kl") -> Path:
    """Latent traversal around a test image's posterior mean: k dimensions (the k most used, by mean KL
    over the test set, or the first k with order="first"), each from -span to span, the others fixed."""
    model, meta, cfg = load_model(checkpoint)
    data = data or load_data(cfg)
    t = data.test
    if not 0 <= image_index < len(t):
        raise ValueError(f"--image must be in 0..{len(t) - 1}")
    if k < 1 or steps < 2:
        raise ValueError("k must be >= 1 and steps >= 2")
    mu, lv = encode_means(model, t.images, t.labels)
    out = Path(out) if out else _run_dir_of(checkpoint) / "plots" / f"traversal-{order}-{image_index}.png"
    return _traversal_figure(model, cfg, mu[image_index], int(t.labels[image_index]), kl_per_dim(mu, lv), out,
                             k, steps, span, order)


def _run_dir_of(checkpoint: str | Path) -> Path:
    p = Path(checkpoint).resolve()
    return p if p.is_dir() else p.parent.parent


def compare(run_dirs: Sequence[str | Path], out: str | Path, names: Sequence[str] | None = None) -> Path:
    """One report over evaluated runs: the results table, traversals side by side (one per beta), and each
    conditional model's per-class grid beside the unconditional models' grids sorted by predicted class."""
    from PIL import Image
    out = Path(out)
    results, figs = {}, {}
    for i, rd in enumerate(run_dirs):
        rd = Path(rd)
        f = rd / "metrics.json"
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found: train or evaluate {rd} first")
        m = json.loads(f.read_text())
        name = names[i] if names else f"{m['model']} beta {m['beta']:g}"
        results[name] = m
        figs[name] = rd / "plots"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    trav = [figs[n] / "traversal.png" for n in results if (figs[n] / "traversal.png").is_file()]
    grids = [figs[n] / "samples_per_class.png" for n in results if (figs[n] / "samples_per_class.png").is_file()]
    images = []
    for name, files in (("traversals", trav), ("samples_per_class", grids)):
        if files:
            ims = [Image.open(p).convert("RGB") for p in files]
            w, h = sum(im.width for im in ims), max(im.height for im in ims)
            canvas = Image.new("RGB", (w, h), "white")
            x = 0
            for im in ims:
                canvas.paste(im, (x, 0))
                x += im.width
            canvas.save(out / f"{name}.png")
            images.append(out / f"{name}.png")
    text = ("Traversals: each row moves one latent dimension from -3 to +3 around a test image's posterior mean. "
            "Larger beta pushes more dimensions to the prior (fewer active dimensions, blurrier images) and makes the "
            "remaining ones vary one factor each; smaller beta keeps more dimensions active, sharper reconstructions "
            "but entangled, less prior-like latents.")
    write_report(out, "VAE comparison on Fashion-MNIST", [Section("Results", text, [results_table(results)], images)])
    return out
