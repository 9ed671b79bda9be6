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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import checkpoint as ckpt
from . import plots
from .config import SiameseRunConfig
from .data import OK as DECODED
from .data import BatchTransform, DataError, ImageError, batch_loader, decode_images, load_image
from .datasets import IMAGE_EXTS, load_folder
from .engine import Trainer, new_run_dir, open_run, seed_all
from .losses import DISTANCES, contrastive_loss, triplet_loss
from .metrics import MeanParts
from .models import EmbeddingNet
from .pairs import PairSampler, PersonSplit, TripletSampler, split_people
from .report import Section, Table, flat_config, hardware, to_yaml, write_report


def _console():
    from rich.console import Console
    return Console()


# --------------------------------------------------------------------------- data


@dataclass
class FaceData:
    images: np.ndarray
    """uint8 (N, 3, H, W), people with enough images only."""
    labels: np.ndarray
    """int64 (N,), index into `people`."""
    people: list[str]
    split: PersonSplit
    excluded: dict[str, int]
    """What was left out and why (people with one image, empty folders, non-image or corrupt files)."""
    source: str

    def rows(self) -> list[list]:
        sz = self.split.sizes()
        out = [[k, v["people"], v["images"]] for k, v in sz.items()]
        out += [[f"excluded: {k}", n, ""] for k, n in self.excluded.items()]
        return out


def on_split(cfg: SiameseRunConfig, seed: int) -> SiameseRunConfig:
    """cfg on another person split (data.seed)."""
    return cfg.model_copy(update={"data": cfg.data.model_copy(update={"seed": seed})})


def load_data(cfg: SiameseRunConfig, progress: bool = True) -> FaceData:
    dc = cfg.data
    s = load_folder(dc.root, tuple(dc.image_size), cache_dir=dc.cache_dir, workers=dc.workers, progress=progress,
                    require_all=False)
    counts = np.bincount(s.labels, minlength=len(s.classes))
    excluded = dict(s.skipped)
    empty = int((counts == 0).sum())
    few = [c for c, n in zip(s.classes, counts) if 0 < n < dc.min_images]
    if empty:
        excluded["people with no readable image (empty folders)"] = empty
    if few:
        excluded[f"people with fewer than {dc.min_images} images (e.g. {few[0]})"] = len(few)
    keep_people = [k for k, n in enumerate(counts) if n >= dc.min_images]
    if len(keep_people) < 3:
        raise DataError(f"{dc.root}: {len(keep_people)} people with at least {dc.min_images} images; "
                        "train/val/test by person needs at least 3")
    remap = np.full(len(s.classes), -1, dtype=np.int64)
    remap[keep_people] = np.arange(len(keep_people))
    rows = np.flatnonzero(remap[s.labels] >= 0)
    images = s.images if len(rows) == len(s.labels) else np.asarray(s.images[rows])
    labels = remap[s.labels[rows]]
    split = split_people(labels, tuple(dc.split), dc.seed)
    return FaceData(np.asarray(images), labels, [s.classes[k] for k in keep_people], split, excluded, s.source)


class TupleSet(torch.utils.data.Dataset):
    """Pairs or triplets of images, redrawn every epoch (`set_epoch`, called by the engine).

    A batch of B tuples is one uint8 tensor [first column; second column; ...] of k*B images and
    the B pair labels (pairs) or ones (triplets)."""

    def __init__(self, images: torch.Tensor, sampler: PairSampler | TripletSampler):
        self.x, self.sampler = images, sampler
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, PairSampler):
            a, b, same = self.sampler.pairs(epoch)
            self.cols, self.y = [torch.from_numpy(a), torch.from_numpy(b)], torch.from_numpy(same)
        else:
            a, p, n = self.sampler.triplets(epoch)
            self.cols, self.y = [torch.from_numpy(a), torch.from_numpy(p), torch.from_numpy(n)], torch.ones(len(a), dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, idxs):
        i = torch.as_tensor(idxs, dtype=torch.long)
        return self.x[torch.cat([c[i] for c in self.cols])], self.y[i]


def _identity(batch):
    return batch


def train_loader(cfg: SiameseRunConfig, data: FaceData, x: torch.Tensor) -> torch.utils.data.DataLoader:
    tc, lc = cfg.train.filled(), cfg.loss
    idx = data.split.train
    bs = tc.batch_size
    if lc.loss == "contrastive" or lc.miner == "none":
        sampler = (PairSampler(data.labels, idx, seed=tc.seed, positive_rate=cfg.data.positive_rate)
                   if lc.loss == "contrastive" else TripletSampler(data.labels, idx, seed=tc.seed))
        g = torch.Generator().manual_seed(tc.seed)
        return torch.utils.data.DataLoader(TupleSet(x, sampler), batch_size=bs, shuffle=True, generator=g,
                                           collate_fn=_identity, drop_last=len(idx) > bs, num_workers=tc.num_workers)
    from pytorch_metric_learning.samplers import MPerClassSampler
    m = lc.m_per_class
    bs = max(m, bs - bs % m)
    people = len(np.unique(data.labels[idx]))
    if people * m < bs:
        raise ValueError(f"a mined batch of {bs} with {m} images per person needs {bs // m} people; "
                         f"train has {people}. Lower train.batch_size or loss.m_per_class.")
    sampler = MPerClassSampler(data.labels[idx], m, batch_size=bs, length_before_new_iter=len(idx))
    from .data import ArrayDataset
    return torch.utils.data.DataLoader(ArrayDataset(x, torch.from_numpy(data.labels), idx), batch_size=bs,
                                       sampler=sampler, collate_fn=_identity, drop_last=True,
                                       num_workers=tc.num_workers)


# --------------------------------------------------------------------------- objective and metrics


