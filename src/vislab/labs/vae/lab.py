"""Generative lab: VAEs on Fashion-MNIST on the shared engine.

    data = load_data(cfg)         # IDX files -> uint8 (N, 1, 28, 28) in memory, per-class val split
    eda(cfg)                      # class balance, pixel intensities, non-zero pixels, examples per class
    run_dir = train(cfg)          # fit (best checkpoint by validation loss), then evaluate_run
    evaluate_run(run_dir)         # test nats (total, reconstruction, KL), FID, controllability, grids, report
    sample(ckpt, 16, "Coat")      # a PNG grid of samples (of one class for the cVAE)
    traverse(ckpt)                # latent traversal grid
    compare([run_a, run_b, ...])  # the results table, traversals per beta, cVAE vs VAE grids

FID (a) uses the shipped Fashion-MNIST classifier's features (`classifier.py`), FID (b) Inception-v3.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.core import plots
from vislab.core.data.loaders import batch_loader
from vislab.core.engine import Trainer, guard_run, open_run, seed_all
from vislab.core.metrics import MeanParts
from vislab.core.report import Section, Table, flat_config, hardware, rich_console, write_report
from vislab.labs.vae.config import VaeEvalConfig, VaeRunConfig
from vislab.labs.vae.data import VaeData, load_data
from vislab.labs.vae.losses import elbo_loss
from vislab.labs.vae.metrics import (
    ACTIVE_KL,
    class_id,
    controllability,
    encode_means,
    generate,
    iwae_bound,
    kl_per_dim,
    reconstruction_accuracy,
    samples_by_class,
    temperature_sweep,
    to_unit,
    traversal,
    traversal_dims,
)
from vislab.labs.vae.models import create_vae_model
from vislab.labs.vae.plots import mosaic_panels
from vislab.labs.vae.plots import temperature_sweep as plot_temperature_sweep
from vislab.labs.vae.prior import FittedPrior, checkpoint_file, fit_prior, load_or_fit_prior, prior_path


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


@guard_run
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
    weights, meta = ckpt.load_checked(path, "vae", "VAE")
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


# --------------------------------------------------------------------------- EDA


def eda(cfg: VaeRunConfig, out: str | Path | None = None, data: VaeData | None = None) -> Path:
    """Class distribution (train and test), pixel-intensity histogram, the share and histogram of non-zero
    pixels, a grid of examples per class; numbers in eda.json, figures in report.html."""
    data = data or load_data(cfg)
    out = Path(out or Path(cfg.out_dir) / "fashion-mnist-eda")
    pdir = out / "plots"
    tr, te = data.train, data.test
    classes = tr.classes
    counts = {name: {c: int((s.labels == i).sum()) for i, c in enumerate(classes)}
              for name, s in (("train", tr), ("test", te))}
    rng = np.random.default_rng(0)
    sub = {name: s.images[rng.choice(len(s), min(len(s), 5000), replace=False)]
           for name, s in (("train", tr), ("test", te))}
    nonzero = {name: (s.images.reshape(len(s), -1) > 0).mean(1) for name, s in (("train", tr), ("test", te))}
    stats = {"images": {"train": len(tr), "test": len(te)}, "shape": list(tr.images.shape[1:]), "counts": counts,
             "mean_intensity": {k: float(v.mean()) for k, v in sub.items()},
             "nonzero_share": {k: float(v.mean()) for k, v in nonzero.items()},
             "nonzero_share_per_class": {c: float(nonzero["train"][tr.labels == i].mean())
                                         for i, c in enumerate(classes)},
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
    figs.append(mosaic_panels({"train examples": (tr.images[rows], len(classes), per)}, pdir / "examples.png",
                                    row_labels=classes))
    text = (f"{len(tr):,} training and {len(te):,} test images, {tuple(tr.images.shape[1:])} uint8, {len(classes)} "
            f"classes, perfectly balanced ({min(counts['train'].values()):,}-{max(counts['train'].values()):,} per "
            f"class in train). {100 * stats['zero_pixels_share']['train']:.1f}% of pixels are exactly 0 (background); "
            f"the mean share of non-zero pixels per image is {100 * stats['nonzero_share']['train']:.1f}% (train), "
            f"lowest for {min(stats['nonzero_share_per_class'], key=stats['nonzero_share_per_class'].get)} and highest "
            f"for {max(stats['nonzero_share_per_class'], key=stats['nonzero_share_per_class'].get)}. Most pixels are "
            "near 0 or bright: a Bernoulli likelihood over [0, 1] intensities fits this well.")
    write_report(out, "Fashion-MNIST EDA",
                 [Section("Summary", text, [Table(["class", "train", "test", "non-zero share"],
                                                  [[c, counts["train"][c], counts["test"][c],
                                                    stats["nonzero_share_per_class"][c]] for c in classes])],
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
    from vislab.labs.vae.classifier import fid_classifier, fid_inception, load_classifier
    console = console or rich_console()
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
        xb = to_unit(t.images[:10])
        rec = model.mean_image(model(xb, torch.from_numpy(t.labels[:10]))["out"])
        figs.append(mosaic_panels({"test images (top), reconstructions (bottom)": (torch.cat([xb, rec]), 2, 10)},
                                        pdir / "reconstructions.png", row_labels=["input", "output"]))
        figs.append(mosaic_panels({"random samples from the prior": (fake[:40], 4, 10)}, pdir / "samples.png"))
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
            figs.append(mosaic_panels({what + (", fitted prior" if pr else ""): (grid, len(classes), 20)},
                                      pdir / f"samples_per_class{suffix}.png",
                                      row_labels=[c if model.conditional else f"{c} ({got[c]})" for c in classes]))
            if chosen:
                figs.append(_detail_figure(model, classifier, classes, chosen, pdir / f"detail_classes{suffix}.png",
                                           pr))
        if prior is not None and len(out["fitted_prior"]["temperature_sweep"]) > 1:
            figs.append(plot_temperature_sweep(out["fitted_prior"]["temperature_sweep"], pdir / "temperature_sweep.png",
                                                title="Fitted prior: sampling temperature (1 = the fitted density)"))
    if ev.tsne:
        figs.append(plots.tsne_scatter(mu, t.labels, classes, pdir / "latent_tsne.png",
                                       title=f"t-SNE of test posterior means ({cfg.model.name}, "
                                             f"beta {cfg.model.beta:g})"))
    out["eval_seconds"] = round(time.time() - t0, 1)
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    _print_summary(console, out)
    from vislab.core.summary import training_card
    card = training_card(meta.get("history"), cfg.train.monitor, cfg.train.monitor_mode, cfg.train.filled().epochs,
                         [results_table({run_dir.name: out})], f"the {len(t)} test images", cfg.train.max_steps)
    write_report(run_dir, f"{cfg.model.name} (beta {cfg.model.beta:g}) on Fashion-MNIST",
                 [card, Section("Results", _summary_text(out), [results_table({run_dir.name: out})], figs),
                  Section("Configuration",
                          tables=[Table(["field", "value"], flat_config(cfg.model_dump(mode="json")))])],
                 meta={"hardware": out["hardware"]})
    return out


def _traversal_figure(model, cfg, z0, y0, kld, path, k: int = 8, steps: int = 9, span: float = 3.0,
                      order: str = "kl") -> Path:
    dims = traversal_dims(kld, k, order)
    values = np.linspace(-span, span, steps)
    return mosaic_panels(
        {f"{cfg.model.name}, beta={cfg.model.beta:g}: latent traversal": (traversal(model, z0, y0, dims, values),
                                                                          len(dims), steps)},
        path, row_labels=[f"z{d} (KL {kld[d]:.2f})" for d in dims], col_labels=[f"{v:+.1f}" for v in values])


def _detail_figure(model, classifier, classes, chosen, path, prior: FittedPrior | None = None) -> Path:
    """Three chosen classes in detail: 10 samples each (one row per class), with what the classifier calls them."""
    from vislab.labs.vae.classifier import classify
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
         f"{t['recon']:.2f} + {t['beta']:g} x KL {t['kl']:.2f}. {m['active_dims']} of {m['latent_dim']} latent "
         f"dimensions active (mean KL > {ACTIVE_KL} nats). FID (a, classifier features, {m['fid']['n']:,} vs "
         f"{m['fid']['n']:,}): {m['fid']['classifier']:.2f}.")
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
        what = (f"{k} Gaussians per class" if f.get("per_class", "controllability" in f)
                else f"a mixture of {k} Gaussians")
        s += f" Sampling from the fitted prior ({what}) instead of N(0, I): FID (a) {f['fid']['classifier']:.2f}"
        if "inception" in f["fid"]:
            s += f", FID (b) {f['fid']['inception']:.2f}"
        if "controllability" in f:
            c = f["controllability"]
            s += (f", controllability {100 * c['mean']:.1f}% mean, worst class {c['worst_class']} "
                  f"{100 * c['worst']:.1f}%")
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
        rows.append([name, m["model"], m["beta"], m.get("epochs"), t["total"], t["recon"], t["kl"],
                     t["recon"] + t["kl"], m["active_dims"],
                     m["fid"]["classifier"], m["fid"].get("inception", "-"),
                     f"{100 * ra:.1f}%" if ra is not None else "-",
                     f"{100 * c['mean']:.1f}% (worst {c['worst_class']} {100 * c['worst']:.1f}%)" if c else "-",
                     f.get("fid", {}).get("classifier", "-"),
                     f"{100 * fc['mean']:.1f}% (worst {fc['worst_class']} {100 * fc['worst']:.1f}%)" if fc else "-"])
    return Table(["run", "model", "beta", "epochs", "total (nats)", "reconstruction", "KL", "-ELBO (beta 1)",
                  "active dims", "FID (a) classifier", "FID (b) Inception", "classifier on reconstructions",
                  "controllability", "FID (a) fitted prior", "controllability fitted prior"], rows,
                 caption="Per test image, nats: total = reconstruction + beta x KL (what was trained), -ELBO = "
                         "reconstruction + KL (a bound on -log p(x), comparable across beta); Bernoulli likelihood "
                         "unless stated; FID compares only within one extractor. Samples come from N(0, I) unless the "
                         "column says fitted prior (a Gaussian mixture per class fitted to the training codes, "
                         "FittedPrior).")


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
