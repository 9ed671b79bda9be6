"""Distillation from your own fashion models into a new one (`distill.teachers`): the teachers are checked before
any heavy work, their ensemble's probabilities on the training images are computed once (each teacher at its own
image size) and cached in the run folder, so a resumed run does not compute them again.

    vislab fashion train -c fashion/quality 'distill.teachers=[runs/a,runs/b]'
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from vislab.core import checkpoint as ckpt
from vislab.core.errors import CheckpointError, ConfigError
from vislab.labs.fashion import refit
from vislab.labs.fashion.config import FashionDataConfig, FashionRunConfig, split_differs
from vislab.labs.fashion.data import Prepared, prepare

CACHE = "teacher_probs.safetensors"


def resolve_teachers(cfg: FashionRunConfig) -> list[Path]:
    """The teachers' checkpoint files; one clear error for a teacher of another lab, task set, data or split (its
    training rows could be this run's validation or test rows)."""
    paths = []
    for spec in cfg.distill.teachers:
        try:
            path = ckpt.resolve(spec)[0]
        except FileNotFoundError as e:
            raise ConfigError(f"distill.teachers: {e}") from None
        meta = ckpt.read_checked(path, "fashion")
        refit.refuse(meta, f"distill.teachers: {spec} (its soft targets would carry the validation images that choose "
                     "this run's epoch)")
        if list(meta["tasks"]) != list(cfg.data.label_cols):
            raise ConfigError(f"distill.teachers: {spec} predicts {list(meta['tasks'])}, this run "
                              f"{list(cfg.data.label_cols)}")
        differ = split_differs(FashionRunConfig.model_validate(meta["config"]).data, cfg.data)
        if differ:
            raise ConfigError(f"distill.teachers: {spec} was trained on other data or another split (data."
                              f"{', data.'.join(differ)} differ): its training images could be this run's "
                              f"validation or test images")
        paths.append(path)
    return paths


def ensemble_probs(paths: list[Path], data: FashionDataConfig, prepared: Prepared, rows: np.ndarray,
                   temperature: float = 1.0, tta: bool = True, batch_size: int = 256,
                   progress: bool = False, by_size: dict[tuple, Prepared] | None = None,
                   vote_splits: tuple[str, ...] | None = ("train", "val")) -> dict[str, np.ndarray]:
    """Mean over the checkpoints of softmax(logits / temperature) on `rows` (sorted), per task. A checkpoint of
    another image size is scored on the data decoded again at its size (added to `by_size`, the caller's
    {(h, w): Prepared} cache, when given); its label encoders and its targets on `rows` must be `prepared`'s.
    `vote_splits`: the bank images of these splits vote in a checkpoint's neighbour vote (None: its heads alone, for
    rows in its bank, each of which would vote for itself; ("train",) to score the validation split)."""
    from vislab.labs.fashion.lab import evaluate_checkpoint
    rows = np.sort(np.asarray(rows))
    by_size = {} if by_size is None else by_size
    by_size.setdefault(tuple(data.image_size), prepared)
    total: dict[str, np.ndarray] = {}
    for path in paths:
        meta = ckpt.read_meta(path)
        size = tuple(meta["image_size"])
        if size not in by_size:
            by_size[size] = prepare(data.model_copy(update={"image_size": size}), progress=progress)
        if meta["encoders"] != prepared.encoders:
            raise CheckpointError(f"{path}: its label encoders differ from this data's: not the same classes")
        _, raw = evaluate_checkpoint(path, by_size[size], rows, batch_size, tta=tta,
                                     vote_splits=vote_splits)
        if not np.array_equal(raw["targets"], prepared.targets[rows]):
            raise CheckpointError(f"{path}: at {size[0]}x{size[1]} the rows are not this data's rows")
        for t, logits in raw["outputs"].items():
            p = torch.from_numpy(logits).float().div(temperature).softmax(-1).numpy()
            total[t] = total[t] + p if t in total else p
    return {t: v / len(paths) for t, v in total.items()}


def teacher_targets(cfg: FashionRunConfig, prepared: Prepared, rows: np.ndarray, run_dir: Path,
                    console=None, progress: bool = False) -> dict[str, torch.Tensor]:
    """The teachers' ensemble probabilities (at `distill.temperature`) for every row of `prepared`, filled on
    `rows` (the training split), zeros elsewhere; read from the run folder's cache when it was made for the same
    teachers and settings."""
    dc = cfg.distill
    key = json.dumps({"teachers": list(dc.teachers), "temperature": dc.temperature, "tta": dc.tta,
                      "rows": int(len(rows)), "n": int(len(prepared.targets))})
    cache = Path(run_dir) / CACHE
    if cache.is_file():
        from safetensors import safe_open
        with safe_open(str(cache), "pt") as f:
            if (f.metadata() or {}).get("key") == key:
                return {t: f.get_tensor(t) for t in f.keys()}
    paths = resolve_teachers(cfg)
    if console is not None:
        console.print(f"distillation: {len(paths)} teacher(s) score the {len(rows)} training images once "
                      f"(temperature {dc.temperature:g}{', flip TTA' if dc.tta else ''})")
    start = time.perf_counter()
    probs = ensemble_probs(paths, cfg.data, prepared, rows, dc.temperature, dc.tta, cfg.train.eval_batch_size,
                           progress, vote_splits=None)  # the training images are in a teacher's vote: its heads alone
    seconds = time.perf_counter() - start
    rows = np.sort(np.asarray(rows))
    soft = {}
    for t, p in probs.items():
        full = torch.zeros(len(prepared.targets), p.shape[1])
        full[torch.from_numpy(rows)] = torch.from_numpy(p)
        soft[t] = full
    if console is not None:
        agree = {t: float((probs[t].argmax(1) == prepared.targets[rows, j]).mean())
                 for j, t in enumerate(prepared.encoders)}
        console.print(f"teachers scored in {seconds:.0f} s; their ensemble's accuracy on the training images: "
                      + ", ".join(f"{t} {100 * v:.1f}" for t, v in agree.items()))
    from safetensors.torch import save_file
    tmp = cache.with_suffix(".tmp")
    save_file(soft, str(tmp), metadata={"key": key})
    tmp.replace(cache)
    return soft
