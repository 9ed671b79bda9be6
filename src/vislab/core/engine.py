"""The one training/evaluation loop every lab uses, on Lightning Fabric.

A lab supplies a model, data loaders yielding `(inputs, targets)`, an on-device `transform`
(uint8 -> normalised float, augmentation in train mode) and an *objective*: a callable
`objective(outputs, targets) -> (loss, parts)` with `make_metrics(train: bool)` returning a
metrics module (`update(outputs, targets, parts)`, `compute()`, `reset()`).
The engine does the rest: devices/precision/DDP, recipes (optimizer, scheduler, clipping),
progress, CSV logs (history.csv per epoch, steps.csv per step) and TensorBoard, best/last
checkpoints (best by `train.monitor`), exact resume, NaN stops, no half-made run folders (`guard_run`).
A training dataset with `set_epoch(epoch)` is told each epoch before it is iterated (the Siamese
lab redraws its pairs there), like a distributed sampler. A model with `forward_takes_targets = True`
is called as model(x, y) (class-conditional VAEs). An objective with a `module` (learned parameters, e.g. task
weights) has them trained, resumed and logged (`log_row()`) with the model; one marked `mixable` takes mixup /
CutMix batches (`vislab.core.mixing`), whose training accuracy counts the labels of the larger share.
"""
from __future__ import annotations

import csv
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.core.config import TrainConfig
from vislab.core.errors import NonFiniteLoss  # noqa: F401  (re-exported)
from vislab.core.mixing import BatchMixing, mixed_loss
from vislab.core.transforms import resize_scale

# --------------------------------------------------------------------------- setup helpers


