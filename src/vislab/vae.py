"""Generative lab (issue 5, in progress): VAEs on Fashion-MNIST on the shared engine.

    data = load_data(cfg)        # IDX files -> uint8 (N, 1, 28, 28) in memory, per-class val split
    run_dir = train(cfg)         # fit (best checkpoint by validation loss), then evaluate_run
    evaluate_run(run_dir)        # test loss per image in nats (total, reconstruction, KL), grids

Done so far: data, models, loss, training, test loss, reconstruction and sample grids. Still to
come (see issue 5): EDA, traversals, the cVAE grids, the shipped classifier, FID, controllability.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from . import plots
from .config import VaeRunConfig
from .data import batch_loader
from .datasets import ImageSet, load_fashion_mnist, load_torchvision_fashion_mnist, take_per_class, val_split
from .engine import Trainer, open_run, seed_all
from .losses import elbo_loss
from .metrics import MeanParts
from .report import hardware
from .vae_models import create_vae_model


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
    model = create_vae_model(cfg.model.name, cfg.model.latent_dim)
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


def load_model(path: str | Path):
    weights, meta = ckpt.load_weights(path)
    if meta.get("lab") != "vae":
        raise ckpt.CheckpointError(f"{path} is a {meta.get('lab')!r} checkpoint, not a VAE one")
    cfg = VaeRunConfig.model_validate(meta["config"])
    model = create_vae_model(cfg.model.name, cfg.model.latent_dim)
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


def evaluate_run(run_dir: str | Path, data: VaeData | None = None, path: Path | None = None) -> dict:
    run_dir = Path(run_dir)
    path = path or run_dir / "checkpoints" / "best.safetensors"
    model, meta, cfg = load_model(path)
    data = data or load_data(cfg)
    t = data.test
    out = {"model": cfg.model.name, "beta": cfg.model.beta, "epoch": meta.get("epoch"),
           "test_nats_per_image": test_loss(model, t.images, t.labels, cfg.model.beta, cfg.model.likelihood),
           "hardware": hardware()}
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    with torch.no_grad():
        xb = torch.from_numpy(np.array(t.images[:10])).float().div(255)
        rec = torch.sigmoid(model(xb, torch.from_numpy(t.labels[:10]))["out"])
        plots.image_grid(torch.cat([xb, rec]).numpy(), run_dir / "plots" / "reconstructions.png",
                         title="test images (top) and reconstructions (bottom)", ncols=10)
        ys = torch.arange(10).repeat(4)
        s = model.sample(40, ys if model.conditional else None, generator=torch.Generator().manual_seed(0))
        plots.image_grid(s.numpy(), run_dir / "plots" / "samples.png", title="samples from the prior", ncols=10)
    return out