class SiameseObjective:
    """The contrastive or triplet loss of a batch, whatever its structure (see the module docstring)."""

    def __init__(self, loss: str = "contrastive", margin: float = 1.0, form: str = "hadsell",
                 distance: str = "euclidean", miner: str = "none"):
        self.loss, self.margin, self.form, self.miner = loss, margin, form, miner
        self.distance = "euclidean" if loss == "contrastive" else distance
        self.dist = DISTANCES[self.distance]
        if loss == "contrastive":
            contrastive_loss(torch.zeros(1), torch.ones(1), margin, form)  # validates
        else:
            self.triplet = triplet_loss(margin, self.distance)  # sampled (a, p, n) batches
            self.pml_loss, self.pml_miner = self._pml(miner)  # labelled batches: all or mined triplets

    @classmethod
    def from_config(cls, cfg: SiameseRunConfig) -> "SiameseObjective":
        lc = cfg.loss
        return cls(lc.loss, lc.margin, lc.form, lc.distance, lc.miner)

    def describe(self) -> str:
        if self.loss == "contrastive":
            return f"contrastive ({self.form}, margin {self.margin:g})"
        return f"triplet ({self.distance}, margin {self.margin:g}, miner {self.miner})"

    def _pml(self, miner: str):
        """pytorch-metric-learning's triplet loss (mean over triplets, as torch's) and the miner, same distance."""
        from pytorch_metric_learning import distances, losses, miners, reducers
        dist = (distances.LpDistance(normalize_embeddings=False) if self.distance == "euclidean"
                else distances.CosineSimilarity())
        loss = losses.TripletMarginLoss(margin=self.margin, distance=dist, reducer=reducers.MeanReducer())
        if miner == "batch-hard":
            return loss, miners.BatchHardMiner(distance=dist)
        if miner == "semi-hard":
            return loss, miners.TripletMarginMiner(margin=self.margin, type_of_triplets="semihard", distance=dist)
        return loss, None

    def __call__(self, out: torch.Tensor, y: torch.Tensor, mined: bool = True):
        out = out.float()
        n, b = out.shape[0], y.shape[0]
        if n == 2 * b and b > 0 and self.loss == "contrastive":
            loss = contrastive_loss(self.dist(out[:b], out[b:]), y, self.margin, self.form)
        elif n == 3 * b and b > 0 and self.loss == "triplet":
            loss = self.triplet(out[:b], out[b:2 * b], out[2 * b:])
        elif n == b:
            loss = self.labelled_loss(out, y, mined)
        else:
            raise ValueError(f"batch of {n} embeddings and {b} labels: a {self.loss} objective takes "
                             f"{'2' if self.loss == 'contrastive' else '3'} embeddings per label, or 1 (labelled images)")
        return loss, {"loss": loss.detach()}

    def labelled_loss(self, emb: torch.Tensor, labels: torch.Tensor, mined: bool = True) -> torch.Tensor:
        """Loss over a labelled set: contrastive over all its pairs; triplet over all (or mined) triplets."""
        if self.loss == "contrastive":
            i, j = torch.triu_indices(len(emb), len(emb), 1, device=emb.device)
            d = self.dist(emb[i], emb[j])
            return contrastive_loss(d, (labels[i] == labels[j]).long(), self.margin, self.form)
        tuples = self.pml_miner(emb, labels) if mined and self.pml_miner is not None else None
        return self.pml_loss(emb, labels, tuples)

    def make_metrics(self, train: bool = False, sync: bool = True) -> nn.Module:
        """Training: the mean loss; evaluation: verification over all pairs (VerificationMetrics)."""
        return MeanParts() if train else VerificationMetrics(self)


class VerificationMetrics(nn.Module):
    """Evaluation: embeddings of a labelled set, then over ALL its pairs the verification AUC and EER,
    and the loss of the whole set (one number, independent of batching)."""

    def __init__(self, objective: SiameseObjective):
        super().__init__()
        self.objective = objective
        self.reset()

    def reset(self) -> None:
        self.emb, self.lab = [], []

    def update(self, out, y, parts=None) -> None:
        if len(out) != len(y):
            raise ValueError("validation batches must be labelled images (one embedding per label)")
        self.emb.append(out.detach().float().cpu())
        self.lab.append(y.detach().cpu())

    def compute(self) -> dict[str, dict[str, float]]:
        if not self.emb:
            return {"average": {}}
        emb, lab = torch.cat(self.emb), torch.cat(self.lab)
        loss = float(self.objective.labelled_loss(emb, lab, mined=False))
        d, same = pair_distances(emb, lab, self.objective.distance)
        v = verification_metrics(d, same)
        return {"average": {"loss": loss, "auc": v["auc"], "eer": v["eer"]}}


# --------------------------------------------------------------------------- verification / retrieval math


