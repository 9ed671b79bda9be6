"""Siamese lab: face verification and retrieval with contrastive and triplet losses, on the shared engine.

    data = load_data(cfg)                    # faces in memory as uint8, people split into train/val/test
    run_dir = train(cfg)                     # fit (best checkpoint by val AUC), then evaluate_run
    evaluate(checkpoint)                     # ROC/AUC/EER, accuracy at the val threshold, P@1, MAP@R, plots
    search(cfg)                              # Optuna over lr, margin, StepLR, epochs, embedding_dim, loss
    verify(run_or_ckpt, img1, img2)          # distance, threshold, same/different, confidence
    gallery(run_or_ckpt, query, folder)      # the k nearest images of a query

How batches reach the engine: every batch is `(x, y)` with x uint8 images, and the objective reads
the structure from the ratio of rows, len(x) / len(y):
  2 -> pairs     x = [a; b],    y = 1 same person / 0 not  (contrastive training)
  3 -> triplets  x = [a; p; n], y = ones                   (triplet training, sampled)
  1 -> labelled  x = images,    y = person id              (mined triplets; validation)
Validation always embeds every validation image once and scores ALL pairs of them, so the
validation AUC is exact and comparable between losses; the best checkpoint is the one with the
highest validation AUC (train.monitor).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.core import plots
from vislab.core.data.cache import decode_images
from vislab.core.data.images import OK as DECODED
from vislab.core.data.images import DataError, ImageError, load_image
from vislab.core.data.loaders import batch_loader
from vislab.core.data.paths import folder_images
from vislab.core.engine import Trainer, guard_run, new_run_dir, open_run, seed_all
from vislab.core.errors import CheckpointError
from vislab.core.models import check_train_blocks
from vislab.core.report import Section, Table, flat_config, hardware, rich_console, write_report
from vislab.core.transforms import BatchTransform
from vislab.labs.siamese.config import FACE_NET, SiameseRunConfig
from vislab.labs.siamese.data import FaceData, load_data
from vislab.labs.siamese.face_backbone import DlibFaceNet
from vislab.labs.siamese.losses import DISTANCES
from vislab.labs.siamese.metrics import (
    accuracy_at,
    calibrate,
    choose_threshold,
    nearest,
    pair_distances,
    retrieval_metrics,
    verification_metrics,
)
from vislab.labs.siamese.model import EmbeddingNet
from vislab.labs.siamese.objective import SiameseObjective, loss_head, train_loader
from vislab.labs.siamese.plots import distance_distributions, neighbour_grid, verification_roc
from vislab.labs.siamese.verification import folder_eval_dir, stored_verification
from vislab.labs.siamese.whiten import fit_model

# --------------------------------------------------------------------------- model


def build_model(cfg: SiameseRunConfig, pretrained: bool | None = None, classes: int | None = None) -> EmbeddingNet:
    """The embedding network of `cfg`; with `classes` (training people) and a class loss, with its loss head."""
    mc = cfg.model
    backbone = DlibFaceNet() if mc.backbone == FACE_NET else mc.backbone
    return EmbeddingNet(backbone, mc.embedding_dim, pretrained=mc.pretrained if pretrained is None else pretrained,
                        relu=mc.relu, normalize=mc.normalize, image_size=tuple(cfg.data.image_size),
                        freeze_bn=mc.freeze_bn, train_blocks=mc.train_blocks, whiten=mc.wccn is not None,
                        project=mc.fine_tune, feature_level=mc.feature_level, grid=mc.feature_grid,
                        loss_head=loss_head(cfg, classes) if classes else None, head_lr_mult=cfg.loss.class_lr_mult)


def describe(cfg: SiameseRunConfig) -> str:
    """What a setting trains and fits, in words (reports, metrics.json's "loss")."""
    mc = cfg.model
    text = (SiameseObjective.from_config(cfg).describe() if mc.fine_tune
            else f"none: {mc.backbone} {'face' if mc.backbone == FACE_NET else 'ImageNet'} features, no fine-tuning")
    if mc.feature_level is not None:
        text += f"; feature level {mc.feature_level} pooled {mc.feature_grid}x{mc.feature_grid}"
    if mc.wccn is not None:
        views = f", {mc.wccn_views} augmented views" if mc.wccn_views else ""
        text += f"; WCCN (shrinkage {mc.wccn:g}{views}) on the training people"
    return text


def load_model(path: str | Path, device: str = "cpu") -> tuple[EmbeddingNet, dict, SiameseRunConfig]:
    """A Siamese checkpoint's embedding network (rebuilt from its own config) with its metadata."""
    path = Path(path)
    weights, meta = ckpt.load_checked(path, "siamese", "Siamese")
    cfg = SiameseRunConfig.model_validate(meta["config"])
    model = build_model(cfg, pretrained=False, classes=len(meta.get("split_people", {}).get("train", [])))
    ckpt.load_into(model, weights, path)
    return model.to(device).eval(), meta, cfg


@torch.no_grad()
def embed(model: nn.Module, images, mean, std, batch_size: int = 128, tta: bool = False) -> torch.Tensor:
    """Embeddings (N, D) of uint8 images (N, 3, H, W); with `tta` the mean of the image's and its mirror's
    embedding (L2-normalised again when the model normalises)."""
    model.eval()
    norm = BatchTransform(mean, std, augment=False).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = norm(torch.from_numpy(np.array(images[i:i + batch_size])))
        e = model(x).float()
        if tta:
            e = (e + model(x.flip(-1)).float()) / 2
            e = nn.functional.normalize(e, dim=-1) if getattr(model, "normalize", False) else e
        out.append(e)
    return torch.cat(out) if out else torch.zeros(0, getattr(model, "embedding_dim", 1))


def augmentation(cfg: SiameseRunConfig, mean, std, augment: bool = True) -> BatchTransform:
    """The training augmentation (flip, shift, data.scale zoom, brightness/contrast, data.rotate, data.blur), also
    the WCCN's augmented views."""
    return BatchTransform(mean, std, augment=augment, max_rotate=cfg.data.rotate, max_scale=cfg.data.scale,
                          max_blur=cfg.data.blur)


def _norm_of(model: EmbeddingNet) -> tuple[list[float], list[float]]:
    dc = model.data_config
    return list(dc.get("mean", (0.5, 0.5, 0.5))), list(dc.get("std", (0.5, 0.5, 0.5)))


# --------------------------------------------------------------------------- train


@guard_run
def train(cfg: SiameseRunConfig, resume: str | Path | None = None, progress: bool = True, report: bool = True,
          data: FaceData | None = None, run_dir: str | Path | None = None) -> Path:
    """Train one embedding network; returns the run folder (checkpoints, history.csv, metrics.json, report.html)."""
    console = rich_console()
    check_train_blocks(cfg.model.backbone, cfg.model.train_blocks)
    cfg, fabric, run_dir = open_run(cfg, resume, run_dir)
    with fabric.rank_zero_first():
        data = data or load_data(cfg, progress=progress and fabric.is_global_zero)
    tc = cfg.train.filled()
    seed_all(tc.seed)
    model = build_model(cfg, classes=len(data.split.people["train"]))
    mean, std = _norm_of(model)
    objective = SiameseObjective.from_config(cfg, model.loss_head, data.split.people["train"])
    transform = augmentation(cfg, mean, std, tc.augment)
    meta = {"lab": "siamese", "config": cfg.model_dump(mode="json"), "mean": mean, "std": std, "people": data.people,
            "split_people": {k: [data.people[p] for p in v] for k, v in data.split.people.items()},
            "image_size": list(cfg.data.image_size), "distance": objective.distance}
    if fabric.is_global_zero:
        sz = data.split.sizes()
        how = (f"{tc.optimizer} lr {tc.lr:g} {tc.scheduler} (step {tc.step_size}, gamma {tc.gamma:g}), {tc.epochs} "
               f"epochs, batch {tc.batch_size}" if cfg.model.fine_tune else "no gradient step")
        console.print(f"siamese {cfg.model.backbone} -> {model.embedding_dim}-d; {describe(cfg)}; {how}; people "
                      f"train {sz['train']['people']} / val {sz['val']['people']} / test {sz['test']['people']}"
                      + (f"; excluded {data.excluded}" if data.excluded else ""))
    if cfg.model.fine_tune:
        x = torch.from_numpy(np.array(data.images))  # writable, in memory
        loader = train_loader(cfg, data, x)
        val_loader = batch_loader(x, torch.from_numpy(data.labels), data.split.val, tc.eval_batch_size, shuffle=False)
        trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress, console=console)
        result = trainer.fit(model, objective, loader, val_loader, transform, resume=bool(resume))
        history = result.history
    elif fabric.is_global_zero:  # no gradient step: the ImageNet features are the embedding, whitened once
        history = []
        fitted = {"wccn": fit_whitening(model, cfg, data, mean, std)} if cfg.model.wccn is not None else {}
        for name in ("best", "last"):  # the same network: fit once, write twice
            ckpt.save_weights(run_dir / "checkpoints" / f"{name}.safetensors", model.state_dict(),
                              {**meta, "epoch": 0, "step": 0, "history": [], **fitted})
        if fitted:
            _print_wccn(console, fitted["wccn"])
    if fabric.is_global_zero:
        if cfg.model.fine_tune:
            console.print(f"trained {result.steps} steps in {result.seconds:.0f} s; best epoch {result.best_epoch} "
                          f"(by {tc.monitor})")
            if cfg.model.wccn is not None:
                whiten_checkpoints(run_dir, data, cfg, console)
        if report:
            evaluate_run(run_dir, data, history=history, console=console)
    fabric.barrier()
    return run_dir


