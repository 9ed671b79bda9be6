"""The neighbour vote of a fashion checkpoint (`knn.k`, `vislab fashion knn`): the labelled images' pooled
features and labels are stored in the checkpoint, and each prediction blends the heads' probabilities with the
vote of the k most similar of them (`vislab.core.knn`), with a weight per task chosen on the validation split.

Honest by construction: the weights are chosen on the validation images with only the training images voting,
and the review thresholds are chosen the same way; `knn.bank: train+val` then adds the validation images to the
bank for prediction (the test split is never in it). The bank rows keep their split, so a later scoring of the
validation split (`calibrate`, `evaluate --split val`) leaves the validation images out of the vote again."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.core.knn import NeighbourVote, blend, choose_weights
from vislab.labs.fashion.features import pooled_features

PREFIX = "knn."
SPLIT_CODES = {"train": 0, "val": 1}


def bank_splits(scored: str) -> tuple[str, ...]:
    """The bank splits that vote when `scored` is scored: every stored split but that one (a validation image in a
    train+val bank would vote for its own label)."""
    return tuple(s for s in SPLIT_CODES if s != scored)


def vote_of(path: str | Path, meta: dict | None = None, splits: tuple[str, ...] = ("train", "val"),
            tensors: dict | None = None) -> tuple[NeighbourVote, dict[str, float]] | None:
    """(the vote, its blend weights) stored in a checkpoint, or None; `splits`: which bank rows vote."""
    meta = meta or ckpt.read_meta(path)
    info = meta.get("knn")
    if not info:
        return None
    if tensors is None:
        from safetensors import safe_open
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys() if k.startswith(PREFIX)}
    keep = torch.isin(tensors[PREFIX + "split"].long(), torch.tensor([SPLIT_CODES[s] for s in splits]))
    vote = NeighbourVote(tensors[PREFIX + "features"][keep].float(), tensors[PREFIX + "targets"][keep].long(),
                         meta["tasks"], info["k"], info["temperature"])
    return vote, info["weights"]


class VotingNet(nn.Module):
    """A MultiTaskNet whose outputs are the log of the blended probabilities (the heads' and the vote's), so the
    engine's metrics and losses read them as logits; `tta`: features averaged over the photo and its mirror."""

    def __init__(self, net, vote: NeighbourVote, weights: dict[str, float], tta: bool):
        super().__init__()
        self.net, self.vote, self.weights, self.tta = net, vote, weights, tta

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.net.forward_features(x, tta=self.tta)
        probs = {t: v.float().softmax(-1) for t, v in self.net.forward_heads(f).items()}
        return {t: p.clamp_min(1e-12).log() for t, p in blend(probs, self.vote.probs(f), self.weights).items()}


def attach_vote(path: Path, prepared, k: int, temperature: float, tta: bool, batch_size: int = 32,
                console=None) -> tuple[dict, torch.Tensor, dict[str, np.ndarray]]:
    """Compute the training and validation images' features with the checkpoint at `path`, choose each task's
    blend weight on the validation split (the training images voting) and store the vote in the checkpoint
    (training images only; `widen_bank` adds the validation images). Returns the stored `knn` metadata, the
    validation images' features (for `widen_bank`) and their blended probabilities per task (for the review
    thresholds), in sorted row order, so that neither needs a second pass over the images."""
    from vislab.labs.fashion.lab import load_model
    net, meta = load_model(path)
    tr, va = np.sort(prepared.splits["train"]), np.sort(prepared.splits["val"])
    if not 1 <= k <= len(tr):
        raise ValueError(f"knn.k must lie between 1 and the {len(tr)} training images, got {k}")
    feats = pooled_features(net, prepared.images, np.concatenate([tr, va]), tta, batch_size)
    f_tr, f_va = feats[:len(tr)], feats[len(tr):]
    vote = NeighbourVote(f_tr, torch.from_numpy(prepared.targets[tr]), meta["tasks"], k, temperature)
    with torch.inference_mode():
        model = {t: v.softmax(-1) for t, v in net.forward_heads(f_va).items()}
    weights, scores = choose_weights(model, vote.probs(f_va), prepared.targets[va])
    info = {"k": k, "temperature": temperature, "tta": tta, "weights": weights, "bank": "train",
            "bank_size": int(len(tr)), "validation_accuracy": scores,
            "features": "pooled backbone features" + (" (mean over the photo and its mirror)" if tta else "")}
    _store(path, info, f_tr, prepared.targets[tr], np.zeros(len(tr), np.int8))
    stored, _ = vote_of(path, splits=("train",))  # the float16 bank, as evaluation and prediction will read it
    val_probs = {t: p.numpy() for t, p in blend(model, stored.probs(f_va), weights).items()}
    if console is not None:
        console.print("neighbour vote (k {}, temperature {:g}): blend weights chosen on the validation split: {}"
                      .format(k, temperature, ", ".join(
                          f"{t} {w:.2f} ({100 * scores[t]['model']:.2f} -> {100 * scores[t]['blend']:.2f})"
                          for t, w in weights.items())))
    return info, f_va, val_probs


def widen_bank(path: Path, prepared, f_va: torch.Tensor) -> dict:
    """Add the validation images (their features `f_va`, in sorted row order, from `attach_vote`) to the
    checkpoint's vote."""
    va = np.sort(prepared.splits["val"])
    weights, meta = ckpt.load_weights(path)
    info = {**meta["knn"], "bank": "train+val", "bank_size": int(meta["knn"]["bank_size"] + len(va))}
    feats = torch.cat([weights[PREFIX + "features"].float(), f_va])
    targets = np.concatenate([weights[PREFIX + "targets"].numpy(), prepared.targets[va]])
    split = np.concatenate([weights[PREFIX + "split"].numpy(), np.ones(len(va), np.int8)])
    _store(path, info, feats, targets, split)
    return info


def _store(path: Path, info: dict, feats: torch.Tensor, targets: np.ndarray, split: np.ndarray) -> None:
    ckpt.update_meta(path, {"knn": info}, drop_prefix=PREFIX, tensors={
        PREFIX + "features": feats.half().numpy(), PREFIX + "targets": np.asarray(targets, np.int16),
        PREFIX + "split": np.asarray(split, np.int8)})


def attach_fixed_vote(path: Path, prepared, source: dict, batch_size: int = 32) -> dict:
    """A refit's vote (`vislab.labs.fashion.refit`): the training and validation images' features from the
    checkpoint at `path`, voting with the k, temperature, flip TTA and blend weights of `source` (the source run's
    `knn` metadata, chosen on its validation split), which nothing here chooses again."""
    from vislab.labs.fashion.lab import load_model
    net, _ = load_model(path)
    tr, va = np.sort(prepared.splits["train"]), np.sort(prepared.splits["val"])
    feats = pooled_features(net, prepared.images, np.concatenate([tr, va]), bool(source["tta"]), batch_size)
    info = {**{k: source[k] for k in ("k", "temperature", "tta", "weights", "features")},
            "bank": "train+val", "bank_size": int(len(tr) + len(va)), "weights_chosen_by": "the refit source",
            "source_validation_accuracy": source.get("validation_accuracy")}
    split = np.concatenate([np.zeros(len(tr), np.int8), np.ones(len(va), np.int8)])
    _store(path, info, feats, prepared.targets[np.concatenate([tr, va])], split)
    return info