def pair_distances(emb, labels, distance: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Distances and same-person flags of every unordered pair i < j of a labelled set."""
    e = torch.as_tensor(np.asarray(emb) if not isinstance(emb, torch.Tensor) else emb).float()
    lab = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    i, j = torch.triu_indices(len(e), len(e), 1)
    d = DISTANCES[distance](e[i], e[j])
    return d.numpy().astype(np.float64), (lab[i] == lab[j]).numpy().astype(np.int64)


def verification_metrics(d: np.ndarray, same: np.ndarray) -> dict[str, Any]:
    """ROC of the score -distance (torchmetrics), AUC, and the equal error rate with its distance threshold."""
    from torchmetrics.functional.classification import binary_auroc, binary_roc
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same, dtype=np.int64)
    if same.min(initial=1) == same.max(initial=0):
        raise ValueError("verification needs same-person and different-person pairs")
    s, t = torch.from_numpy(-d), torch.from_numpy(same)
    fpr, tpr, thr = binary_roc(s, t, thresholds=None)
    auc = float(binary_auroc(s, t, thresholds=None))
    fpr, tpr, thr = fpr.numpy(), tpr.numpy(), -thr.numpy()
    fnr = 1 - tpr
    k = int(np.argmin(np.abs(fnr - fpr)))
    # EER: where FNR and FPR cross, interpolated between the two ROC points around the crossing
    diff = fnr - fpr
    eer = float((fpr[k] + fnr[k]) / 2)
    for a in range(len(diff) - 1):
        if diff[a] >= 0 >= diff[a + 1]:
            w = diff[a] / (diff[a] - diff[a + 1]) if diff[a] != diff[a + 1] else 0.0
            eer = float(fpr[a] + w * (fpr[a + 1] - fpr[a]))
            break
    return {"auc": auc, "eer": eer, "eer_threshold": float(thr[k]), "fpr": fpr, "tpr": tpr, "thresholds": thr}


def choose_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (same person when d <= t) with the highest balanced accuracy on these pairs:
    chosen on VALIDATION pairs, then applied unchanged to test."""
    d, same = np.asarray(d, dtype=np.float64), np.asarray(same).astype(bool)
    cand = np.unique(d)
    order = np.argsort(d)
    ds, ss = d[order], same[order]
    tp = np.cumsum(ss)  # same-person pairs with d <= ds[k]
    fp = np.cumsum(~ss)
    last = np.searchsorted(ds, cand, side="right") - 1
    tpr = tp[last] / max(ss.sum(), 1)
    tnr = 1 - fp[last] / max((~ss).sum(), 1)
    k = int(np.argmax(tpr + tnr))
    nxt = cand[k + 1] if k + 1 < len(cand) else cand[k]
    return float((cand[k] + nxt) / 2)  # halfway to the next distance: robust to ties and small shifts


def accuracy_at(d: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
    pred = np.asarray(d) <= threshold
    s = np.asarray(same).astype(bool)
    tpr = float((pred & s).sum() / max(s.sum(), 1))
    tnr = float((~pred & ~s).sum() / max((~s).sum(), 1))
    return {"accuracy": float((pred == s).mean()), "balanced_accuracy": (tpr + tnr) / 2, "tpr": tpr, "tnr": tnr}


def retrieval_metrics(emb: np.ndarray, labels: np.ndarray, distance: str = "euclidean") -> dict[str, float]:
    """precision@1 and MAP@R, every image querying all the others (pytorch-metric-learning's
    AccuracyCalculator with a plain distance kNN, no faiss)."""
    from pytorch_metric_learning import distances
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN
    dist = distances.LpDistance(normalize_embeddings=False) if distance == "euclidean" else distances.CosineSimilarity()
    calc = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                              knn_func=CustomKNN(dist), k="max_bin_count")
    e = torch.as_tensor(np.asarray(emb)).float()
    y = torch.as_tensor(np.asarray(labels))
    r = calc.get_accuracy(e, y, e, y, ref_includes_query=True)
    return {"precision_at_1": float(r["precision_at_1"]), "map_at_r": float(r["mean_average_precision_at_r"])}


def nearest(query: torch.Tensor, gallery: torch.Tensor, k: int, distance: str = "euclidean",
            exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of the k nearest gallery rows of each query row, closest first."""
    d = torch.cdist(query, gallery) if distance == "euclidean" else 1 - nn.functional.normalize(query, dim=1) @ nn.functional.normalize(gallery, dim=1).T
    if exclude_self:
        d.fill_diagonal_(float("inf"))
    k = min(k, gallery.shape[0] - int(exclude_self))
    v, i = d.topk(k, dim=1, largest=False)
    return i.numpy(), v.numpy()


# --------------------------------------------------------------------------- model


def build_model(cfg: SiameseRunConfig, pretrained: bool | None = None) -> EmbeddingNet:
    mc = cfg.model
    return EmbeddingNet(mc.backbone, mc.embedding_dim, pretrained=mc.pretrained if pretrained is None else pretrained,
                        relu=mc.relu, normalize=mc.normalize, image_size=tuple(cfg.data.image_size),
                        freeze_bn=mc.freeze_bn)


def load_model(path: str | Path, device: str = "cpu") -> tuple[EmbeddingNet, dict, SiameseRunConfig]:
    """A Siamese checkpoint's embedding network (rebuilt from its own config) with its metadata."""
    path = Path(path)
    weights, meta = ckpt.load_weights(path)
    if meta.get("lab") != "siamese":
        raise ckpt.CheckpointError(f"{path} is a {meta.get('lab')!r} checkpoint, not a Siamese one")
    cfg = SiameseRunConfig.model_validate(meta["config"])
    model = build_model(cfg, pretrained=False)
    ckpt.load_into(model, weights, path)
    return model.to(device).eval(), meta, cfg


@torch.no_grad()
def embed(model: nn.Module, images, mean, std, batch_size: int = 128) -> torch.Tensor:
    """Embeddings (N, D) of uint8 images (N, 3, H, W)."""
    model.eval()
    norm = BatchTransform(mean, std, augment=False).eval()
    out = []
    for i in range(0, len(images), batch_size):
        out.append(model(norm(torch.from_numpy(np.array(images[i:i + batch_size])))).float())
    return torch.cat(out) if out else torch.zeros(0, getattr(model, "embedding_dim", 1))


def _norm_of(model: EmbeddingNet) -> tuple[list[float], list[float]]:
    dc = model.data_config
    return list(dc.get("mean", (0.5, 0.5, 0.5))), list(dc.get("std", (0.5, 0.5, 0.5)))


# --------------------------------------------------------------------------- train


def train(cfg: SiameseRunConfig, resume: str | Path | None = None, progress: bool = True, report: bool = True,
          data: FaceData | None = None, run_dir: str | Path | None = None) -> Path:
    """Train one embedding network; returns the run folder (checkpoints, history.csv, metrics.json, report.html)."""
    console = _console()
    cfg, fabric, run_dir = open_run(cfg, resume, run_dir)
    with fabric.rank_zero_first():
        data = data or load_data(cfg, progress=progress and fabric.is_global_zero)
    tc = cfg.train.filled()
    seed_all(tc.seed)
    model = build_model(cfg)
    mean, std = _norm_of(model)
    objective = SiameseObjective.from_config(cfg)
    transform = BatchTransform(mean, std, augment=tc.augment)
    meta = {"lab": "siamese", "config": cfg.model_dump(mode="json"), "mean": mean, "std": std,
            "people": data.people, "split_people": {k: [data.people[p] for p in v] for k, v in data.split.people.items()},
            "image_size": list(cfg.data.image_size), "distance": objective.distance}
    if fabric.is_global_zero:
        sz = data.split.sizes()
        console.print(f"siamese {cfg.model.backbone} -> {cfg.model.embedding_dim}-d; loss {objective.describe()}; "
                      f"{tc.optimizer} lr {tc.lr:g} {tc.scheduler} (step {tc.step_size}, gamma {tc.gamma:g}), "
                      f"{tc.epochs} epochs, batch {tc.batch_size}; people train {sz['train']['people']} / "
                      f"val {sz['val']['people']} / test {sz['test']['people']}"
                      + (f"; excluded {data.excluded}" if data.excluded else ""))
    x = torch.from_numpy(np.array(data.images))  # writable, in memory
    loader = train_loader(cfg, data, x)
    val_loader = batch_loader(x, torch.from_numpy(data.labels), data.split.val, tc.eval_batch_size, shuffle=False)
    trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress, console=console)
    result = trainer.fit(model, objective, loader, val_loader, transform, resume=bool(resume))
    if fabric.is_global_zero:
        console.print(f"trained {result.steps} steps in {result.seconds:.0f} s; best epoch {result.best_epoch} "
                      f"(by {tc.monitor})")
        if report:
            evaluate_run(run_dir, data, history=result.history, console=console)
    fabric.barrier()
    return run_dir


# --------------------------------------------------------------------------- evaluate


def _split_embeddings(model, data: FaceData, mean, std, split: str):
    idx = getattr(data.split, split)
    return embed(model, data.images[idx], mean, std), data.labels[idx], idx


def evaluate_run(run_dir: Path, data: FaceData | None = None, history: list[dict] | None = None,
                 path: Path | None = None, console=None, seed: int = 0, plots_on: bool = True) -> dict:
    """Verification (threshold from val pairs, applied to test pairs), retrieval and plots of a checkpoint
    (default: the run's best). Writes metrics.json, verification.json (threshold and calibration, used by
    `verify`) and report.html into the run folder."""
    run_dir = Path(run_dir)
    path = Path(path or run_dir / "checkpoints" / "best.safetensors")
    model, meta, cfg = load_model(path)
    data = data or load_data(cfg, progress=False)
    history = history if history is not None else meta.get("history", [])
    return evaluate_model(model, meta, cfg, run_dir, data, history, str(path), console, seed, plots_on)


def evaluate_model(model: nn.Module, meta: dict, cfg: SiameseRunConfig, run_dir: Path, data: FaceData,
                   history: list[dict] | None = None, source: str = "", console=None, seed: int = 0,
                   plots_on: bool = True, loss_name: str | None = None) -> dict:
    """evaluate_run for a model in memory (`meta` gives mean, std and distance)."""
    console = console or _console()
    run_dir.mkdir(parents=True, exist_ok=True)
    mean, std, distance = meta["mean"], meta["std"], meta.get("distance", "euclidean")
    t0 = time.time()
    ev, lv, _ = _split_embeddings(model, data, mean, std, "val")
    et, lt, it = _split_embeddings(model, data, mean, std, "test")
    dv, sv = pair_distances(ev, lv, distance)
    dt_, st = pair_distances(et, lt, distance)
    threshold = choose_threshold(dv, sv)
    val_v = verification_metrics(dv, sv)
    test_v = verification_metrics(dt_, st)
    at = accuracy_at(dt_, st, threshold)
    retr = retrieval_metrics(et.numpy(), lt, distance)
    calib = _calibrate(dv, sv)
    out = {"loss": loss_name or SiameseObjective.from_config(cfg).describe(), "checkpoint": source,
           "best_epoch": meta.get("epoch"),
           "epochs": len(history or []), "test_people": int(len(np.unique(lt))), "test_images": int(len(lt)),
           "test_pairs": {"same": int(st.sum()), "different": int((1 - st).sum())},
           "auc": test_v["auc"], "eer": test_v["eer"], "threshold": threshold, "threshold_from": "validation pairs",
           "accuracy": at["accuracy"], "balanced_accuracy": at["balanced_accuracy"], "tpr": at["tpr"], "tnr": at["tnr"],
           "precision_at_1": retr["precision_at_1"], "map_at_r": retr["map_at_r"],
           "val_auc": val_v["auc"], "val_eer": val_v["eer"],
           "train_seconds": sum(float(h.get("train_seconds", 0)) for h in history or []),
           "split": data.split.sizes(), "excluded": data.excluded, "hardware": hardware(),
           "eval_seconds": round(time.time() - t0, 2)}
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    (run_dir / "verification.json").write_text(json.dumps(
        {"threshold": threshold, "distance": distance, "calibration": calib, "checkpoint": source}, indent=2))
    _print_summary(console, out)
    if plots_on:
        _write_plots(run_dir, data, et, lt, it, dt_, st, test_v, threshold, seed, distance)
        write_run_report(run_dir, cfg, out, history)
    return out


def _calibrate(d: np.ndarray, same: np.ndarray) -> dict[str, float]:
    """P(same | distance) as a logistic function of the distance, fitted on validation pairs
    (class-balanced, so the 50% point sits near the balanced-accuracy threshold)."""
    from sklearn.linear_model import LogisticRegression
    lr = LogisticRegression(class_weight="balanced").fit(np.asarray(d).reshape(-1, 1), np.asarray(same))
    return {"coef": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}


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
    plots.verification_roc({"test": test_v}, pdir / "roc.png")
    plots.distance_distributions({"test pairs": (d[same == 1], d[same == 0])}, pdir / "distances.png", threshold)
    q = _queries(lt, 5, seed)
    nb, nd = nearest(et[q], et, 11, distance)  # the query itself comes first (distance 0): dropped
    rows, marks, dists = [], [], []
    for r, qi in enumerate(q):
        keep = [(j, v) for j, v in zip(nb[r], nd[r]) if j != qi][:10]
        rows.append(data.images[it[[j for j, _ in keep]]])
        marks.append([lt[j] == lt[qi] for j, _ in keep])
        dists.append([v for _, v in keep])
    plots.neighbour_grid(data.images[it[q]], rows, marks, pdir / "neighbours.png", dists,
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
    sections = [
        Section("Verification and retrieval on the test people", f"Loss: {m['loss']}. Threshold chosen on validation "
                "pairs (best balanced accuracy), applied unchanged to all test pairs.", [table]),
        Section("Split by person", "", [split]),
        Section("Plots", "", [], [p for p in (pdir / "roc.png", pdir / "distances.png", pdir / "neighbours.png",
                                              pdir / "tsne.png", pdir / "curves.png") if p.is_file()]),
        Section("Configuration", "", [Table(["field", "value"], flat_config(cfg.model_dump(mode="json")))]),
    ]
    return write_report(run_dir, "Siamese lab: face verification", sections, {"hardware": m["hardware"]})


def evaluate(checkpoint: str | Path, out: str | Path | None = None, root: str | None = None,
             progress: bool = True) -> dict:
    """Evaluate a checkpoint on its own person split (or another folder of people with `root`)."""
    checkpoint = Path(checkpoint)
    _, meta, cfg = load_model(checkpoint)
    if root:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"root": root})})
    data = load_data(cfg, progress=progress)
    run_dir = Path(out) if out else checkpoint.parent.parent
    run_dir.mkdir(parents=True, exist_ok=True)
    return evaluate_run(run_dir, data, path=checkpoint)