def fit_whitening(model: EmbeddingNet, cfg: SiameseRunConfig, data: FaceData, mean, std) -> dict:
    """Fit `model`'s WCCN layer on `data`'s training people: their images, mirrors (train.tta) and
    model.wccn_views augmented copies (the training augmentation, seeded by train.seed)."""
    idx, tc = data.split.train, cfg.train.filled()
    aug = augmentation(cfg, mean, std)
    return fit_model(model, data.images[idx], data.labels[idx], mean, std, cfg.model.wccn, bool(tc.tta),
                     cfg.model.wccn_views, aug, tc.seed)


def whiten_checkpoints(run_dir: Path, data: FaceData, cfg: SiameseRunConfig, console=None) -> None:
    """Fit the WCCN layer of the run's best and last checkpoints on the training people (model.wccn) and write it
    into them; the embeddings before it are the trained network's, so fitting again gives the same layer."""
    for name in ("best", "last"):
        path = run_dir / "checkpoints" / f"{name}.safetensors"
        if not path.is_file():
            continue
        model, meta, _ = load_model(path)
        info = fit_whitening(model, cfg, data, meta["mean"], meta["std"])
        ckpt.update_meta(path, {"wccn": info}, tensors={k: v.detach().numpy().copy()
                                                        for k, v in model.whiten.state_dict(prefix="whiten.").items()})
    if console:
        _print_wccn(console, info)


