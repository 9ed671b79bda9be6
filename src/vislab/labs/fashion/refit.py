"""Refit: the final model on the training + validation images (`refit.source`, `vislab fashion refit RUN`).

A run trained on the training split alone (the source) makes every choice that needs held-out images: its best
epoch, its neighbour vote's blend weights and its review thresholds, all chosen on the validation split. The refit
repeats the source's settings on both splits, stops at the source's best epoch of the same schedule and takes
those choices over, so 21% more labelled images train the network and vote, and nothing is chosen on images the
network has seen. The test split stays out of both runs.

    vislab fashion train -c fashion/quality --name q          # the source: chooses on validation
    vislab fashion refit runs/q                               # the final model; scored once on test
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vislab.core import checkpoint as ckpt
from vislab.core.errors import ConfigError, DataError

FREE_TRAIN_FIELDS = {"stop_epoch", "monitor", "monitor_mode", "eval_batch_size", "num_workers", "accelerator",
                     "devices", "strategy", "precision", "deterministic", "channels_last"}
"""Train fields a refit may set apart from its source: they do not change what the network learns from the data
(or, for the first three, are what the refit sets)."""
FREE_DATA_FIELDS = {"cache_dir", "workers"}


def source_of(cfg) -> tuple[Path, dict]:
    """The source checkpoint of `cfg.refit.source` and its metadata; one clear error for a source of another lab,
    task set, data, split or settings, or one that is itself a refit."""
    from vislab.labs.fashion.config import FashionRunConfig
    try:
        path = ckpt.resolve(cfg.refit.source)[0]
    except FileNotFoundError as e:
        raise ConfigError(f"refit.source: {e}") from None
    meta = ckpt.read_checked(path, "fashion")
    src = FashionRunConfig.model_validate(meta["config"])
    if src.refit.source:
        raise ConfigError(f"refit.source: {cfg.refit.source} is itself a refit; its choices were not made on "
                          "images it never trained on. Name the run it was refit from.")
    if not meta.get("review"):
        raise ConfigError(f"refit.source: {cfg.refit.source} has no review thresholds (a run from before "
                          "`vislab fashion calibrate`?): run `vislab fashion calibrate` on it first")
    differ = [f"data.{k}" for k in _differ(src.data, cfg.data, FREE_DATA_FIELDS)]
    differ += [f"model.{k}" for k in _differ(src.model, cfg.model, set())]
    differ += [f"train.{k}" for k in _differ(src.train.filled(), cfg.train.filled(), FREE_TRAIN_FIELDS)]
    differ += [f"distill.{k}" for k in _differ(src.distill, cfg.distill, set())]
    if differ:
        raise ConfigError(f"refit.source: {cfg.refit.source} was trained with other settings ({', '.join(differ)} "
                          "differ): its validation choices are not this run's. `vislab fashion refit RUN` copies "
                          "them.")
    return path, meta


def _differ(a, b, free: set[str]) -> list[str]:
    da, db = a.model_dump(mode="json"), b.model_dump(mode="json")
    return sorted(k for k in da.keys() | db.keys() if k not in free and da.get(k) != db.get(k))


def configure(cfg, meta: dict):
    """`cfg` with the source's best epoch as `train.stop_epoch` (unless set) and the last epoch as the checkpoint
    (the validation images are training images now: they cannot pick an epoch)."""
    train = cfg.train.model_copy(update={"stop_epoch": cfg.train.stop_epoch or int(meta["epoch"]),
                                         "monitor": "epoch", "monitor_mode": "max"})
    return cfg.model_copy(update={"train": train})


def fit_rows(prepared) -> np.ndarray:
    """The rows a refit trains on: the training and validation splits."""
    return np.concatenate([prepared.splits["train"], prepared.splits["val"]])


def finish(path: Path, prepared, source_path: Path, source: dict, batch_size: int = 32,
           console=None) -> dict | None:
    """Give the refit checkpoint the source's choices: its neighbour vote (same k, temperature, flip TTA and blend
    weights) over the training + validation images' features from the refit network, and its review thresholds.
    Returns the vote's metadata (None when the source has none)."""
    from vislab.labs.fashion import knn
    ckpt.update_meta(path, {"review": {**source["review"], "chosen_by": str(source_path)}})
    vote = source.get("knn")
    if not vote:
        return None
    info = knn.attach_fixed_vote(path, prepared, vote, batch_size)
    if console is not None:
        console.print("neighbour vote of the training + validation images with the source's blend weights: "
                      + ", ".join(f"{t} {w:.2f}" for t, w in info["weights"].items()))
    return info


def refuse(meta: dict, what: str) -> None:
    """One clear error where `what` would choose or score on the validation split of a refit checkpoint."""
    source = ((meta.get("config") or {}).get("refit") or {}).get("source")
    if source:
        raise DataError(f"{what}: this checkpoint was refit on its training + validation images (from {source}), "
                        "so its validation split is training data; choose on the source run, score the refit on "
                        "test or other data")