def evaluate_pretrained(cfg: SiameseRunConfig, out: str | Path | None = None, progress: bool = True,
                        data: FaceData | None = None) -> dict:
    """The starting point: the backbone's pretrained pooled features, L2-normalised, without any
    training, evaluated exactly like a trained model (threshold from validation, test people)."""
    data = data or load_data(cfg, progress=progress)
    model = build_model(cfg)
    model.proj = nn.Identity()
    model.normalize, model.relu = True, False
    mean, std = _norm_of(model)
    out = Path(out) if out else new_run_dir(cfg.out_dir, f"{cfg.name}-pretrained")
    meta = {"mean": mean, "std": std, "distance": "euclidean"}
    return evaluate_model(model.eval(), meta, cfg, out, data, [], f"{cfg.model.backbone} pretrained, untrained",
                          loss_name=f"none: {cfg.model.backbone} ImageNet features, no training")


# --------------------------------------------------------------------------- verify / gallery


def _resolve(run_or_ckpt: str | Path) -> tuple[Path, Path]:
    """(checkpoint, run folder) from a run folder or a checkpoint file."""
    p = Path(run_or_ckpt)
    if p.is_dir():
        c = p / "checkpoints" / "best.safetensors"
        if not c.is_file():
            raise FileNotFoundError(f"{p}: no checkpoints/best.safetensors (is it a vislab run folder?)")
        return c, p
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such run folder or checkpoint")
    return p, p.parent.parent