def _print_wccn(console, info: dict) -> None:
    console.print(f"WCCN fit on {info['people']} training people ({info['images']} images x {info['views']} "
                  f"views, {info['dim']}-d, shrinkage {info['shrinkage']:g})")


# --------------------------------------------------------------------------- evaluate


def split_embeddings(model, data: FaceData, mean, std, split: str, tta: bool = False):
    idx = getattr(data.split, split)
    return embed(model, data.images[idx], mean, std, tta=tta), data.labels[idx], idx


def evaluate_run(run_dir: Path, data: FaceData | None = None, history: list[dict] | None = None,
                 path: Path | None = None, console=None, seed: int = 0, plots_on: bool = True,
                 store: bool = True) -> dict:
    """Verification (threshold from val pairs, applied to test pairs), retrieval and plots of a checkpoint
    (default: the run's best) on its own person split. Writes metrics.json, verification.json and report.html
    into the run folder and, with `store`, the threshold and calibration into the checkpoint itself, so that
    `verify`, `gallery` and `evaluate --data` on another folder of people use them wherever the file goes."""
    run_dir = Path(run_dir)
    path = Path(path or run_dir / "checkpoints" / "best.safetensors")
    model, meta, cfg = load_model(path)
    data = data or load_data(cfg, progress=False)
    history = history if history is not None else meta.get("history", [])
    out = evaluate_model(model, meta, cfg, run_dir, data, history, str(path), console, seed, plots_on)
    if store:
        ckpt.update_meta(path, {"verification": json.loads((run_dir / "verification.json").read_text())})
    return out


