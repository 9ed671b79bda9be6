"""CIFAR-10 lab: classic classifiers (MLP, CNNs, block CNNs, transfer learning, vislab's fastnet)
trained, evaluated and compared on the shared engine.

    data = load_data(cfg)                 # uint8 images in memory (decoded once, cached), val split
    run_dir = train(cfg)                  # fit, checkpoints, test evaluation, report.html
    evaluate(checkpoint)                  # metrics, per-class table, confusion, t-SNE, feature maps
    compare(cfg, ["mlp", "cnn", ...])     # one report over several models
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core import checkpoint as ckpt
from vislab.core import plots
from vislab.core.augment import AUGMENTATIONS, CIFAR_MEAN, CIFAR_STD, BatchAugment
from vislab.core.data.folders import ImageSet, load_folder
from vislab.core.data.images import DataError
from vislab.core.data.loaders import batch_loader
from vislab.core.data.splits import take_per_class, val_split
from vislab.core.engine import Trainer, guard_run, new_run_dir, open_run, read_steps, seed_all
from vislab.core.metrics import confused_pairs, confusion_counts, per_class_report
from vislab.core.objectives import ClassificationObjective, FlipTTA, class_balance_weights
from vislab.core.report import Section, Table, flat_config, hardware, rich_console, write_report
from vislab.labs.cifar.config import CifarRunConfig, default_cifar_recipe
from vislab.labs.cifar.data import load_cifar_pickles, load_torchvision_cifar
from vislab.labs.cifar.models import cifar_model_table, create_cifar_model
from vislab.labs.cifar.plots import accuracy_vs_time, augmentation_preview, curves_by_model, feature_maps

TASK = "label"


# --------------------------------------------------------------------------- data


@dataclass
class CifarData:
    train: ImageSet
    """The training folder/batches; `train_rows` and `val_rows` index it."""
    test: ImageSet
    train_rows: np.ndarray
    val_rows: np.ndarray

    @property
    def classes(self) -> list[str]:
        return self.train.classes


def load_data(cfg: CifarRunConfig, progress: bool = True) -> CifarData:
    dc = cfg.data
    root = Path(dc.root)
    if dc.source == "folder":
        train = load_folder(root / dc.train_dir, tuple(dc.image_size), cache_dir=dc.cache_dir, workers=dc.workers,
                            progress=progress)
        test = load_folder(root / dc.test_dir, tuple(dc.image_size), classes=train.classes, cache_dir=dc.cache_dir,
                           workers=dc.workers, progress=progress, require_all=False)
    elif dc.source == "pickles":
        train, test = load_cifar_pickles(root)
    else:
        train, test = load_torchvision_cifar(root, dc.download)
    rows = np.arange(len(train))
    if dc.limit_per_class:
        rows = take_per_class(train.labels, dc.limit_per_class, dc.seed)
    tr, va = val_split(train.labels[rows], dc.val_mode, dc.val_per_class, dc.val_fraction, dc.seed)
    return CifarData(train, test, rows[tr], rows[va])


def data_rows(data: CifarData) -> list[list]:
    rows = [["train", len(data.train_rows)], ["val", len(data.val_rows)], ["test", len(data.test)]]
    for s in (data.train, data.test):
        for reason, n in s.skipped.items():
            rows.append([f"skipped in {s.source}: {reason}", n])
    return rows


# --------------------------------------------------------------------------- model


def build_model(cfg: CifarRunConfig, num_classes: int) -> torch.nn.Module:
    mc = cfg.model
    opts: dict[str, Any] = {}
    if mc.name.startswith("transfer:"):
        opts["pretrained"] = mc.pretrained
        if mc.freeze is not None:
            opts["freeze"] = mc.freeze
        if mc.input_size is not None and mc.name == "transfer:efficientnet_lite0":
            opts["input_size"] = mc.input_size
    if mc.name.startswith("blocks:") and mc.separable:
        opts["separable"] = True
    return create_cifar_model(mc.name, num_classes=num_classes, **opts)


def normalisation(model: torch.nn.Module) -> tuple[list[float], list[float]]:
    """The model's own mean/std (pretrained transfer models), else CIFAR-10's statistics."""
    return list(getattr(model, "mean", CIFAR_MEAN)), list(getattr(model, "std", CIFAR_STD))


def trainable_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_model(path: str | Path, expect: str | None = None, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """A CIFAR checkpoint's model (built from its own config); `expect` = the model spec asked for."""
    weights, meta = ckpt.load_checked(path, "cifar", "CIFAR")
    cfg = CifarRunConfig.model_validate(meta["config"])
    if expect and expect != cfg.model.name:
        raise ckpt.CheckpointError(f"{path} holds a {cfg.model.name!r} model, not {expect!r}")
    model = build_model(cfg.model_copy(update={"model": cfg.model.model_copy(update={"pretrained": False})}),
                        len(meta["classes"]))
    ckpt.load_into(model, weights, path)
    return model.to(device).eval(), meta