def _read_face(path: str | Path, size) -> np.ndarray:
    try:
        return load_image(path, tuple(size)).transpose(2, 0, 1)
    except ImageError as e:
        raise DataError(str(e)) from None


def verify(run_or_ckpt: str | Path, img1: str | Path, img2: str | Path, threshold: float | None = None) -> dict:
    """Distance of two face images, the validation threshold, same/different and its confidence
    (P(same | distance) from the logistic calibration on validation pairs, or its complement)."""
    path, run_dir = _resolve(run_or_ckpt)
    model, meta, _ = load_model(path)
    ver = run_dir / "verification.json"
    vinfo = json.loads(ver.read_text()) if ver.is_file() else {}
    if threshold is None:
        if "threshold" not in vinfo:
            raise FileNotFoundError(f"{ver} is missing (run `vislab siamese evaluate` first) and no --threshold given")
        threshold = float(vinfo["threshold"])
    a, b = (_read_face(p, meta["image_size"]) for p in (img1, img2))
    e = embed(model, np.stack([a, b]), meta["mean"], meta["std"])
    d = float(DISTANCES[meta.get("distance", "euclidean")](e[:1], e[1:])[0])
    same = d <= threshold
    cal = vinfo.get("calibration")
    p_same = float(1 / (1 + np.exp(-(cal["coef"] * d + cal["intercept"])))) if cal else None
    conf = None if p_same is None else (p_same if same else 1 - p_same)
    return {"distance": d, "threshold": threshold, "same": bool(same), "p_same": p_same, "confidence": conf}