def _score_test(model: nn.Module, meta: dict, data: FaceData, threshold: float,
                tta: bool = False) -> tuple[dict, tuple]:
    """Verification over every pair of test images at `threshold`, and retrieval among them; also the arrays
    the plots need."""
    distance = meta.get("distance", "euclidean")
    et, lt, it = split_embeddings(model, data, meta["mean"], meta["std"], "test", tta)
    d, same = pair_distances(et, lt, distance)
    v = verification_metrics(d, same)
    at = accuracy_at(d, same, threshold)
    retr = retrieval_metrics(et.numpy(), lt, distance)
    scores = {"test_people": int(len(np.unique(lt))), "test_images": int(len(lt)),
              "test_pairs": {"same": int(same.sum()), "different": int((1 - same).sum())},
              "auc": v["auc"], "eer": v["eer"], "threshold": threshold,
              "accuracy": at["accuracy"], "balanced_accuracy": at["balanced_accuracy"], "tpr": at["tpr"],
              "tnr": at["tnr"], "precision_at_1": retr["precision_at_1"], "map_at_r": retr["map_at_r"]}
    return scores, (et, lt, it, d, same, v)


def evaluate_model(model: nn.Module, meta: dict, cfg: SiameseRunConfig, run_dir: Path, data: FaceData,
                   history: list[dict] | None = None, source: str = "", console=None, seed: int = 0,
                   plots_on: bool = True, loss_name: str | None = None) -> dict:
    """evaluate_run for a model in memory (`meta` gives mean, std and distance)."""
    console = console or rich_console()
    run_dir.mkdir(parents=True, exist_ok=True)
    distance = meta.get("distance", "euclidean")
    t0 = time.time()
    tta = bool(cfg.train.filled().tta)
    ev, lv, _ = split_embeddings(model, data, meta["mean"], meta["std"], "val", tta)
    dv, sv = pair_distances(ev, lv, distance)
    threshold = choose_threshold(dv, sv)
    val_v = verification_metrics(dv, sv)
    scores, arrays = _score_test(model, meta, data, threshold, tta)
    out = {"loss": loss_name or describe(cfg), "checkpoint": source,
           "best_epoch": meta.get("epoch"), "epochs": len(history or []), **scores,
           "tta": tta, "threshold_from": "validation pairs", "val_auc": val_v["auc"], "val_eer": val_v["eer"],
           "train_seconds": sum(float(h.get("train_seconds", 0)) for h in history or []),
           "split": data.split.sizes(), "excluded": data.excluded, "hardware": hardware(),
           "eval_seconds": round(time.time() - t0, 2)}
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    (run_dir / "verification.json").write_text(json.dumps(
        {"threshold": threshold, "distance": distance, "calibration": calibrate(dv, sv), "checkpoint": source,
         "val_auc": val_v["auc"], "val_eer": val_v["eer"], "val_people": len(data.split.people["val"])}, indent=2))
    _print_summary(console, out)
    if plots_on:
        _write_plots(run_dir, data, *arrays, threshold, seed, distance)
        write_run_report(run_dir, cfg, out, history)
    return out


def _print_summary(console, m: dict) -> None:
    from rich.table import Table as RTable
    t = RTable(title=f"test people ({m['test_people']} people, {m['test_images']} images, "
                     f"{m['test_pairs']['same']} same / {m['test_pairs']['different']} different pairs)")
    for c in ("AUC", "EER", "acc @ val threshold", "balanced acc", "P@1", "MAP@R", "threshold"):
        t.add_column(c, justify="right")
    t.add_row(f"{m['auc']:.4f}", f"{100 * m['eer']:.2f}%", f"{m['accuracy']:.4f}", f"{m['balanced_accuracy']:.4f}",
              f"{m['precision_at_1']:.4f}", f"{m['map_at_r']:.4f}", f"{m['threshold']:.4f}")
    console.print(t)


