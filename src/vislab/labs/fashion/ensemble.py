"""Several fashion checkpoints as one model: an ensemble file that `predict`, `tag`, `serve` and `search` take
wherever they take a checkpoint.

    vislab fashion ensemble runs/a runs/b --out shop.ensemble.json     # checks, scores validation, writes the file
    vislab fashion tag shop.ensemble.json photos/ --tta --out tags.csv

The ensemble's probabilities are the mean of its members' (each with its own neighbour vote). Photos are decoded
once, at the largest member's image size; a member trained at a smaller size gets the batch resized (antialiased
bilinear). Building the file scores the validation split through this same predictor (only the training images
vote), chooses the review thresholds on those probabilities and stores every member's SHA-256, so a member that
changes afterwards is refused instead of silently serving other answers. Member paths are stored relative to the
file, so a folder holding both moves as one.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from vislab.core import checkpoint as ckpt
from vislab.core.errors import CheckpointError, UsageError
from vislab.labs.fashion import review as rv
from vislab.labs.fashion.config import FashionRunConfig
from vislab.labs.fashion.ensemble_file import FORMAT, check_members, largest_size, meta_of, read, relative, sha256
from vislab.labs.fashion.knn import bank_splits
from vislab.labs.fashion.predict import Prediction, Predictor, predictions


class EnsemblePredictor:
    """The members' mean probabilities, with the interface of `Predictor` (predict, predict_batch, predict_arrays,
    embed_arrays, preprocess), so `predict`, `tag`, `serve` and `search` take it. `embed_arrays` gives the members'
    pooled features, each L2-normalised, side by side: the cosine similarity of two photos (similar-product
    search) is the mean of the members'."""

    def __init__(self, members: list[Predictor], meta: dict, thresholds: dict | None = None, top_k: int = 3,
                 default_threshold: float | None = 0.6):
        self.members, self.meta = members, meta
        self.encoders: dict[str, list[str]] = meta["encoders"]
        self.image_size = tuple(meta["image_size"])
        self.thresholds = rv.resolve(meta, thresholds, default_threshold)
        self.top_k = max(1, int(top_k))
        self.device = members[0].device
        self.precision = members[0].precision
        self.tta = members[0].tta

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", thresholds: dict | None = None, top_k: int = 3,
             default_threshold: float | None = 0.6, vote_splits: tuple[str, ...] | None = ("train", "val"),
             **kw) -> EnsemblePredictor:
        doc, files = read(path)
        members = [Predictor.load(f, device, vote_splits=vote_splits, **kw) for f in files]
        return cls(members, meta_of(doc), thresholds, top_k, default_threshold)

    @property
    def tasks(self) -> list[str]:
        return list(self.encoders)

    @property
    def predicts_in_workers(self) -> bool:
        return all(m.predicts_in_workers for m in self.members)

    preprocess = Predictor.preprocess
    predict_batch = Predictor.predict_batch
    predict = Predictor.predict

    @torch.inference_mode()
    def forward_arrays(self, x) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[dict[str, torch.Tensor]]]:
        """(the members' L2-normalised features side by side, the mean probabilities, each member's probabilities)
        of decoded images at the ensemble's image size."""
        x = torch.as_tensor(x)
        if x.ndim != 4 or tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"expected (N, 3, {self.image_size[0]}, {self.image_size[1]}) uint8, got {tuple(x.shape)}")
        feats, each = [], []
        for m in self.members:
            f, probs = m.forward_arrays(resize(x, m.image_size))
            feats.append(torch.nn.functional.normalize(f, dim=1))
            each.append(probs)
        mean = {t: sum(p[t] for p in each) / len(each) for t in self.encoders}
        return torch.cat(feats, 1), mean, each

    @torch.inference_mode()
    def predict_arrays(self, x, sources=None) -> list[Prediction]:
        return self.embed_arrays(x, sources)[1]

    @torch.inference_mode()
    def embed_arrays(self, x, sources=None) -> tuple[np.ndarray, list[Prediction]]:
        f, probs, _ = self.forward_arrays(x)
        return f.numpy(), predictions(probs, self.encoders, self.thresholds, self.top_k, sources)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A uint8 (N, 3, H, W) batch at another (h, w): antialiased bilinear, rounded back to uint8."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    y = torch.nn.functional.interpolate(x.float(), size=tuple(size), mode="bilinear", antialias=True,
                                        align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)