def gallery(run_or_ckpt: str | Path, query: str | Path, folder: str | Path, top: int = 10,
            out: str | Path | None = None) -> dict:
    """The `top` gallery images nearest to a query image; `folder` holds images, directly or in person
    subfolders (then each match names its person). Writes a PNG of the query and its matches with `out`."""
    path, _ = _resolve(run_or_ckpt)
    model, meta, _ = load_model(path)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: gallery folder does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if len(files) < top:
        raise DataError(f"{folder}: the gallery holds {len(files)} images, fewer than --top {top}")
    q = _read_face(query, meta["image_size"])
    imgs, status, _ = decode_images(files, tuple(meta["image_size"]), progress=False)  # cached: decoded once
    keep = np.flatnonzero(status == DECODED)
    ok, bad = [files[i] for i in keep], len(files) - len(keep)
    if len(ok) < top:
        raise DataError(f"{folder}: {len(ok)} readable images ({bad} unreadable), fewer than --top {top}")
    g = np.asarray(imgs[keep])
    eg = embed(model, g, meta["mean"], meta["std"])
    eq = embed(model, q[None], meta["mean"], meta["std"])
    idx, dist = nearest(eq, eg, top, meta.get("distance", "euclidean"))
    matches = [{"rank": r + 1, "file": str(ok[j]), "person": ok[j].parent.name if ok[j].parent != folder else None,
                "distance": float(v)} for r, (j, v) in enumerate(zip(idx[0], dist[0]))]
    if out:
        qp = Path(query).parent.name
        plots.neighbour_grid(q[None], [g[idx[0]]], [[m["person"] == qp for m in matches]], out, [dist[0]],
                             title=f"{top} nearest gallery images of {Path(query).name}")
    return {"query": str(query), "gallery_images": len(ok), "unreadable": bad, "matches": matches}


# --------------------------------------------------------------------------- margin study


def compare_margins(cfg: SiameseRunConfig, margins=(1.0, 2.0), progress: bool = True) -> Path:
    """Train the same configuration at each margin; one report with AUC/EER per margin, the test
    distance distributions side by side and the ROC curves overlaid."""
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-margins")
    data = load_data(cfg, progress=progress)
    results, dists, rocs = {}, {}, {}
    for m in margins:
        c = cfg.model_copy(update={"name": f"margin-{m:g}", "out_dir": str(out),
                                   "loss": cfg.loss.model_copy(update={"margin": float(m)})})
        run = train(c, progress=progress, data=data)
        r = json.loads((run / "metrics.json").read_text())
        model, meta, _ = load_model(run / "checkpoints" / "best.safetensors")
        et, lt, _ = _split_embeddings(model, data, meta["mean"], meta["std"], "test")
        d, s = pair_distances(et, lt, meta.get("distance", "euclidean"))
        name = f"margin {m:g}"
        results[name], dists[name] = r, (d[s == 1], d[s == 0])
        v = verification_metrics(d, s)
        rocs[name] = v
        r["same_mean"], r["different_mean"] = float(d[s == 1].mean()), float(d[s == 0].mean())
    plots.distance_distributions(dists, out / "plots" / "distances.png", title="Test pair distances by margin")
    plots.verification_roc(rocs, out / "plots" / "roc.png")
    table = Table(["margin", "AUC", "EER %", "acc @ val thr", "P@1", "MAP@R", "mean d same", "mean d different"],
                  [[k, r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"], r["map_at_r"], r["same_mean"],
                    r["different_mean"]] for k, r in results.items()])
    (out / "margins.json").write_text(json.dumps(results, indent=2))
    write_report(out, "Siamese lab: the effect of the margin", [
        Section("Margins", SiameseObjective.from_config(cfg).describe(), [table],
                [out / "plots" / "distances.png", out / "plots" / "roc.png"])], {"hardware": hardware()})
    return out


# --------------------------------------------------------------------------- hyperparameter search


def _loss_choice(choice: str) -> dict:
    """'contrastive:hadsell' -> {loss, form}; 'triplet:semi-hard' -> {loss, miner}."""
    kind, _, opt = choice.partition(":")
    if kind == "contrastive":
        return {"loss": "contrastive", "form": opt or "hadsell"}
    if kind == "triplet":
        return {"loss": "triplet", "miner": opt or "none"}
    raise ValueError(f"search.loss entry {choice!r}: use contrastive:<original|hadsell> or triplet:<none|batch-hard|semi-hard>")


def suggest(trial, cfg: SiameseRunConfig) -> dict[str, Any]:
    """One point of the search space (search.* ranges and choices)."""
    sc = cfg.search
    return {"lr": trial.suggest_float("lr", *sc.lr, log=True),
            "margin": trial.suggest_float("margin", *sc.margin),
            "step_size": trial.suggest_categorical("step_size", list(sc.step_size)),
            "gamma": trial.suggest_float("gamma", *sc.gamma),
            "epochs": trial.suggest_categorical("epochs", list(sc.epochs)),
            "embedding_dim": trial.suggest_categorical("embedding_dim", list(sc.embedding_dim)),
            "loss": trial.suggest_categorical("loss", list(sc.loss)),
            **({"backbone_lr_mult": trial.suggest_categorical("backbone_lr_mult", list(sc.backbone_lr_mult))}
               if len(sc.backbone_lr_mult) > 1 else {})}


def with_params(cfg: SiameseRunConfig, p: dict[str, Any], **top) -> SiameseRunConfig:
    """cfg with a search point applied (train.lr/step_size/gamma/epochs, model.embedding_dim, loss.*)."""
    raw = cfg.model_dump(mode="json")
    raw["train"].update({k: p[k] for k in ("lr", "step_size", "gamma", "epochs", "backbone_lr_mult") if k in p})
    fixed = cfg.search.backbone_lr_mult
    if "backbone_lr_mult" not in p and len(fixed) == 1:  # one value: every trial uses it
        raw["train"]["backbone_lr_mult"] = fixed[0]
    if "embedding_dim" in p:
        raw["model"]["embedding_dim"] = int(p["embedding_dim"])
    if "margin" in p:
        raw["loss"]["margin"] = float(p["margin"])
    if "loss" in p:
        raw["loss"].update(_loss_choice(p["loss"]))
    raw.update(top)
    return SiameseRunConfig.model_validate(raw)


def _best_row(history: list[dict], key: str) -> dict:
    mode_max = "loss" not in key
    rows = [h for h in history if np.isfinite(float(h.get(key, np.nan)))]
    if not rows:
        return {}
    return (max if mode_max else min)(rows, key=lambda h: float(h[key]))