def _write_plots(run_dir: Path, data: FaceData, et, lt, it, d, same, test_v, threshold, seed,
                 distance: str = "euclidean") -> None:
    pdir = run_dir / "plots"
    verification_roc({"test": test_v}, pdir / "roc.png")
    distance_distributions({"test pairs": (d[same == 1], d[same == 0])}, pdir / "distances.png", threshold)
    q = _queries(lt, 5, seed)
    nb, nd = nearest(et[q], et, 11, distance)  # the query itself comes first (distance 0): dropped
    rows, marks, dists = [], [], []
    for r, qi in enumerate(q):
        keep = [(j, v) for j, v in zip(nb[r], nd[r]) if j != qi][:10]
        rows.append(data.images[it[[j for j, _ in keep]]])
        marks.append([lt[j] == lt[qi] for j, _ in keep])
        dists.append([v for _, v in keep])
    neighbour_grid(data.images[it[q]], rows, marks, pdir / "neighbours.png", dists,
                         title="10 nearest test images of 5 random test queries (green: same person)")
    plots.tsne_scatter(et.numpy(), lt, data.people, pdir / "tsne.png", title="t-SNE of test embeddings, by person",
                       seed=seed)


def _queries(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n random image indices, from different people as long as there are people left."""
    perm = np.random.default_rng(seed).permutation(len(labels))
    first = [i for k, i in enumerate(perm) if labels[i] not in set(labels[perm[:k]])]
    rest = [i for i in perm if i not in set(first)]
    return np.array((first + rest)[:n])


def write_run_report(run_dir: Path, cfg: SiameseRunConfig, m: dict, history) -> Path:
    pdir = run_dir / "plots"
    if history:
        plots.training_curves(history, pdir / "curves.png", title="Siamese training",
                              panels=[("loss", ("train_loss", "val_loss")), ("val AUC", ("val_auc",)),
                                      ("val EER", ("val_eer",))])
    table = Table(["AUC", "EER %", "accuracy @ val threshold", "balanced accuracy", "precision@1", "MAP@R",
                   "threshold", "val AUC"],
                  [[m["auc"], 100 * m["eer"], m["accuracy"], m["balanced_accuracy"], m["precision_at_1"], m["map_at_r"],
                    m["threshold"], m["val_auc"]]])
    split = Table(["split", "people", "images"], [[k, v["people"], v["images"]] for k, v in m["split"].items()]
                  + [[f"excluded: {k}", n, ""] for k, n in m["excluded"].items()])
    from vislab.core.summary import training_card
    people = m["split"].get("test", {}).get("people", "?")
    sections = [
        training_card(history, cfg.train.monitor, cfg.train.monitor_mode, cfg.train.filled().epochs,
                      [Table(["test AUC", "test EER %", "precision@1", "MAP@R"],
                             [[m["auc"], 100 * m["eer"], m["precision_at_1"], m["map_at_r"]]])],
                      f"every pair of the {people} test people, never seen in training", cfg.train.max_steps),
        Section("Verification and retrieval on the test people", f"Loss: {m['loss']}. Threshold chosen on "
                f"{m['threshold_from']} (best balanced accuracy), applied unchanged to all test pairs.", [table]),
        Section("Split by person", "", [split]),
        Section("Plots", "", [], [p for p in (pdir / "roc.png", pdir / "distances.png", pdir / "neighbours.png",
                                              pdir / "tsne.png", pdir / "curves.png") if p.is_file()]),
        Section("Configuration", "", [Table(["field", "value"], flat_config(cfg.model_dump(mode="json")))]),
    ]
    return write_report(run_dir, "Siamese lab: face verification", sections, {"hardware": m["hardware"]})


def evaluate(checkpoint: str | Path, out: str | Path | None = None, root: str | None = None,
             progress: bool = True, split: bool = False) -> dict:
    """Evaluate a checkpoint on its own person split; with `root`, on another folder of people: every person in
    it is a test person and the threshold is the checkpoint's own (chosen on its validation people), or, with
    `split`, `root` is split by person like the training data and the threshold chosen on its val people."""
    checkpoint = Path(checkpoint)
    if root and not split:
        return evaluate_folder(checkpoint, root, out, progress)
    _, meta, cfg = load_model(checkpoint)
    if root:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": root})})
    data = load_data(cfg, progress=progress)
    run_dir = Path(out) if out else checkpoint.parent.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    return evaluate_run(run_dir, data, path=checkpoint, store=not root)


def evaluate_folder(checkpoint: str | Path, root: str | Path, out: str | Path | None = None,
                    progress: bool = True, console=None) -> dict:
    """Every person of `root` as a test person, at the threshold stored in the checkpoint; writes metrics.json,
    plots and report.html to `out` (default: RUN/eval-<folder name>, so the run's own results stay)."""
    checkpoint = Path(checkpoint)
    console = console or rich_console()
    model, meta, cfg = load_model(checkpoint)
    run_dir = checkpoint.parent.parent
    ver = stored_verification(meta, run_dir)
    if "threshold" not in ver:
        raise CheckpointError(f"{checkpoint} holds no validation threshold: run `vislab siamese evaluate "
                              f"{checkpoint}` once on its own split to store it, or pass --split")
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": str(root)})})
    data = load_data(cfg, progress=progress, all_test=True)
    known = set().union(*(meta.get("split_people", {}).get(k, []) for k in ("train", "val")))
    seen = sorted(set(data.people) & known)
    t0 = time.time()
    tta = bool(cfg.train.filled().tta)
    scores, (et, lt, it, d, same, v) = _score_test(model, meta, data, float(ver["threshold"]), tta)
    m = {"loss": describe(cfg), "checkpoint": str(checkpoint), "data": str(root),
         "best_epoch": meta.get("epoch"), "epochs": len(meta.get("history", [])), **scores,
         "tta": tta, "threshold_from": "the checkpoint's own validation people", "val_auc": ver.get("val_auc"),
         "val_eer": ver.get("val_eer"), "seen_people": seen, "train_seconds": 0.0, "split": data.split.sizes(),
         "excluded": data.excluded, "hardware": hardware(), "eval_seconds": round(time.time() - t0, 2)}
    out = Path(out) if out else folder_eval_dir(run_dir, root)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    _print_summary(console, m)
    if seen:
        console.print(f"[yellow]warning: {len(seen)} of the {len(data.people)} people share a folder name with the "
                      f"checkpoint's training/validation people (e.g. {seen[0]}); if they are the same people, "
                      "these are not results on unseen faces[/yellow]")
    _write_plots(out, data, et, lt, it, d, same, v, float(ver["threshold"]), 0, meta.get("distance", "euclidean"))
    write_run_report(out, cfg, m, [])
    return m


def pretrained_features(cfg: SiameseRunConfig, data: FaceData | None = None) -> tuple[EmbeddingNet, dict]:
    """The backbone's pretrained features (pooled, or the model.feature_level map in model.feature_grid cells),
    L2-normalised, as an embedding model (eval mode) and its meta; with model.wccn and `data`, whitened by WCCN fit
    on `data`'s training people (no gradient step either way)."""
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"fine_tune": False, "relu": False,
                                                                       "normalize": True})})
    model = build_model(cfg)
    mean, std = _norm_of(model)
    if cfg.model.wccn is not None and data is not None:
        fit_whitening(model, cfg, data, mean, std)
    else:
        model.whiten = None
    return model.eval(), {"mean": mean, "std": std, "distance": "euclidean"}