# --------------------------------------------------------------------------- train


def _tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """The whole uint8 set as one tensor, on the GPU when training there (batches are then slices)."""
    x = torch.from_numpy(np.array(images))  # into memory (a cache memmap is read-only)
    return x.to(device) if device.type == "cuda" else x


@guard_run
def train(cfg: CifarRunConfig, resume: str | Path | None = None, progress: bool = True, report: bool = True,
          data: CifarData | None = None) -> Path:
    """Train one model; returns the run folder (checkpoints, history.csv, metrics.json, report.html)."""
    console = rich_console()
    cfg, fabric, run_dir = open_run(cfg, resume)
    with fabric.rank_zero_first():
        data = data or load_data(cfg, progress=progress and fabric.is_global_zero)
    tc = cfg.train.filled()
    seed_all(tc.seed)
    model = build_model(cfg, len(data.classes))
    mean, std = normalisation(model)
    if hasattr(model, "init_whitening") and not resume:
        sample = torch.from_numpy(np.asarray(data.train.images[data.train_rows[:5000]])).float().div(255)
        model.init_whitening((sample - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    transform = BatchAugment(cfg.data.augment if tc.augment else "none", mean, std)
    balance = ({TASK: class_balance_weights(data.train.labels[data.train_rows], len(data.classes), tc.class_balance)}
               if tc.class_balance else None)
    objective = ClassificationObjective({TASK: len(data.classes)}, label_smoothing=tc.label_smoothing,
                                        class_weights=balance)
    params = trainable_params(model)
    meta = {"lab": "cifar", "config": cfg.model_dump(mode="json"), "classes": data.classes, "model": cfg.model.name,
            "mean": mean, "std": std, "trainable_params": params, "image_size": list(cfg.data.image_size)}
    if fabric.is_global_zero:
        console.print(f"{cfg.model.name}: {params:,} trainable parameters; recipe {tc.recipe} "
                      f"({tc.optimizer}, lr {tc.lr}, {tc.scheduler}, {tc.epochs} epochs, batch {tc.batch_size}); "
                      f"augmentation {transform.kind}; "
                      f"train {len(data.train_rows)}, val {len(data.val_rows)}, test {len(data.test)}")
    x = _tensor(data.train.images, fabric.device)
    y = torch.from_numpy(data.train.labels)
    train_loader = batch_loader(x, y, data.train_rows, tc.batch_size, shuffle=True, seed=tc.seed,
                                num_workers=tc.num_workers, drop_last=len(data.train_rows) > tc.batch_size)
    val_loader = batch_loader(x, y, data.val_rows, tc.eval_batch_size, shuffle=False)
    trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress, console=console)
    result = trainer.fit(model, objective, train_loader, val_loader, transform, resume=bool(resume))
    if fabric.is_global_zero:
        console.print(f"trained {result.steps} steps in {result.seconds:.0f} s; best epoch {result.best_epoch}")
        if report:
            evaluate_run(run_dir, data, cfg, history=result.history, console=console)
    fabric.barrier()
    return run_dir


def time_to(history: list[dict], target: float, key: str = "val_accuracy") -> float | None:
    """Training seconds (summed over epochs, evaluation excluded) until `key` first reached `target`."""
    total = 0.0
    for h in history:
        total += float(h.get("train_seconds", 0.0))
        if float(h.get(key, 0.0)) >= target:
            return total
    return None


# --------------------------------------------------------------------------- evaluate


@torch.no_grad()
def predict_set(model: torch.nn.Module, images: np.ndarray, mean, std, tta: bool = False, batch_size: int = 500,
                features: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits (N, C) of uint8 images, optionally with penultimate features (N, D)."""
    model.eval()
    norm = BatchAugment("none", mean, std).eval()
    net = FlipTTA(model) if tta else model
    logits, feats = [], []
    for i in range(0, len(images), batch_size):
        xb = norm(torch.from_numpy(np.array(images[i:i + batch_size])))
        logits.append(net(xb).float())
        if features:
            feats.append(model.forward_features(xb).float().flatten(1))
    return torch.cat(logits).numpy(), (torch.cat(feats).numpy() if features else None)


def evaluate_run(run_dir: Path, data: CifarData, cfg: CifarRunConfig, history: list[dict] | None = None,
                 path: Path | None = None, console=None, image_index: int = 0) -> dict:
    """Test metrics of a checkpoint (default: the run's best) + every plot, metrics.json and report.html."""
    console = console or rich_console()
    path = path or run_dir / "checkpoints" / "best.safetensors"
    model, meta = load_model(path)
    history = history if history is not None else meta.get("history", [])
    tc = cfg.train.filled()
    classes = meta["classes"]
    t0 = time.time()
    logits, feats = predict_set(model, data.test.images, meta["mean"], meta["std"], tta=False, features=True)
    eval_s = time.time() - t0
    y = data.test.labels
    obj = ClassificationObjective({TASK: len(classes)})
    m = obj.make_metrics(train=False, sync=False)
    lt = torch.from_numpy(logits)
    yt = torch.from_numpy(y)
    m.update(lt, yt, obj(lt, yt)[1])
    metrics = m.compute()[TASK]
    tta_acc = None
    if tc.tta:
        tta_logits, _ = predict_set(model, data.test.images, meta["mean"], meta["std"], tta=True)
        tta_acc = float((tta_logits.argmax(1) == y).mean())
    pred = logits.argmax(1)
    per_class = per_class_report(y, pred, classes)
    cm = confusion_counts(y, pred, len(classes))
    pairs = confused_pairs(cm, classes, top=5)
    train_s = sum(float(h.get("train_seconds", 0)) for h in history) if history else None
    out = {"model": cfg.model.name, "recipe": tc.recipe, "epochs": len(history or []), "n_test": int(len(y)),
           "trainable_params": meta.get("trainable_params", trainable_params(model)), "checkpoint": str(path),
           "accuracy": metrics["accuracy"], "accuracy_tta": tta_acc, "loss": metrics.get("loss"),
           "macro_f1": per_class["macro avg"]["f1"], "macro_precision": per_class["macro avg"]["precision"],
           "macro_recall": per_class["macro avg"]["recall"], "auroc_micro": metrics.get("auroc"),
           "train_seconds": train_s, "time_to_85": time_to(history or [], 0.85),
           "best_epoch": meta.get("epoch"), "per_class": per_class,
           "confused_pairs": [list(p) for p in pairs], "hardware": hardware(), "eval_seconds": eval_s}
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    _print_summary(console, out)
    write_run_report(run_dir, data, cfg, meta, out, history, cm, feats, model, image_index)
    return out


def _print_summary(console, m: dict) -> None:
    from rich.table import Table as RTable
    t = RTable(title=f"{m['model']}: test ({m['n_test']} images)")
    for c in ("accuracy", "accuracy (flip TTA)", "macro F1", "loss", "params", "train s", "to 85% val"):
        t.add_column(c, justify="right")
    f = lambda v, fmt: "-" if v is None else format(v, fmt)  # noqa: E731
    t.add_row(f(m["accuracy"], ".4f"), f(m["accuracy_tta"], ".4f"), f(m["macro_f1"], ".4f"), f(m["loss"], ".4f"),
              f"{m['trainable_params']:,}", f(m["train_seconds"], ".0f"), f(m["time_to_85"], ".0f"))
    console.print(t)
    if m["confused_pairs"]:
        console.print("most confused: " + "; ".join(f"{a} <-> {b} ({n})" for a, b, n, _ in m["confused_pairs"][:3]))


def _summary_table(m: dict) -> Table:
    return Table(["model", "recipe", "epochs", "trainable params", "train s", "s to 85% val acc", "test accuracy",
                  "test accuracy (flip TTA)", "macro F1", "macro precision", "macro recall", "loss"],
                 [[m["model"], m["recipe"], m["epochs"], m["trainable_params"], m["train_seconds"], m["time_to_85"],
                   m["accuracy"], m["accuracy_tta"], m["macro_f1"], m["macro_precision"], m["macro_recall"],
                   m["loss"]]])


def write_run_report(run_dir: Path, data: CifarData, cfg: CifarRunConfig, meta: dict, m: dict, history, cm,
                     feats, model, image_index: int = 0) -> Path:
    from vislab.core.metrics import majority_baseline
    from vislab.core.report import Figure
    from vislab.core.summary import best_epoch, hyperparameter_table, per_class_sections, summary_card
    fig = run_dir / "figures"
    fig.mkdir(parents=True, exist_ok=True)
    classes = meta["classes"]
    pc = m["per_class"]
    base = majority_baseline(None, data.test.labels, np.bincount(data.train.labels, minlength=len(classes)))
    scored = {"accuracy": m["accuracy"], "f1": m["macro_f1"]}
    best = best_epoch(history or [], cfg.train.monitor, cfg.train.monitor_mode)
    sections = [summary_card(history, cfg.train.monitor, cfg.train.monitor_mode, cfg.train.filled().epochs,
                             {"CIFAR-10": scored}, {"CIFAR-10": base}, {"CIFAR-10": pc},
                             f"the whole test set ({m['n_test']} images)", cfg.train.max_steps),
                Section("Test metrics", "The best checkpoint on the whole test set. Time to 85% counts training "
                        "seconds until validation accuracy first reached 0.85.", tables=[_summary_table(m)])]
    sections.append(per_class_sections({"CIFAR-10": pc}))
    sections[-1].images = [Figure(plots.per_class_bars({c: v for c, v in pc.items() if c != "macro avg"},
                                                       fig / "per_class.png", "Precision, recall and F1"),
                                  "Precision, recall and F1 of each class on the test set.")]
    sections.append(Section("Confusion", "Most confused pairs (both directions): " + "; ".join(
        f"{a} <-> {b}: {n} images ({s:.1%} of the two classes)" for a, b, n, s in m["confused_pairs"]),
        images=[Figure(plots.confusion_matrix(cm, classes, fig / "confusion.png", "Confusion matrix"),
                       "Each row is a true class; a cell is the share of it predicted as the column's class, with "
                       "the count in brackets.")]))
    if history:
        curves = plots.training_curves(history, fig / "curves.png", "Training and validation", best_epoch=best,
                                       steps=read_steps(Path(m["checkpoint"]).parent.parent))
        sections.append(Section("Training curves", images=[Figure(
            curves, "Loss, accuracy and macro F1 on the training and validation splits; the dashed line marks the "
            "best epoch. Runs under three epochs are drawn per optimizer step.", "wide")],
                                tables=[Table(["epoch", "lr", "train loss", "val loss", "train accuracy",
                                               "val accuracy", "images/s"],
                                              [[h["epoch"], h.get("lr"), h.get("train_loss"), h.get("val_loss"),
                                                h.get("train_accuracy"), h.get("val_accuracy"),
                                                h.get("train_images_per_s")]
                                               for h in history])]))
    images = [plots.tsne_scatter(feats, data.test.labels, classes, fig / "tsne.png",
                                 f"t-SNE of penultimate features ({cfg.model.name}, test set)")]
    sections.append(Section("t-SNE", "Penultimate-layer features of the test images (up to 2,000, every class).",
                            images=images))
    i = int(np.clip(image_index, 0, len(data.test) - 1))
    xb = BatchAugment("none", meta["mean"], meta["std"]).eval()(torch.from_numpy(np.array(data.test.images[i:i + 1])))
    with torch.no_grad():
        stages = model.stages(xb)
    if stages:
        maps = feature_maps(stages, fig, prefix="featuremap", image_u8=np.asarray(data.test.images[i]))
        sections.append(Section("Feature maps", f"Output of every conv stage for test image {i} "
                                f"({classes[data.test.labels[i]]}).", images=maps))
    sections.append(Section("Data", tables=[Table(["split", "images"], data_rows(data))],
                            images=[plots.class_distribution(data.train.counts(data.val_rows), fig / "val_classes.png",
                                                             "Validation set: images per class")]))
    sections.append(Section("Hyperparameters", "What the run trained with: every field the recipe fills in, "
                            "resolved, and where it came from.", tables=[hyperparameter_table(cfg.train)]))
    sections.append(Section("Configuration",
                            tables=[Table(["field", "value"], flat_config(cfg.model_dump(mode="json")))]))
    html, _ = write_report(run_dir, f"vislab CIFAR-10 run: {run_dir.name}", sections,
                           {"created": dt.datetime.now().isoformat(timespec="seconds"), "hardware": hardware(),
                            "model": cfg.model.name, "recipe": m["recipe"]})
    return html


def evaluate(checkpoint: str | Path, cfg: CifarRunConfig | None = None, model: str | None = None,
             out: str | Path | None = None, progress: bool = True, image_index: int = 0) -> dict:
    """Evaluate a checkpoint on its own test data (or cfg.data's); `model` checks the checkpoint is that model."""
    meta = ckpt.read_checked(checkpoint, "cifar", "CIFAR")
    run_cfg = CifarRunConfig.model_validate(meta["config"])
    if model and model != run_cfg.model.name:
        raise ckpt.CheckpointError(f"{checkpoint} holds a {run_cfg.model.name!r} model, not {model!r}")
    data_cfg = (cfg or run_cfg).data
    data = load_data(run_cfg.model_copy(update={"data": data_cfg}), progress)
    if data.classes != meta["classes"]:
        raise DataError(f"the data's classes {data.classes} differ from the checkpoint's {meta['classes']}")
    run_dir = Path(out) if out else Path(checkpoint).parent.parent / "eval"
    run_dir.mkdir(parents=True, exist_ok=True)
    return evaluate_run(run_dir, data, run_cfg, path=Path(checkpoint), image_index=image_index)


# --------------------------------------------------------------------------- compare, preview, models


def compare(cfg: CifarRunConfig, models: Sequence[str], recipe: str | None = None, progress: bool = True) -> Path:
    """Train every model (each with its own recipe unless `recipe` is given) and write one report."""
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-compare")
    data = load_data(cfg, progress)
    results: dict[str, dict] = {}
    for name in models:
        raw = cfg.model_dump(mode="json")
        raw["model"]["name"], raw["out_dir"], raw["name"] = name, str(out), name.replace(":", "-")
        raw["train"]["recipe"] = recipe or default_cifar_recipe(name)
        sub = CifarRunConfig.model_validate(raw)
        run_dir = train(sub, progress=progress, data=data)
        m = json.loads((run_dir / "metrics.json").read_text())
        m["dir"] = str(run_dir)
        m["history"] = ckpt.read_meta(run_dir / "checkpoints" / "last.safetensors").get("history", [])
        results[name] = m
    write_comparison_report(out, results)
    return out


def write_comparison_report(out: Path, results: dict[str, dict]) -> Path:
    fig = out / "figures"
    fig.mkdir(parents=True, exist_ok=True)
    cols = ["model", "recipe", "epochs", "trainable params", "train s", "s to 85% val acc", "test accuracy",
            "test accuracy (flip TTA)", "macro F1"]
    rows = [[n, m["recipe"], m["epochs"], m["trainable_params"], m["train_seconds"], m["time_to_85"], m["accuracy"],
             m["accuracy_tta"], m["macro_f1"]] for n, m in results.items()]
    imgs = [plots.summary_bars({n: {"accuracy": m["accuracy"], "f1": m["macro_f1"]} for n, m in results.items()},
                               fig / "summary.png", "Test accuracy and macro F1"),
            accuracy_vs_time({n: (m["train_seconds"] or 0.0, m["accuracy"], m["trainable_params"])
                              for n, m in results.items()},
                                   fig / "accuracy_vs_time.png"),
            curves_by_model({n: m["history"] for n, m in results.items()}, fig / "val_accuracy.png")]
    side = [Path(m["dir"]) / "figures" / "confusion.png" for m in results.values()]
    sections = [Section("Models", tables=[Table(cols, rows)], images=imgs),
                Section("Confusion matrices side by side", " | ".join(results),
                        images=[p for p in side if p.is_file()]),
                Section("Runs", tables=[Table(["model", "report"],
                                              [[n, str(Path(m["dir"]) / "report.html")] for n, m in results.items()])])]
    (out / "comparison.json").write_text(json.dumps({n: {k: v for k, v in m.items() if k != "history"}
                                                     for n, m in results.items()}, indent=2))
    html, _ = write_report(out, "vislab CIFAR-10 comparison", sections,
                           {"created": dt.datetime.now().isoformat(timespec="seconds"), "hardware": hardware()})
    return html


def preview(cfg: CifarRunConfig, out: str | Path | None = None, progress: bool = True, image_index: int = 0) -> Path:
    """Augmentation preview (one image, 10 draws of each augmentation), 50 preprocessed training
    images, the validation class distribution; written to out/report.html."""
    data = load_data(cfg, progress)
    out = Path(out) if out else Path(cfg.out_dir) / f"{cfg.name}-preview"
    fig = out / "figures"
    fig.mkdir(parents=True, exist_ok=True)
    img = torch.from_numpy(np.asarray(data.train.images[data.train_rows[image_index]]))
    augs = {k: BatchAugment(k) for k in AUGMENTATIONS if k != "none"}
    p1 = augmentation_preview(img, augs, fig / "augmentations.png", draws=10, seed=cfg.data.seed)
    rng = np.random.default_rng(cfg.data.seed)
    pick = np.sort(rng.choice(data.train_rows, min(50, len(data.train_rows)), replace=False))
    aug = BatchAugment(cfg.data.augment).train()
    x = aug(torch.from_numpy(np.asarray(data.train.images[pick])), torch.Generator().manual_seed(cfg.data.seed))
    from vislab.core.augment import denormalize
    p2 = plots.image_grid(denormalize(x, aug.mean, aug.std).numpy(), fig / "train_batch.png",
                          f"50 training images after preprocessing (augmentation {cfg.data.augment})", ncols=10,
                          labels=[data.classes[c] for c in data.train.labels[pick]])
    p3 = plots.class_distribution(data.train.counts(data.val_rows), fig / "val_classes.png",
                                  "Validation set: images per class")
    write_report(out, "vislab CIFAR-10 data preview", [
        Section("Augmentations", "\n".join(f"{k}: {v}" for k, v in AUGMENTATIONS.items()), images=[p1]),
        Section("After preprocessing", images=[p2]),
        Section("Validation split", f"val_mode={cfg.data.val_mode}",
                tables=[Table(["split", "images"], data_rows(data))], images=[p3])],
        {"data": f"{cfg.data.source} {cfg.data.root}"})
    return out


def models_table() -> list[dict]:
    return cifar_model_table()