def search(cfg: SiameseRunConfig, trials: int | None = None, sampler: str | None = None, storage: str | None = None,
           progress: bool = False, console=None) -> Path:
    """Optuna search; every trial is a full training run in <out_dir>/<name>-search/trials/. The study lives
    in an SQLite file there (or search.storage), so running the same command again resumes it: finished
    trials are kept, a trial killed mid-run is marked failed and its parameters are tried again.
    Writes trials.csv, best.json (best parameters) and report.html; with search.retrain the best
    parameters are trained once more into <name>-search/best/ (else the best trial's run is kept)."""
    import optuna
    from optuna.trial import TrialState
    console = console or _console()
    sc = cfg.search
    trials = sc.trials if trials is None else trials
    kind = sampler or sc.sampler
    out = Path(cfg.out_dir) / f"{cfg.name}-search"
    out.mkdir(parents=True, exist_ok=True)
    url = storage or sc.storage or f"sqlite:///{(out / 'optuna.db').resolve()}"
    direction = "maximize" if sc.objective == "val_auc" else "minimize"
    smp = (optuna.samplers.RandomSampler(seed=cfg.train.seed) if kind == "random"
           else optuna.samplers.TPESampler(seed=cfg.train.seed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=cfg.name, storage=url, load_if_exists=True, direction=direction, sampler=smp)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # killed mid-trial: run its point again
        study.tell(t.number, state=TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        console.print(f"trial {t.number} was interrupted; its parameters are queued again")
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if sc.splits:  # the first split is the one reported (best trial's run, per-loss table, retrain)
        cfg = on_split(cfg, sc.splits[0])
    data = load_data(cfg, progress=progress)
    console.print(f"search: {trials} trials ({done} done), {kind} sampler, objective {sc.objective}; storage {url}")

    seeds = list(sc.splits) or [cfg.data.seed]
    datas = {seeds[0]: data}

    def split_data(seed: int) -> FaceData:
        if seed not in datas:
            datas[seed] = load_data(on_split(cfg, seed), progress=False)
        return datas[seed]

    def objective(trial):
        p = suggest(trial, cfg)
        t0 = time.time()
        values, bests, runs = [], [], []
        for seed in seeds:  # one run per person split; the trial's value is their mean
            run = out / "trials" / f"trial-{trial.number:03d}" / (f"split-{seed}" if len(seeds) > 1 else "")
            c = with_params(cfg, p, name=run.name, out_dir=str(run.parent))
            c = on_split(c, seed)
            train(c, progress=progress, report=False, data=split_data(seed), run_dir=run)
            hist = ckpt.read_meta(run / "checkpoints" / "last.safetensors").get("history", [])
            best = _best_row(hist, sc.objective)
            values.append(float(best[sc.objective]))
            bests.append(best)
            runs.append(run)
        trial.set_user_attr("run", str(runs[0]))
        trial.set_user_attr("seconds", round(time.time() - t0, 1))
        for k in ("val_auc", "val_eer", "val_loss", "epoch"):
            if all(k in b for b in bests):
                trial.set_user_attr(k, float(np.mean([float(b[k]) for b in bests])))
        if len(seeds) > 1:
            trial.set_user_attr("per_split", [round(v, 5) for v in values])
        value = float(np.mean(values))
        console.print(f"trial {trial.number}: {p} -> {sc.objective} {value:.4f}"
                      + (f" (splits {seeds}: {[round(v, 4) for v in values]})" if len(seeds) > 1 else ""))
        return value

    from .engine import NonFiniteLoss
    study.optimize(objective, n_trials=max(trials - done, 0), catch=(NonFiniteLoss,))
    return write_search_report(study, cfg, out, data, progress, console)


def _trial_order(value: float | None, maximize: bool) -> tuple[bool, float]:
    """Sort key of a search trial: best value first, failed/pruned trials (no value) last; 0 is a value."""
    if value is None:
        return (True, 0.0)
    return (False, -value if maximize else value)


def write_search_report(study, cfg: SiameseRunConfig, out: Path, data: FaceData, progress: bool, console) -> Path:
    import csv
    from optuna.trial import TrialState
    rows = []
    for t in study.trials:
        rows.append({"trial": t.number, "state": t.state.name, "value": t.value, **t.params,
                     **{k: v for k, v in t.user_attrs.items() if k != "run"}})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise RuntimeError(f"no trial of the search in {out} completed")
    best = study.best_trial
    best_run = Path(best.user_attrs["run"])
    if cfg.search.retrain:
        c = with_params(cfg, best.params, name="best", out_dir=str(out))
        best_run = train(c, progress=progress, data=data, run_dir=out / "best")
    elif not (best_run / "metrics.json").is_file():
        evaluate_run(best_run, data, console=console)
    (out / "best.json").write_text(json.dumps({"trial": best.number, "value": best.value, "objective": cfg.search.objective,
                                               "params": best.params, "run": str(best_run),
                                               "config": with_params(cfg, best.params).model_dump(mode="json")}, indent=2))
    (out / "best.yaml").write_text(to_yaml(with_params(cfg, best.params).model_dump(mode="json")))
    cols = ["trial", "state", "value", "loss", "lr", "margin", "step_size", "gamma", "epochs", "embedding_dim",
            "val_eer", "seconds"]
    table = Table(cols, [[r.get(c, "") if r.get(c) is not None else "" for c in cols] for r in
                         sorted(rows, key=lambda r: _trial_order(r["value"], study.direction.name == "MAXIMIZE"))])
    test = json.loads((best_run / "metrics.json").read_text())
    per_loss = best_per_loss(study, data, console)
    (out / "best_per_loss.json").write_text(json.dumps(per_loss, indent=2))
    loss_table = Table(["loss", "trial", "val AUC", "test AUC", "test EER %", "acc @ val threshold", "precision@1",
                        "MAP@R", "lr", "margin", "epochs", "embedding_dim", "step_size", "gamma"],
                       [[k, r["trial"], r["val_auc"], r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"],
                         r["map_at_r"], r["params"]["lr"], r["params"]["margin"], r["params"]["epochs"],
                         r["params"]["embedding_dim"], r["params"]["step_size"], r["params"]["gamma"]]
                        for k, r in per_loss.items()])
    write_report(out, "Siamese lab: hyperparameter search", [
        Section("Trials", f"{len(complete)} completed of {len(study.trials)}; objective {cfg.search.objective} "
                f"({study.direction.name.lower()}); best trial {best.number}: {best.params}", [table]),
        Section("Best parameters on the test people", f"run {best_run}", [Table(
            ["AUC", "EER %", "accuracy @ val threshold", "precision@1", "MAP@R"],
            [[test["auc"], 100 * test["eer"], test["accuracy"], test["precision_at_1"], test["map_at_r"]]])]),
        Section("Best trial of each loss, on the test people", "Chosen by the search objective on validation; "
                "test numbers are reported, never used to choose.", [loss_table]),
    ], {"hardware": hardware()})
    console.print(f"best trial {best.number}: {cfg.search.objective} {best.value:.4f} {best.params}\n"
                  f"test: AUC {test['auc']:.4f}, EER {100 * test['eer']:.2f}%; search folder {out}")
    return out


def best_per_loss(study, data: FaceData, console=None) -> dict[str, dict]:
    """For each loss tried, its best completed trial (by the search objective) evaluated on the test people."""
    from optuna.trial import TrialState
    sign = 1 if study.direction.name == "MAXIMIZE" else -1
    best: dict[str, Any] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        k = t.params.get("loss", "?")
        if k not in best or sign * t.value > sign * best[k].value:
            best[k] = t
    out = {}
    for k, t in sorted(best.items()):
        run = Path(t.user_attrs["run"])
        m = (json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").is_file()
             else evaluate_run(run, data, console=console))
        out[k] = {"trial": t.number, "value": t.value, "params": t.params, "run": str(run),
                  **{x: m[x] for x in ("auc", "eer", "accuracy", "balanced_accuracy", "precision_at_1", "map_at_r",
                                       "val_auc", "val_eer", "threshold", "train_seconds")}}
    return out


# --------------------------------------------------------------------------- repeated person splits


def repeat_splits(cfg: SiameseRunConfig, seeds=(42, 1, 2, 3, 4), baseline: bool = True, progress: bool = False,
                  console=None) -> Path:
    """Train and evaluate `cfg` on several person splits (data.seed), with the untrained pretrained
    features on the same splits beside it. A handful of test people makes one split's EER coarse
    (4 people: 180 same-person pairs, so one pair is 0.56 points of EER); the mean and spread over
    splits say more. Writes splits.json, splits.csv and report.html."""
    console = console or _console()
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-splits")
    keys = ("auc", "eer", "accuracy", "balanced_accuracy", "precision_at_1", "map_at_r", "val_auc")
    rows: dict[str, list[dict]] = {"trained": [], "pretrained, no training": []}
    for seed in seeds:
        c = on_split(cfg, int(seed)).model_copy(update={"name": f"seed-{seed}", "out_dir": str(out)})
        data = load_data(c, progress=progress)
        run = train(c, progress=progress, data=data)
        m = json.loads((run / "metrics.json").read_text())
        rows["trained"].append({"seed": seed, "test_people": m["split"]["test"]["people"], **{k: m[k] for k in keys},
                                "train_seconds": m["train_seconds"]})
        if baseline:
            b = evaluate_pretrained(c, out / f"seed-{seed}-pretrained", progress=False, data=data)
            rows["pretrained, no training"].append({"seed": seed, **{k: b[k] for k in keys}})
    summary = {name: {k: {"mean": float(np.mean([r[k] for r in rs])), "std": float(np.std([r[k] for r in rs], ddof=1))
                          if len(rs) > 1 else 0.0} for k in keys} for name, rs in rows.items() if rs}
    (out / "splits.json").write_text(json.dumps({"seeds": list(seeds), "loss": SiameseObjective.from_config(cfg).describe(),
                                                 "runs": rows, "summary": summary}, indent=2))
    import csv
    with open(out / "splits.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "seed", *keys])
        for name, rs in rows.items():
            for r in rs:
                w.writerow([name, r["seed"], *(r[k] for k in keys)])
    fmt = lambda s, k, scale=1.0: f"{scale * s[k]['mean']:.4f} ± {scale * s[k]['std']:.4f}"  # noqa: E731
    table = Table(["model", "test AUC", "test EER %", "acc @ val threshold", "precision@1", "MAP@R"],
                  [[name, fmt(s, "auc"), fmt(s, "eer", 100), fmt(s, "accuracy"), fmt(s, "precision_at_1"),
                    fmt(s, "map_at_r")] for name, s in summary.items()])
    per = Table(["model", "split seed", "test AUC", "test EER %", "acc @ val threshold", "precision@1", "MAP@R"],
                [[name, r["seed"], r["auc"], 100 * r["eer"], r["accuracy"], r["precision_at_1"], r["map_at_r"]]
                 for name, rs in rows.items() for r in rs])
    write_report(out, "Siamese lab: repeated person splits", [
        Section("Mean ± standard deviation over person splits", f"seeds {list(seeds)}; "
                f"{SiameseObjective.from_config(cfg).describe()}", [table]),
        Section("Every split", "", [per])], {"hardware": hardware()})
    for name, s in summary.items():
        console.print(f"{name}: test AUC {fmt(s, 'auc')}, EER % {fmt(s, 'eer', 100)} over {len(seeds)} splits")
    return out