def evaluate_pretrained(cfg: SiameseRunConfig, out: str | Path | None = None, progress: bool = True,
                        data: FaceData | None = None) -> dict:
    """The starting point: the backbone's pretrained pooled features, L2-normalised, without any
    training, evaluated exactly like a trained model (threshold from validation, test people)."""
    data = data or load_data(cfg, progress=progress)
    model, meta = pretrained_features(cfg, data)
    out = Path(out) if out else new_run_dir(cfg.out_dir, f"{cfg.name}-pretrained")
    name = describe(cfg.model_copy(update={"model": cfg.model.model_copy(update={"fine_tune": False})}))
    return evaluate_model(model, meta, cfg, out, data, [], f"{cfg.model.backbone} pretrained, untrained",
                          loss_name=name)


# --------------------------------------------------------------------------- verify / gallery


def _read_face(path: str | Path, size) -> np.ndarray:
    try:
        return load_image(path, tuple(size)).transpose(2, 0, 1)
    except ImageError as e:
        raise DataError(str(e)) from None


def verify(run_or_ckpt: str | Path, img1: str | Path, img2: str | Path, threshold: float | None = None) -> dict:
    """Distance of two face images, the validation threshold, same/different and its confidence
    (P(same | distance) from the logistic calibration on validation pairs, or its complement)."""
    path, run_dir = ckpt.resolve(run_or_ckpt)
    model, meta, cfg = load_model(path)
    vinfo = stored_verification(meta, run_dir)
    if threshold is None:
        if "threshold" not in vinfo:
            raise CheckpointError(f"{path} holds no validation threshold (run `vislab siamese evaluate {path}` "
                                  "once) and no --threshold was given")
        threshold = float(vinfo["threshold"])
    a, b = (_read_face(p, meta["image_size"]) for p in (img1, img2))
    e = embed(model, np.stack([a, b]), meta["mean"], meta["std"], tta=bool(cfg.train.filled().tta))
    d = float(DISTANCES[meta.get("distance", "euclidean")](e[:1], e[1:])[0])
    same = d <= threshold
    cal = vinfo.get("calibration")
    p_same = float(1 / (1 + np.exp(-(cal["coef"] * d + cal["intercept"])))) if cal else None
    conf = None if p_same is None else (p_same if same else 1 - p_same)
    return {"distance": d, "threshold": threshold, "same": bool(same), "p_same": p_same, "confidence": conf}