def make_fabric(cfg: TrainConfig):
    from lightning_fabric import Fabric
    devices = cfg.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    return Fabric(accelerator=cfg.accelerator, devices=devices, strategy=cfg.strategy, precision=cfg.precision)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(on: bool) -> None:
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def build_optimizer(model: nn.Module, cfg: TrainConfig, extra: nn.Module | None = None) -> torch.optim.Optimizer:
    """The recipe's optimizer over the model's parameter groups; `extra` (an objective's learned parameters, e.g.
    task weights) is one more group at the heads' lr, without weight decay."""
    r = cfg.resolved()
    lr = r["lr"]
    if hasattr(model, "param_groups"):
        groups = model.param_groups(lr, r["backbone_lr_mult"])
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    if extra is not None:
        groups.append({"params": list(extra.parameters()), "lr": lr, "weight_decay": 0.0})
    groups = [g for g in groups if g["params"]]
    if r["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=r["weight_decay"])
    if r["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=lr, weight_decay=r["weight_decay"])
    return torch.optim.SGD(groups, lr=lr, momentum=r["momentum"], nesterov=bool(r["nesterov"] and r["momentum"]),
                           weight_decay=r["weight_decay"])


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, steps_per_epoch: int = 1):
    """Stepped once per optimizer step; the per-epoch schedules (exponential, step) count epochs as steps //
    steps_per_epoch."""
    r = cfg.resolved()
    kind, spe = r["scheduler"], max(steps_per_epoch, 1)
    if kind == "onecycle":
        # torch's warm-up phase ends at pct_start * total_steps - 1: under 5 steps it is empty and the schedule
        # divides by zero, so a run that short follows the start of a 5-step cycle
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g["lr"] for g in opt.param_groups],
                                                   total_steps=max(total_steps, 5), pct_start=0.25)
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
    if kind == "exponential":
        gamma = r["gamma"]
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: gamma ** (s // spe))
    if kind == "step":
        gamma, size = r["gamma"], max(int(r["step_size"]), 1)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: gamma ** ((s // spe) // size))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)


def flatten_metrics(m: dict[str, dict[str, float]], prefix: str) -> dict[str, float]:
    """{"average": {"accuracy": a}, "gender": {...}} -> {"val_accuracy": a, "val_gender_accuracy": ...}."""
    out = {}
    for group, vals in m.items():
        for k, v in vals.items():
            out[f"{prefix}_{k}" if group == "average" else f"{prefix}_{group}_{k}"] = v
    return out


def _taken(d: Path) -> bool:
    """A run (its checkpoints) or a study (its report or a results .json: splits, cross-validation, comparison) is
    already in `d`."""
    return (d / "checkpoints").exists() or (d / "report.html").exists() or any(d.glob("*.json"))


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """out_dir/name, or out_dir/name-2, -3 ... when that folder already holds a run or a study's results."""
    base = Path(out_dir) / name
    d, k = base, 1
    while _taken(d):
        k += 1
        d = base.with_name(f"{name}-{k}")
    d.mkdir(parents=True, exist_ok=True)
    return d


_OPENED: list[tuple[Path, bool, bool]] = []
"""(run folder, made fresh by this process, rank zero) of every run `open_run` started (see `guard_run`)."""
FAILED = "FAILED.json"
"""Written into a run folder whose run raised after it saved a checkpoint: kept for --resume, marked failed."""


def guard_run(fn):
    """Decorator for a lab's train function: a run that fails leaves no half-made folder. A folder with no
    checkpoint yet is removed (when this call made it); one with checkpoints is kept for --resume and marked
    with FAILED.json (what failed, and the command to resume), which a successful resume removes."""
    import functools
    import json
    import shutil

    @functools.wraps(fn)
    def wrapper(*a, **k):
        start = len(_OPENED)
        try:
            return fn(*a, **k)
        except BaseException as e:
            for run_dir, fresh, zero in _OPENED[start:]:
                if not zero or not run_dir.is_dir():
                    continue
                if not any((run_dir / "checkpoints").glob("*.safetensors")):
                    if fresh:
                        shutil.rmtree(run_dir, ignore_errors=True)
                    continue
                (run_dir / FAILED).write_text(json.dumps(
                    {"error": f"{type(e).__name__}: {e}"[:2000], "resume": f"--resume {run_dir}"}, indent=2))
            raise
        finally:
            del _OPENED[start:]
    return wrapper


def open_run(cfg, resume: str | Path | None = None, run_dir: str | Path | None = None):
    """Start (or resume) a run of any lab: (cfg, fabric, run_dir).

    Resuming reads the run's own config from its last checkpoint (so the resumed run is the same
    run); otherwise the run folder is `run_dir` or a fresh out_dir/name[-k]. Launches Fabric and
    writes config.yaml (rank 0)."""
    from vislab.core.report import to_yaml
    if resume:
        cfg = type(cfg).model_validate(ckpt.read_meta(Path(resume) / "checkpoints" / "last.safetensors")["config"])
    fabric = make_fabric(cfg.train)
    fabric.launch()
    if resume:
        run_dir = Path(resume)
    elif run_dir is None:
        run_dir = fabric.broadcast(new_run_dir(cfg.out_dir, cfg.name) if fabric.is_global_zero else None)
    run_dir = Path(run_dir)
    fresh = not resume and not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir()))
    if fabric.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(to_yaml(cfg.model_dump(mode="json")))
        (run_dir / FAILED).unlink(missing_ok=True)
    _OPENED.append((run_dir, fresh, fabric.is_global_zero))
    return cfg, fabric, run_dir


def replace_epoch_rows(path: Path, rows: list[dict], epoch: int) -> None:
    """Rewrite a per-epoch log (history.csv, steps.csv) with its rows of earlier epochs and then `rows`,
    atomically: what a killed run left for this epoch or later is replaced when it resumes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = []
    if path.is_file():
        with open(path, newline="") as f:
            old = [r for r in csv.DictReader(f) if int(float(r["epoch"])) < epoch]
    rows = old + list(rows)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def read_steps(run_dir: str | Path) -> list[dict]:
    """The per-step training losses a run logged (steps.csv: step, epoch, loss), for step-level curves."""
    path = Path(run_dir) / "steps.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{"step": int(r["step"]), "epoch": int(r["epoch"]), "loss": float(r["loss"])}
                for r in csv.DictReader(f)]


# --------------------------------------------------------------------------- loop


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best: Path
    last: Path
    best_epoch: int
    steps: int
    seconds: float
    stopped: str = "completed"
    extra: dict[str, Any] = field(default_factory=dict)


class Trainer:
    """Fit and evaluate any (model, objective, loaders, transform) on Fabric."""

    def __init__(self, cfg: TrainConfig, out_dir: str | Path, fabric=None, meta: dict | None = None,
                 progress: bool = True, console=None):
        self.cfg = cfg.filled()  # null fields from the recipe
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.fabric = fabric or make_fabric(cfg)
        self.meta = dict(meta or {})
        self.progress = progress
        self.console = console

    # -- helpers -----------------------------------------------------------------------
    def _print(self, msg: str) -> None:
        if self.fabric.is_global_zero:
            if self.console is not None:
                self.console.print(msg)
            else:
                print(msg, flush=True)

    def _batches(self, loader, epoch: int):
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "set_epoch"):  # e.g. the Siamese pair/triplet sets redraw their tuples each epoch
            dataset.set_epoch(epoch)
        gen = getattr(loader, "generator", None)
        if gen is not None:
            gen.manual_seed(self.cfg.seed * 100_003 + epoch)
        return loader

    def _save(self, name: str, export: nn.Module, meta: dict) -> Path:
        path = self.ckpt_dir / f"{name}.safetensors"
        if self.fabric.is_global_zero:
            ckpt.save_weights(path, export.state_dict(), meta)
        return path

    # -- evaluation --------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model: nn.Module, objective, loader, transform: Callable | None = None,
                 collect: bool = False, sync: bool = True) -> tuple[dict, dict[str, Any]]:
        """Metrics over a loader; with collect=True also the raw outputs and targets (numpy).

        sync=False: this process alone (e.g. rank 0 evaluating a checkpoint after DDP training).
        """
        model.eval()
        if isinstance(transform, nn.Module):
            transform.eval()
        if self.cfg.channels_last:  # as in training: a CPU runs NCHW weights on channels_last batches ~2x slower
            model = model.to(memory_format=torch.channels_last)
        metrics = objective.make_metrics(train=False, sync=sync).to(self.fabric.device)
        outs: dict[str, list] = {}
        tgts: list = []
        for x, y in loader:
            x, y = self._to_device(x), self._to_device(y)
            if transform is not None:
                x = transform(x)
            with self.fabric.autocast():
                o = model(x, y) if getattr(model, "forward_takes_targets", False) else model(x)
            loss, parts = objective(o, y)
            metrics.update(o, y, parts)
            if collect:
                for k, v in (o.items() if isinstance(o, dict) else [("output", o)]):
                    outs.setdefault(k, []).append(v.float().cpu())
                tgts.append(y.cpu())
        result = metrics.compute()
        collected = {}
        if collect:
            collected = {"outputs": {k: torch.cat(v).numpy() for k, v in outs.items()},
                         "targets": torch.cat(tgts).numpy()}
        return result, collected

    def _to_device(self, x):
        return self.fabric.to_device(x) if isinstance(x, torch.Tensor) and x.device != self.fabric.device else x

    # -- training ----------------------------------------------------------------------
    def fit(self, model: nn.Module, objective, train_loader, val_loader, transform: nn.Module | None = None,
            export: nn.Module | None = None, resume: bool = False) -> FitResult:
        """Train `model`; checkpoints hold `export`'s weights (the full model when `model` is a part)."""
        cfg, fabric = self.cfg, self.fabric
        export = export if export is not None else model
        set_deterministic(cfg.deterministic)
        seed_all(cfg.seed)
        steps_per_epoch = len(train_loader)
        if steps_per_epoch == 0:
            raise ValueError("the training set is empty (or smaller than one batch with drop_last)")
        total_steps = (cfg.epochs * steps_per_epoch if cfg.max_steps is None
                       else min(cfg.max_steps, cfg.epochs * steps_per_epoch))
        epochs = math.ceil(total_steps / steps_per_epoch)
        last_epoch = min(epochs, cfg.stop_epoch or epochs)  # the schedule spans `epochs`; training stops here
        learned = getattr(objective, "module", None)  # the objective's own parameters (learned task weights)
        if learned is not None:
            learned.to(fabric.device)
        if cfg.task_weighting == "uncertainty" and learned is None:
            raise ValueError("train.task_weighting=uncertainty needs a lab with several classification tasks "
                             "(fashion); this lab's objective has no task weights to learn")
        mixing = BatchMixing(cfg.mixup, cfg.cutmix, cfg.mix_prob)
        if mixing.on and not getattr(objective, "mixable", False):
            raise ValueError("train.mixup / train.cutmix need a classification objective (fashion, CIFAR-10); this "
                             f"lab's {type(objective).__name__} does not blend two losses")
        optimizer = build_optimizer(model, cfg, learned)
        scheduler = build_scheduler(optimizer, cfg, total_steps, steps_per_epoch)
        start_epoch, step, best_val, best_epoch, history = 1, 0, math.inf, 0, []
        last_w, last_s = self.ckpt_dir / "last.safetensors", self.ckpt_dir / "last.state.pt"
        if resume:
            if not (last_w.is_file() and last_s.is_file()):
                raise FileNotFoundError(f"--resume: no last checkpoint in {self.ckpt_dir}")
            weights, meta = ckpt.load_weights(last_w)
            state = ckpt.load_state(last_s)
            if state["epoch"] != meta.get("epoch"):
                raise ckpt.CheckpointError(f"{last_w} (epoch {meta.get('epoch')}) and {last_s} "
                                           f"(epoch {state['epoch']}) disagree; the run was killed while saving. "
                                           "Resume from best or start again.")
            if "model" in state:  # with EMA, last.safetensors holds the averaged weights, the state the raw ones
                export.load_state_dict(state["model"])
            else:
                ckpt.load_into(export, weights, last_w)
            if learned is not None:
                learned.load_state_dict(state["objective"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            start_epoch, step = state["epoch"] + 1, state["step"]
            best_val, best_epoch, history = state["best_val"], state["best_epoch"], list(state["history"])
            ckpt.set_rng_state(state["rng"])
            self._print(f"resumed from {last_w}: epoch {state['epoch']} done, step {step}")
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model, optimizer = fabric.setup(model, optimizer)
        if transform is not None:
            transform = transform.to(fabric.device)
            transform.channels_last = cfg.channels_last
        if cfg.resize_start is not None and not hasattr(transform, "scale"):
            raise ValueError("train.resize_start (progressive resizing) needs a lab that trains on image batches "
                             "through BatchTransform (not model.freeze_backbone)")
        train_loader, val_loader = fabric.setup_dataloaders(train_loader, val_loader, move_to_device=True)
        ema = self._ema(export, state["ema"] if resume and "ema" in state else None)
        scored = ema.module if ema is not None else export  # what validation and the checkpoints see
        grad_clip = cfg.resolved()["grad_clip"]
        takes_y = getattr(model, "forward_takes_targets", False)  # e.g. a class-conditional VAE
        train_metrics = objective.make_metrics(train=True).to(fabric.device)
        writer = self._tensorboard()
        csv_path = self.out_dir / "history.csv"
        t_start = time.time()
        stopped = "completed"
        for epoch in range(start_epoch, last_epoch + 1):
            if step >= total_steps:
                break
            seed_all(cfg.seed * 1_000_003 + epoch * 1009 + fabric.global_rank)
            aug_gen = torch.Generator().manual_seed(cfg.seed * 7919 + epoch * 31 + fabric.global_rank)
            model.train()
            if transform is not None:
                transform.train()
            if cfg.resize_start is not None:
                transform.scale = resize_scale(epoch, epochs, cfg.resize_start, cfg.resize_full_at)
            train_metrics.reset()
            seen, t0, step_rows = 0, time.time(), []
            bar = self._bar(epoch, epochs, min(steps_per_epoch, total_steps - step))
            for x, y in self._batches(train_loader, epoch):
                if step >= total_steps:
                    break
                if transform is not None:
                    x = transform(x, aug_gen)
                x, lam = mixing(x)
                with fabric.autocast():
                    out = model(x, y) if takes_y else model(x)
                loss, parts = mixed_loss(objective, out, y, lam)
                if not torch.isfinite(loss):
                    self._close_bar(bar)
                    raise NonFiniteLoss(f"loss is {loss.detach().item()} at epoch {epoch}, step {step + 1} "
                                        f"(parts: { {k: round(float(v.detach()), 4) for k, v in parts.items()} }); "
                                        f"stopped. Checkpoints in {self.ckpt_dir} are those of the last finished "
                                        f"epoch. Try a lower train.lr or train.precision=32-true.")
                optimizer.zero_grad(set_to_none=True)
                fabric.backward(loss)
                if learned is not None and fabric.world_size > 1:  # outside the DDP-wrapped model: average by hand
                    for p in learned.parameters():
                        p.grad = fabric.all_reduce(p.grad, reduce_op="mean")
                if grad_clip:
                    fabric.clip_gradients(model, optimizer, max_norm=grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                if ema is not None:
                    ema.update(export, step=step)
                seen += len(y) * fabric.world_size
                train_metrics.update(out, y if lam >= 0.5 else y.flip(0), parts)  # a mixed batch: the larger share
                # the history's train_loss per step (a part named loss, else the mean over the parts, i.e. over
                # tasks), read once per epoch: no device sync per step
                step_rows.append((parts["loss"] if "loss" in parts else torch.stack(list(parts.values())).mean())
                                 .detach().float())
                if bar is not None:
                    bar[0].update(bar[1], advance=1,
                                  description=f"epoch {epoch}/{epochs} loss {loss.item():.3f} "
                                              f"{seen / max(time.time() - t0, 1e-9):.0f} img/s")
            self._close_bar(bar)
            train_time = time.time() - t0
            row: dict[str, float] = {"epoch": epoch, "step": step, "lr": optimizer.param_groups[-1]["lr"],
                                     "train_seconds": round(train_time, 2),
                                     "train_images_per_s": round(seen / max(train_time, 1e-9), 1)}
            if cfg.resize_start is not None:
                row["train_scale"] = round(transform.scale, 4)
            row.update(flatten_metrics(train_metrics.compute(), "train"))
            row.update(objective.log_row() if hasattr(objective, "log_row") else {})
            val, _ = self.evaluate(model if ema is None else scored, objective, val_loader, transform)
            row.update(flatten_metrics(val, "val"))
            history.append(row)
            val_loss = val["average"].get("loss", math.inf) if "average" in val else val.get("loss", math.inf)
            meta = {**self.meta, "epoch": epoch, "step": step, "metrics": val, "history": history}
            score = self._monitor_score(row)
            is_best = score < best_val
            if is_best:
                best_val, best_epoch = score, epoch
                self._save("best", scored, {**meta, "kind": "best"})
            state = {"epoch": epoch, "step": step, "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "best_val": best_val, "best_epoch": best_epoch,
                     "history": history, "rng": ckpt.rng_state()}
            if ema is not None:
                state |= {"model": export.state_dict(), "ema": ema.module.state_dict()}
            if learned is not None:
                state["objective"] = learned.state_dict()
            if fabric.is_global_zero:
                ckpt.save_state(last_s, state)
            self._save("last", scored, {**meta, "kind": "last"})
            if fabric.is_global_zero:
                self._log_row(csv_path, row, writer)
                losses = torch.stack(step_rows).cpu().tolist() if step_rows else []
                first = step - len(losses) + 1
                replace_epoch_rows(self.out_dir / "steps.csv", [{"step": first + i, "epoch": epoch, "loss": round(v, 6)}
                                                                 for i, v in enumerate(losses)], epoch)
            shown = [(k, row[k]) for k in ("val_accuracy", "val_f1", "val_auc", "val_eer", cfg.monitor)
                     if k in row and k not in ("val_loss", "epoch")]
            vl = f"val loss {val_loss:.4f} " if math.isfinite(val_loss) else ""  # e.g. ArcFace: no loss on val people
            self._print(f"epoch {epoch}: train loss {row.get('train_loss', float('nan')):.4f} {vl}"
                        + " ".join(f"{k.removeprefix('val_').replace('accuracy', 'acc')} {v:.4f}"
                                   for k, v in dict(shown).items())
                        + f" ({row['train_images_per_s']:.0f} img/s)" + ("  [best]" if is_best else ""))
            fabric.barrier()
        if writer is not None:
            writer.close()
        return FitResult(history, self.ckpt_dir / "best.safetensors", last_w, best_epoch, step,
                         time.time() - t_start, stopped)

    def _ema(self, export: nn.Module, state: dict | None):
        """timm's ModelEmaV3 of the model (train.ema_decay), restored from a resumed run's state; None when off."""
        if not self.cfg.ema_decay:
            return None
        from timm.utils import ModelEmaV3
        ema = ModelEmaV3(export, decay=self.cfg.ema_decay, use_warmup=self.cfg.ema_warmup)
        if state is not None:
            ema.module.load_state_dict(state)
        return ema

    def _monitor_score(self, row: dict) -> float:
        """train.monitor of this epoch as a number to minimise (negated for mode max; NaN never best)."""
        key = self.cfg.monitor
        if key not in row:
            raise ValueError(f"train.monitor={key!r} is not a history column; columns are {sorted(row)}")
        mode = self.cfg.monitor_mode or ("min" if "loss" in key else "max")
        v = float(row[key])
        if not math.isfinite(v):
            return math.inf
        return v if mode == "min" else -v

    # -- logging -----------------------------------------------------------------------
    def _tensorboard(self):
        if not self.fabric.is_global_zero:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return None
        return SummaryWriter(str(self.out_dir / "tensorboard"))

    def _log_row(self, path: Path, row: dict, writer) -> None:
        replace_epoch_rows(path, [row], row["epoch"])
        if writer is not None:
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    writer.add_scalar(k.replace("_", "/", 1), v, row["epoch"])
            writer.flush()

    def _bar(self, epoch: int, epochs: int, total: int):
        if not (self.progress and self.fabric.is_global_zero):
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     TimeRemainingColumn(), console=self.console, transient=True)
        p.start()
        return p, p.add_task(f"epoch {epoch}/{epochs}", total=total)

    @staticmethod
    def _close_bar(bar) -> None:
        if bar is not None:
            bar[0].stop()