def score(predictor: EnsemblePredictor, images: np.ndarray, rows: np.ndarray, batch_size: int = 64
          ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """(mean probabilities, each member's) on `rows` of decoded images (N, 3, H, W) at the ensemble's size."""
    mean: dict[str, list] = {t: [] for t in predictor.encoders}
    each: list[dict[str, list]] = [{t: [] for t in predictor.encoders} for _ in predictor.members]
    for i in range(0, len(rows), batch_size):
        _, m, e = predictor.forward_arrays(np.asarray(images[rows[i:i + batch_size]]))
        for t in mean:
            mean[t].append(m[t].float().numpy())
            for acc, p in zip(each, e):
                acc[t].append(p[t].float().numpy())
    cat = lambda d: {t: np.concatenate(v) for t, v in d.items()}  # noqa: E731
    return cat(mean), [cat(d) for d in each]


def ensemble_metrics(probs: dict[str, np.ndarray], targets: np.ndarray, tasks: dict[str, int]) -> dict:
    """The metrics `evaluate_checkpoint` reports (fractions), of mean probabilities; "loss" is their negative
    log-likelihood."""
    from vislab.core.metrics import MultiTaskMetrics
    m = MultiTaskMetrics(tasks, auroc=False, sync=False)
    logp = {t: torch.from_numpy(p).clamp_min(1e-12).log() for t, p in probs.items()}
    y = torch.from_numpy(targets).long()
    m.update(logp, y, {t: torch.nn.functional.nll_loss(lp, y[:, j], ignore_index=-1)
                       for j, (t, lp) in enumerate(logp.items())})
    return m.compute()


def metrics_of(probs: dict[str, np.ndarray], targets: np.ndarray, encoders: dict[str, list[str]],
               intervals: bool = False) -> dict:
    """Accuracy and macro F1 per task and on average (in %), as `ensemble_metrics` scores them, with 95% bootstrap
    intervals (1,000 resamples) when asked."""
    from vislab.core.metrics import bootstrap_intervals
    scored = ensemble_metrics(probs, targets, {t: len(c) for t, c in encoders.items()})
    out = {t: {k: 100 * v[k] for k in ("accuracy", "f1")} for t, v in scored.items()}
    if intervals:
        ci = bootstrap_intervals({t: (targets[:, j], probs[t].argmax(1), len(encoders[t]))
                                  for j, t in enumerate(encoders)})
        for t, v in ci.items():
            out[t] |= {f"{k}_ci": [100 * a for a in v[k]] for k in ("accuracy", "f1")}
    return out


def build(paths: list[str | Path], out: str | Path, precision: float | None = None, tta: bool = True,
          test: bool = False, batch_size: int = 64, progress: bool = True, console=None,
          review_from: str | Path | None = None) -> dict:
    """Check the members, score the validation split through the ensemble (only the training images vote), choose
    the review thresholds on it and write the ensemble file; `test`: also score the test split once.
    `review_from`: the members are refits (`vislab fashion refit`) of that ensemble file's members, whose review
    thresholds they take over; their validation split is training data, so it is not scored."""
    from vislab.labs.fashion.data import prepare
    out = Path(out)
    if out.suffix.lower() != ".json":
        raise UsageError(f"--out {out}: an ensemble file ends in .json")
    members = check_members(paths, review_from)
    if review_from is not None and bool(read(review_from, verify=False)[0].get("tta")) != bool(tta):
        raise UsageError(f"--review-from {review_from} chose its thresholds {'with' if not tta else 'without'} flip "
                         f"TTA: build this file {'with --tta' if not tta else 'with --no-tta'} too")
    metas = [m for _, m in members]
    size = largest_size(metas)
    first = FashionRunConfig.model_validate(metas[0]["config"])
    precision = precision or first.review.precision
    prepared = prepare(first.data.model_copy(update={"image_size": size}), progress=progress)
    if prepared.encoders != metas[0]["encoders"]:
        raise CheckpointError(f"{members[0][0]}: its data now gives other classes than it was trained on")
    start = time.perf_counter()
    doc = {"format": FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "image_size": list(size),
           "encoders": metas[0]["encoders"], "tta": bool(tta), "versions": ckpt.versions(),
           "members": [{"path": relative(f, out.parent), "sha256": sha256(f), "backbone": m["backbone"],
                        "image_size": list(m["image_size"]), "vote": bool(m.get("knn"))} for f, m in members]}
    scores = {}
    if review_from is not None:
        source_doc, _ = read(review_from, verify=False)
        doc["review"] = {**source_doc["review"], "chosen_by": relative(Path(review_from), out.parent)}
        doc["review_from"] = {"path": relative(Path(review_from), out.parent), "sha256": sha256(Path(review_from))}
    splits = ("val",) if review_from is None else ()
    for split in (*splits, "test") if test else splits:
        rows = np.sort(prepared.splits[split])
        if not len(rows):
            raise UsageError(f"the members' data has no {split} split to score")
        predictor = EnsemblePredictor([Predictor.load(f, vote_splits=bank_splits(split), tta=tta)
                                       for f, _ in members], meta_of(doc))
        mean, each = score(predictor, prepared.images, rows, batch_size)
        targets = prepared.targets[rows]
        scores[split] = {"n": int(len(rows)), "ensemble": metrics_of(mean, targets, prepared.encoders, True),
                         "members": [metrics_of(p, targets, prepared.encoders) for p in each]}
        if split == "val":
            doc["review"] = rv.choose_thresholds(mean, targets, precision)
        if console is not None:
            avg = [s["average"]["accuracy"] for s in (scores[split]["ensemble"], *scores[split]["members"])]
            console.print(f"{split} ({len(rows)} images): average accuracy {avg[0]:.2f} for the ensemble, "
                          + ", ".join(f"{a:.2f}" for a in avg[1:]) + " for its members")
    doc["scores"] = scores
    doc["seconds"] = round(time.perf_counter() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(out)
    return doc