def gallery(run_or_ckpt: str | Path, query: str | Path, folder: str | Path, top: int = 10,
            out: str | Path | None = None) -> dict:
    """The `top` gallery images nearest to a query image; `folder` holds images of any people, directly or in
    person subfolders (then each match names its person); each match says whether it is within the checkpoint's
    validation threshold (`same`; None for a checkpoint without one). With `out`, a PNG of the query and matches."""
    path, run_dir = ckpt.resolve(run_or_ckpt)
    model, meta, cfg = load_model(path)
    tta = bool(cfg.train.filled().tta)
    threshold = stored_verification(meta, run_dir).get("threshold")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: gallery folder does not exist")
    files = folder_images(folder)
    if len(files) < top:
        raise DataError(f"{folder}: the gallery holds {len(files)} images, fewer than --top {top}")
    q = _read_face(query, meta["image_size"])
    imgs, status, _ = decode_images(files, tuple(meta["image_size"]), progress=False)  # cached: decoded once
    keep = np.flatnonzero(status == DECODED)
    ok, bad = [files[i] for i in keep], len(files) - len(keep)
    if len(ok) < top:
        raise DataError(f"{folder}: {len(ok)} readable images ({bad} unreadable), fewer than --top {top}")
    g = np.asarray(imgs[keep])
    eg = embed(model, g, meta["mean"], meta["std"], tta=tta)
    eq = embed(model, q[None], meta["mean"], meta["std"], tta=tta)
    idx, dist = nearest(eq, eg, top, meta.get("distance", "euclidean"))
    matches = [{"rank": r + 1, "file": str(ok[j]), "person": ok[j].parent.name if ok[j].parent != folder else None,
                "distance": float(v), "same": None if threshold is None else bool(v <= threshold)}
               for r, (j, v) in enumerate(zip(idx[0], dist[0]))]
    if out:
        qp = Path(query).parent.name
        neighbour_grid(q[None], [g[idx[0]]], [[m["person"] == qp for m in matches]], out, [dist[0]],
                             title=f"{top} nearest gallery images of {Path(query).name}")
    return {"query": str(query), "gallery_images": len(ok), "unreadable": bad, "threshold": threshold,
            "matches": matches}
