"""Fashion attributes lab: one backbone, one head per attribute (gender, masterCategory,
subCategory, baseColour, season, articleType), on the shared engine.

    prepared = prepare_data(cfg.data)     # clean -> decode once (cached) -> encode -> split
    run_dir = train(cfg)                  # fit, checkpoints, test evaluation, report
    evaluate(checkpoint, ...)             # metrics, plots, report of any checkpoint
    compare(cfg, backbones, recipes)      # same budget, comparison report
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vislab.core import checkpoint as ckpt
from vislab.core import plots
from vislab.core.data.images import DataError
from vislab.core.data.loaders import batch_loader
from vislab.core.distill import DistillationObjective, with_row_ids
from vislab.core.engine import Trainer, guard_run, new_run_dir, open_run, read_steps, seed_all
from vislab.core.metrics import majority_baseline
from vislab.core.models import check_train_blocks
from vislab.core.objectives import ClassificationObjective, FlipTTA, class_balance_weights
from vislab.core.report import Section, Table, hardware, rich_console, write_report
from vislab.core.report import flat_config as _flat_cfg
from vislab.core.transforms import BatchTransform
from vislab.labs.fashion import knn, refit
from vislab.labs.fashion.config import FashionRunConfig
from vislab.labs.fashion.data import (
    Prepared,
    class_counts,
    encode,
    prepare,
    prepare_eval,
    save_summary,
    train_class_counts,
)
from vislab.labs.fashion.distill import resolve_teachers, teacher_targets
from vislab.labs.fashion.features import backbone_features
from vislab.labs.fashion.model import HeadsOnly, MultiTaskNet
from vislab.labs.fashion.plots import ablation_bars, comparison_bars


def prepare_data(cfg: FashionRunConfig, progress: bool = True) -> Prepared:
    return prepare(cfg.data, progress=progress)


# --------------------------------------------------------------------------- linear probe features


def _features_key(cfg: FashionRunConfig, prepared: Prepared, net: MultiTaskNet) -> str | None:
    if not cfg.model.pretrained or prepared.cache_file is None:
        return None  # random weights: features are not worth caching
    src = getattr(net.backbone, "pretrained_source", "?")
    rows = hashlib.sha1(np.asarray(prepared.df.index.size).tobytes()
                        + "|".join(prepared.df["_image"]).encode()).hexdigest()[:12]
    return hashlib.sha1(f"{prepared.cache_file.name}|{rows}|{cfg.model.backbone}|{src}".encode()).hexdigest()[:20]


# --------------------------------------------------------------------------- train


def build_model(cfg: FashionRunConfig, tasks: dict[str, int]) -> MultiTaskNet:
    net = MultiTaskNet(cfg.model.backbone, tasks, pretrained=cfg.model.pretrained, drop_rate=cfg.model.drop_rate,
                       image_size=cfg.data.image_size, train_blocks=cfg.model.train_blocks)
    if cfg.model.freeze_backbone:
        net.backbone.requires_grad_(False)
    return net


def checkpoint_meta(cfg: FashionRunConfig, prepared: Prepared, net: MultiTaskNet) -> dict[str, Any]:
    return {"lab": "fashion", "config": cfg.model_dump(mode="json"), "encoders": prepared.encoders,
            "tasks": prepared.tasks, "backbone": cfg.model.backbone,
            "image_size": list(cfg.data.image_size), "data_config": net.data_config,
            "split_sizes": {k: int(len(v)) for k, v in prepared.splits.items()},
            "train_class_counts": train_class_counts(prepared)}


@guard_run
def train(cfg: FashionRunConfig, resume: str | Path | None = None, progress: bool = True, report: bool = True) -> Path:
    """Train one model; returns the run directory (checkpoints, history, metrics, report)."""
    console = rich_console()
    check_train_blocks(cfg.model.backbone, cfg.model.train_blocks)
    if not resume:
        resolve_teachers(cfg)  # before a run folder exists (a resumed run reads its cached teacher targets)
    if cfg.refit.source and not resume:  # the source's best epoch, before the config is saved in the run folder
        cfg = refit.configure(cfg, refit.source_of(cfg)[1])
    cfg, fabric, run_dir = open_run(cfg, resume)
    source = refit.source_of(cfg) if cfg.refit.source else None  # a resumed refit: from its saved config
    with fabric.rank_zero_first():
        prepared = prepare_data(cfg, progress=progress and fabric.is_global_zero)
    if fabric.is_global_zero:
        save_summary(prepared, run_dir / "data_summary.json")
        _print_cleaning(console, prepared)
    seed_all(cfg.train.seed)  # head (and from-scratch backbone) initialisation is part of the run's seed
    net = build_model(cfg, prepared.tasks)
    transform = BatchTransform(net.data_config["mean"], net.data_config["std"], augment=cfg.train.augment)
    tc = cfg.train.filled()
    tr, va = prepared.splits["train"], prepared.splits["val"]
    if source:
        if not len(prepared.splits["test"]):
            raise DataError("a refit trains on the training and validation splits: give data.split a test "
                            "fraction, or nothing is left to score it on")
        tr = refit.fit_rows(prepared)
        if fabric.is_global_zero:
            console.print(f"refit of {source[0]}: training on the training + validation images ({len(tr)}) until "
                          f"epoch {tc.stop_epoch} of {tc.epochs}; its validation columns score training images")
    balance = ({t: class_balance_weights(prepared.targets[tr, j], n, tc.class_balance)
                for j, (t, n) in enumerate(prepared.tasks.items())} if tc.class_balance else None)
    objective = ClassificationObjective(prepared.tasks, tc.task_weights, tc.label_smoothing, balance,
                                        uncertainty=tc.task_weighting == "uncertainty")
    train_targets = prepared.targets
    if cfg.distill.teachers:
        with fabric.rank_zero_first():
            soft = teacher_targets(cfg, prepared, tr, run_dir, console if fabric.is_global_zero else None,
                                   progress and fabric.is_global_zero)
        objective = DistillationObjective(objective, soft, cfg.distill.weight, cfg.distill.temperature)
        train_targets = with_row_ids(prepared.targets)  # the rows the teachers' probabilities are looked up by
    meta = checkpoint_meta(cfg, prepared, net)
    trainer = Trainer(tc, run_dir, fabric=fabric, meta=meta, progress=progress, console=console)
    if len(va) == 0:
        raise DataError("the validation split is empty: give data.split a non-zero validation fraction")
    if cfg.model.freeze_backbone:
        with fabric.rank_zero_first():
            feats = backbone_features(net, prepared.images, fabric.device, _features_key(cfg, prepared, net),
                                      cfg.data.cache_dir, tc.eval_batch_size, progress and fabric.is_global_zero)
        model, x, step_transform = HeadsOnly(net), feats, None
    else:
        model, x, step_transform = net, prepared.images, transform
    train_loader = batch_loader(x, train_targets, tr, tc.batch_size, shuffle=True, seed=tc.seed,
                                  num_workers=tc.num_workers, drop_last=len(tr) > tc.batch_size)
    val_loader = batch_loader(x, prepared.targets, va, tc.eval_batch_size, shuffle=False)
    result = trainer.fit(model, objective, train_loader, val_loader, step_transform, export=net, resume=bool(resume))
    if fabric.is_global_zero:
        console.print(f"trained {result.steps} steps in {result.seconds:.0f} s; best epoch {result.best_epoch}")
        best = run_dir / "checkpoints" / "best.safetensors"
        if source:
            refit.finish(best, prepared, *source, cfg.train.eval_batch_size, console)
        else:
            finish_checkpoint(best, prepared, cfg, console)
        if report:
            evaluate_run(run_dir, prepared, cfg, result.history, seconds=result.seconds, console=console)
    fabric.barrier()
    return run_dir


def _print_cleaning(console, prepared: Prepared) -> None:
    from rich.table import Table as RTable
    t = RTable(title="data cleaning")
    for c in ("step", "removed", "remaining", "detail"):
        t.add_column(c)
    rows = prepared.summary_rows()
    for i, r in enumerate(rows):  # the steps that removed rows (and the first and last)
        if r[1] or i in (0, len(rows) - 1):
            t.add_row(*(str(v) for v in r))
    console.print(t)
    console.print("classes per task: " + ", ".join(f"{k} {v}" for k, v in prepared.tasks.items())
                  + "; split sizes: " + ", ".join(f"{k} {len(v)}" for k, v in prepared.splits.items()))


# --------------------------------------------------------------------------- evaluate


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[MultiTaskNet, dict]:
    """The network of a fashion checkpoint (without its neighbour vote: `knn.vote_of`) and its metadata."""
    weights, meta = ckpt.load_checked(path, "fashion")
    weights = {k: v for k, v in weights.items() if not k.startswith(knn.PREFIX)}
    net = MultiTaskNet(meta["backbone"], meta["tasks"], pretrained=False,
                       drop_rate=meta["config"]["model"].get("drop_rate", 0.0), image_size=tuple(meta["image_size"]))
    ckpt.load_into(net, weights, path)
    return net.to(device).eval(), meta


def check_tasks(meta: dict, label_cols: Sequence[str], path) -> None:
    have = list(meta["tasks"])
    if list(label_cols) != have:
        raise ckpt.CheckpointError(f"{path} was trained for tasks {have}; the data asks for {list(label_cols)}. "
                                   f"Use a checkpoint of this task set or pass the matching --label-cols.")


def evaluate_checkpoint(path: str | Path, prepared: Prepared, rows: np.ndarray, batch_size: int = 32,
                        device: str = "cpu", tta: bool | None = None,
                        vote_splits: tuple[str, ...] | None = ("train", "val")) -> tuple[dict, dict]:
    """Metrics of a checkpoint on `rows` of prepared data (single process), with raw outputs; `tta`: flip
    test-time augmentation (None: the checkpoint's train.tta). A checkpoint with a neighbour vote blends it in,
    with the bank images of `vote_splits` voting (("train",) to score the validation split; None: the heads
    alone)."""
    net, meta = load_model(path, device)
    vote = knn.vote_of(path, meta, vote_splits) if vote_splits else None
    tasks = meta["tasks"]
    transform = BatchTransform(net.data_config["mean"], net.data_config["std"])
    loader = batch_loader(prepared.images, prepared.targets, rows, batch_size, shuffle=False)
    cfg = FashionRunConfig.model_validate(meta["config"])
    trainer = Trainer(cfg.train.model_copy(update={"devices": 1, "strategy": "auto",
                                                   "accelerator": "cpu" if device == "cpu" else "auto"}),
                      Path(path).parent.parent, progress=False)
    objective = ClassificationObjective(tasks)
    tta = cfg.train.filled().tta if tta is None else tta
    model = FlipTTA(net) if tta else net  # the mean of the logits of the photo and its mirror
    if vote is not None:
        model = knn.VotingNet(net, *vote, tta=tta)
    return trainer.evaluate(model, objective, loader, transform, collect=True, sync=False)


def finish_checkpoint(path: Path, prepared: Prepared, cfg: FashionRunConfig, console=None) -> dict | None:
    """After training (or `vislab fashion knn`): the neighbour vote when `knn.k` (weights chosen on the validation
    split), then the review thresholds (on the validation split, the training images voting), then the validation
    images join the vote when `knn.bank` is train+val. Returns the vote's metadata (None without one)."""
    info, va = None, np.sort(prepared.splits["val"])
    if cfg.knn.k:
        info, f_va, probs = knn.attach_vote(path, prepared, cfg.knn.k, cfg.knn.temperature,
                                            bool(cfg.train.filled().tta), cfg.train.eval_batch_size, console)
        store_review(path, probs, prepared.targets[va], cfg.review.precision, console)
    else:
        calibrate_checkpoint(path, prepared, va, cfg.review.precision, cfg.train.eval_batch_size, console)
    if cfg.knn.k and cfg.knn.bank == "train+val":
        info = knn.widen_bank(path, prepared, f_va)
    return info


def calibrate_checkpoint(path: Path, prepared: Prepared, rows: np.ndarray, precision: float,
                         batch_size: int = 256, console=None) -> dict:
    """Choose the review thresholds on `rows` (the validation split) and store them in the checkpoint."""
    _, raw = evaluate_checkpoint(path, prepared, rows, batch_size, vote_splits=("train",))
    probs = {t: torch.from_numpy(v).float().softmax(-1).numpy() for t, v in raw["outputs"].items()}
    return store_review(path, probs, raw["targets"], precision, console)


def store_review(path: Path, probs: dict[str, np.ndarray], targets: np.ndarray, precision: float,
                 console=None) -> dict:
    """Choose the review thresholds from validation probabilities and store them in the checkpoint."""
    from vislab.labs.fashion.review import choose_thresholds
    review = choose_thresholds(probs, targets, precision)
    ckpt.update_meta(path, {"review": review})
    if console is not None:
        console.print(f"review thresholds for {precision:.0%} precision on the validation split: " + ", ".join(
            f"{t} {'none' if v is None else f'{v:.2f}'} (auto-accepts {review['coverage'][t]:.0%})"
            for t, v in review["thresholds"].items()))
    return review


def calibrate(checkpoint: str | Path, precision: float | None = None, progress: bool = True) -> dict:
    """Choose a checkpoint's review thresholds again on its own validation split (e.g. another precision)."""
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_checked(path, "fashion")
    refit.refuse(meta, "calibrate")
    cfg = FashionRunConfig.model_validate(meta["config"])
    prepared = prepare(cfg.data.model_copy(update={"image_size": tuple(meta["image_size"])}), progress=progress)
    rows_ok, _ = remap_targets(prepared, meta["encoders"])
    rows = np.intersect1d(prepared.splits["val"], rows_ok)
    if not len(rows):
        raise DataError(f"{path}: its validation split has no rows to choose thresholds on")
    return calibrate_checkpoint(path, prepared, rows, precision or cfg.review.precision,
                                cfg.train.eval_batch_size, rich_console())


def add_vote(checkpoint: str | Path, k: int, temperature: float, bank: str, progress: bool = True) -> dict:
    """Give a trained checkpoint a neighbour vote (or a new one) on its own data and split, and choose its review
    thresholds again (`finish_checkpoint`)."""
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_checked(path, "fashion")
    refit.refuse(meta, "knn")
    cfg = FashionRunConfig.model_validate(meta["config"])
    cfg = cfg.model_copy(update={"knn": cfg.knn.model_copy(update={"k": k, "temperature": temperature, "bank": bank})})
    prepared = prepare(cfg.data.model_copy(update={"image_size": tuple(meta["image_size"])}), progress=progress)
    if prepared.encoders != meta["encoders"]:
        raise DataError(f"{path}: its data now gives other classes than it was trained on: no vote")
    ckpt.update_meta(path, {"knn": None}, drop_prefix=knn.PREFIX)  # the old vote must not score the new one
    return finish_checkpoint(path, prepared, cfg, rich_console())


def remap_targets(prepared: Prepared, encoders: dict[str, list[str]]) -> tuple[np.ndarray, dict]:
    """Targets of `prepared` re-encoded with a checkpoint's encoders; rows with unseen labels dropped."""
    targets, unseen = encode(prepared.df, encoders)
    ok = (targets >= 0).all(axis=1)
    prepared.targets = targets
    return np.flatnonzero(ok), unseen


def evaluate_run(run_dir: Path, prepared: Prepared, cfg: FashionRunConfig, history: list[dict] | None = None,
                 seconds: float | None = None, console=None, split: str = "test", path: Path | None = None,
                 scope: str | None = None, train_counts: dict[str, list[int]] | None = None,
                 steps_dir: Path | None = None, unseen: dict | None = None) -> dict:
    """Evaluate a checkpoint (default: run_dir's best) on a split; write metrics.json, plots, report in run_dir.
    `scope` says in words which rows were scored; `train_counts` (rows per class of the checkpoint's training
    split) gives the majority baselines, else the split "train" of `prepared` does."""
    console = console or rich_console()
    path = path or run_dir / "checkpoints" / "best.safetensors"
    if split == "test" and not len(prepared.splits["test"]):
        split = "val"  # a data split without a test part: the validation rows are the held-out ones
    rows = prepared.splits[split]
    scope = scope or f"the {split} split ({len(rows)} held-out images)"
    tta = bool(cfg.train.filled().tta)  # the run's config (evaluate: the checkpoint's, with any overrides)
    metrics, raw = evaluate_checkpoint(path, prepared, rows, cfg.train.eval_batch_size, tta=tta,
                                       vote_splits=knn.bank_splits(split))
    train_rows = prepared.splits.get("train", rows)
    baselines = {t: majority_baseline(prepared.targets[train_rows, j], prepared.targets[rows, j],
                                      (train_counts or {}).get(t))
                 for j, t in enumerate(prepared.encoders)}
    scored = {t: int((prepared.targets[rows, j] >= 0).sum()) for j, t in enumerate(prepared.encoders)}
    out = {"split": split, "scope": scope, "n": int(len(rows)), "n_per_task": scored, "checkpoint": str(path),
           "metrics": metrics,
           "majority_baseline": baselines, "train_seconds": seconds,
           "cleaning": [s.__dict__ for s in prepared.steps], "unseen_labels": unseen or {}}
    out["tta"] = tta
    out["intervals"] = intervals_of(raw, prepared.encoders)
    (run_dir / "metrics.json").write_text(json.dumps(out, indent=2))
    _print_metrics(console, metrics, baselines, f"metrics on {scope}")
    out["review"] = ckpt.read_meta(path).get("review")
    out["explain"] = deletion_on(path, prepared, rows, cfg)
    if out["explain"]:
        (run_dir / "metrics.json").write_text(json.dumps({k: v for k, v in out.items() if k != "review"}, indent=2))
    out["report"] = str(write_run_report(run_dir, prepared, cfg, metrics, raw, rows, baselines, history, seconds,
                                         scope=scope, steps_dir=steps_dir, review=out["review"], checkpoint=path,
                                         deletion=out["explain"], intervals=out["intervals"]))
    return out


def intervals_of(raw: dict, encoders: dict[str, list[str]], n: int = 1000) -> dict:
    """95% bootstrap intervals (1,000 resamples of the scored images) of accuracy and macro F1 per task."""
    from vislab.core.metrics import bootstrap_intervals
    targets = raw["targets"]
    return bootstrap_intervals({t: (targets[:, j], raw["outputs"][t].argmax(1), len(encoders[t]))
                                for j, t in enumerate(encoders)}, n=n)


def deletion_on(path: Path, prepared: Prepared, rows: np.ndarray, cfg: FashionRunConfig) -> dict:
    """The deletion test of the heat maps on `explain.report_images` scored images (seeded draw); {} when off."""
    ec = cfg.explain
    n = min(ec.report_images, len(rows))
    if not n:
        return {}
    from vislab.labs.fashion.explain import deletion_check
    pick = np.sort(np.random.default_rng(0).choice(rows, n, replace=False))
    net, meta = load_model(path)
    return deletion_check(net, meta, np.asarray(prepared.images[pick]), ec.deletion_fraction, ec.layer, ec.method)


def _print_metrics(console, metrics: dict, baselines: dict, title: str) -> None:
    """The metrics table on the terminal, in percent so that it fits 80 columns (a narrower terminal folds)."""
    from rich import box
    from rich.table import Table as RTable
    t = RTable(title=f"{title}\naccuracy, majority baseline and macro F1 / precision / recall in %",
               title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for c in ("task", "acc", "majority", "F1", "prec", "recall", "AUC", "loss"):
        t.add_column(c, justify="left" if c == "task" else "right", no_wrap=c == "task", overflow="fold")
    pct = lambda v: f"{100 * v:.1f}" if v == v else "-"  # noqa: E731  (NaN -> -)
    for task, m in metrics.items():
        base = float(np.nanmean(list(baselines.values()))) if task == "average" else baselines[task]
        t.add_row(task, pct(m.get("accuracy", float("nan"))), pct(base),
                  *(pct(m.get(k, float("nan"))) for k in ("f1", "precision", "recall")),
                  f"{m.get('auroc', float('nan')):.3f}", f"{m.get('loss', float('nan')):.3f}")
    console.print(t)


def intervals_table(metrics: dict, intervals: dict) -> Table:
    """Accuracy and macro F1 with their 95% bootstrap intervals, in %."""
    def cell(task, k):
        v = metrics[task][k] if task in metrics else None
        lo, hi = intervals[task][k]
        return (f"{100 * v:.1f} " if v is not None else "") + f"[{100 * lo:.1f}, {100 * hi:.1f}]"
    rows = [[t, cell(t, "accuracy"), cell(t, "f1")] for t in intervals]
    return Table(["task", "accuracy, 95% interval", "macro F1, 95% interval"], rows,
                 caption="Percentile bootstrap, 1,000 resamples of the scored images (the same resample for every "
                         "task): a difference between two runs inside these ranges may be noise.")


def metrics_table(metrics: dict, baselines: dict | None = None) -> Table:
    cols = ["task", "accuracy", "macro F1", "macro precision", "macro recall", "ROC-AUC (micro)", "loss"]
    if baselines:
        cols.insert(2, "majority baseline")
    rows = []
    for task, m in metrics.items():
        r = [task, m.get("accuracy"), m.get("f1"), m.get("precision"), m.get("recall"), m.get("auroc"), m.get("loss")]
        if baselines:
            r.insert(2, float(np.mean(list(baselines.values()))) if task == "average" else baselines.get(task))
        rows.append(r)
    return Table(cols, rows)


def _error_captions(enc: dict, targets: np.ndarray, preds: np.ndarray, conf: np.ndarray, idx: np.ndarray) -> list:
    """'gender: Women -> Men 81%' per wrong task of each image (at most three lines)."""
    tasks = list(enc)
    out = []
    for i in idx:
        wrong = [j for j in range(len(tasks)) if targets[i, j] >= 0 and preds[i, j] != targets[i, j]]
        lines = [f"{plots.short(tasks[j], 14)}: {plots.short(enc[tasks[j]][targets[i, j]], 13)} -> "
                 f"{plots.short(enc[tasks[j]][preds[i, j]], 13)} {conf[i, j]:.0%}" for j in wrong[:3]]
        if len(wrong) > 3:
            lines.append(f"+{len(wrong) - 3} more")
        out.append("\n".join(lines))
    return out


def error_section(wrong_rows, rows, prepared: Prepared, enc: dict, targets, preds, conf, fig: Path,
                  cfg: FashionRunConfig, checkpoint: Path | None) -> Section:
    """The first misclassified images, each beside the heat map of its first wrong attribute's prediction
    (`explain.error_maps` of them), then more without."""
    from vislab.core.report import Figure
    tasks = list(enc)
    n_maps = min(cfg.explain.error_maps, len(wrong_rows)) if checkpoint is not None else 0
    shown = wrong_rows[:24 if not n_maps else n_maps]
    images = np.asarray(prepared.images[rows[shown]]) if len(shown) else np.zeros((0, 3, 8, 8), np.uint8)
    captions = _error_captions(enc, targets, preds, conf, shown)
    note = "Each image lists its wrong attributes as task: true -> predicted, with the model's confidence in its "
    note += "prediction."
    if n_maps:
        from vislab.labs.fashion.explain import error_maps
        first_wrong = [tasks[next(j for j in range(len(tasks)) if targets[i, j] >= 0 and preds[i, j] != targets[i, j])]
                       for i in shown]
        net, meta = load_model(checkpoint)
        maps = error_maps(net, meta, images, first_wrong, cfg.explain.layer)
        images = [im for pair in zip(list(images), maps) for im in pair]
        captions = [c for pair in zip(captions, [f"{cfg.explain.method}: {t}\n"
                                                 f"{plots.short(enc[t][preds[i, tasks.index(t)]], 18)}"
                                                 for i, t in zip(shown, first_wrong)]) for c in pair]
        note += (" Beside each, the heat map of its first wrong attribute's prediction: where the model looked "
                 "when it chose the wrong label.")
    err = plots.error_examples(images, [], [], fig / "errors.png", "", ncols=6 if n_maps else 4, captions=captions)
    return Section("Error examples", f"{len(wrong_rows)} of {len(rows)} scored images have at least one wrong "
                   f"attribute; the first {len(shown)} are shown.", images=[Figure(err, note, "wide")])


def write_run_report(run_dir: Path, prepared: Prepared, cfg: FashionRunConfig, metrics: dict, raw: dict,
                     rows: np.ndarray, baselines: dict, history: list[dict] | None, seconds: float | None,
                     scope: str = "the test split", steps_dir: Path | None = None,
                     review: dict | None = None, checkpoint: Path | None = None, deletion: dict | None = None,
                     intervals: dict | None = None) -> Path:
    """The run report, what matters first: the summary card, per-class tables, curves, confusion, ROC, errors,
    the data, the hyperparameters that ran. `steps_dir` holds the training run's steps.csv (default run_dir)."""
    from vislab.core.metrics import per_class_report
    from vislab.core.report import Figure
    from vislab.core.summary import best_epoch, hyperparameter_table, per_class_sections, summary_card
    fig = run_dir / "figures"
    fig.mkdir(exist_ok=True)
    enc = prepared.encoders
    tasks = list(enc)
    targets = raw["targets"]
    probs = {t: torch.from_numpy(raw["outputs"][t]).float().softmax(-1).numpy() for t in tasks}
    preds = np.stack([probs[t].argmax(1) for t in tasks], 1)
    conf = np.stack([probs[t].max(1) for t in tasks], 1)
    known = targets >= 0
    per_class = {t: per_class_report(targets[known[:, j], j], preds[known[:, j], j], enc[t])
                 for j, t in enumerate(tasks)}
    tc = cfg.train.filled()
    sections = [summary_card(history, cfg.train.monitor, cfg.train.monitor_mode, tc.epochs, metrics, baselines,
                             per_class, scope, cfg.train.max_steps),
                Section("Metrics", f"Every metric of every task on {scope}.",
                        tables=[metrics_table(metrics, baselines)] + ([intervals_table(metrics, intervals)]
                                                                      if intervals else [])),
                per_class_sections(per_class)]
    if history:
        best = best_epoch(history, cfg.train.monitor, cfg.train.monitor_mode)
        curves = plots.training_curves(history, fig / "curves.png", "Training and validation",
                                       best_epoch=best, steps=read_steps(steps_dir or run_dir))
        sections.append(Section("Training curves", images=[Figure(
            curves, "Loss, accuracy and macro F1 (averaged over the tasks) on the training and validation splits; "
            "the dashed line marks the best epoch, whose checkpoint is evaluated. Runs under three epochs are "
            "drawn per optimizer step.", "wide")],
            tables=[Table(["epoch", "train loss", "val loss", "val accuracy", "val F1", "images/s"],
                          [[h["epoch"], h.get("train_loss"), h.get("val_loss"), h.get("val_accuracy"),
                            h.get("val_f1"), h.get("train_images_per_s")] for h in history])]))
    cm_imgs, roc_imgs = [], []
    aucs = [metrics[t].get("auroc", 0.0) for t in tasks]
    roc_small = all(a >= 0.99 for a in aucs)
    for j, task in enumerate(tasks):
        k = known[:, j]
        c = len(enc[task])
        cm = np.bincount(targets[k, j] * c + preds[k, j], minlength=c * c).reshape(c, c)
        cm_imgs.append(Figure(plots.confusion_matrix(cm, enc[task], fig / f"confusion_{task}.png", task),
                              f"{task}: each row is a true class; a cell is the share of that class predicted as "
                              "the column's class, with its count in brackets."))
        roc_imgs.append(Figure(plots.roc_curves(probs[task][k], targets[k, j], enc[task], fig / f"roc_{task}.png",
                                                task),
                               f"{task}: one-vs-rest ROC, micro-average AUC {aucs[j]:.3f}.",
                               "small" if roc_small else "normal"))
    sections.append(Section("Confusion matrices", "With many classes the most frequent are shown and the rest "
                            "pooled as 'other'.", images=cm_imgs))
    sections.append(Section("ROC curves", "Every task's ROC-AUC is at least 0.99: the curves hug the top-left "
                            "corner." if roc_small else "One-vs-rest, with the micro average over classes.",
                            images=roc_imgs))
    wrong_rows = np.flatnonzero((known & (preds != targets)).any(1))
    if review:
        from vislab.labs.fashion.review_report import review_section
        sections.append(review_section(review, probs, targets, tasks, fig, scope))
    sections.append(error_section(wrong_rows, rows, prepared, enc, targets, preds, conf, fig, cfg, checkpoint))
    if deletion:
        from vislab.labs.fashion.explain import deletion_section
        sections.append(deletion_section(deletion, cfg.explain))
    counts = class_counts(prepared)
    colour = next((s for s in prepared.steps if s.table), None)
    data_tables = [Table(["step", "removed", "remaining", "detail"], prepared.summary_rows()),
                   Table(["task", "classes", "largest class", "smallest class"],
                         [[t, len(c), f"{max(c, key=c.get)} ({max(c.values())})",
                           f"{min(c, key=c.get)} ({min(c.values())})"] for t, c in counts.items()])]
    if colour is not None:
        data_tables.append(Table(["raw colour", "merged into", "rows"], colour.table,
                                 caption=f"{cfg.data.colour_col}: {colour.detail} (data.merge_colours)"))
    sections.append(Section("Data", "The cleaning steps, each counted, and the classes of the scored data.",
                            tables=data_tables,
                            images=[Figure(plots.class_distribution(counts[t], fig / f"classes_{t}.png", t),
                                           f"{t}: images per class", "small") for t in enc]))
    sections.append(Section("Hyperparameters", "What the run trained with: every field the recipe fills in, "
                            "resolved, and where it came from.",
                            tables=[hyperparameter_table(cfg.train)]))
    sections.append(Section("Configuration",
                            tables=[Table(["field", "value"], _flat_cfg(cfg.model_dump(mode="json")))]))
    meta = {"evaluated": scope, "created": dt.datetime.now().isoformat(timespec="seconds"), "hardware": hardware(),
            "backbone": cfg.model.backbone, "recipe": cfg.train.recipe,
            "image size (h x w)": "x".join(map(str, cfg.data.image_size))}
    if seconds is not None:
        meta["training wall time"] = f"{seconds:.0f} s"
    html, _ = write_report(run_dir, f"vislab fashion run: {run_dir.name}", sections, meta)
    return html


ROW_FIELDS = ("root", "csv", "image_dir", "image_col", "image_ext", "label_cols", "min_samples", "merge_colours",
              "colour_col", "split", "stratify_col", "seed", "limit", "synthetic_n")
"""Data config fields that decide which rows a run has and how they are split."""


def same_rows(a, b) -> bool:
    """Whether two data configs select the same rows and split (then `--split test` means the training's)."""
    return all(getattr(a, f) == getattr(b, f) for f in ROW_FIELDS)


def evaluate(checkpoint: str | Path, cfg: FashionRunConfig | None = None, split: str | None = None,
             out: str | Path | None = None, progress: bool = True, partial: bool = False) -> dict:
    """Evaluate a checkpoint (or a run folder's best) on its own data split, or on other data (cfg.data).

    On the training data, `split` (default test) is the training's split, with its cleaning. On other data (or
    `split="all"`) every row whose labels the checkpoint knows is scored: the rare-class filter is a training
    step only, rows with labels unseen in training are counted per task and left out (with `partial`: scored
    on the tasks whose labels are known). The report says which rows were scored and why any were not."""
    console = rich_console()
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_checked(path, "fashion")
    run_cfg = FashionRunConfig.model_validate(meta["config"])
    cfg = cfg or run_cfg
    check_tasks(meta, cfg.data.label_cols, path)
    # same resolution as training, whatever the data config says
    data_cfg = cfg.data.model_copy(update={"image_size": tuple(meta["image_size"])})
    own = same_rows(data_cfg, run_cfg.data)
    split = split or ("test" if own else "all")
    where = "the training data" if own else f"{data_cfg.root or 'the synthetic data'}"
    if own and split == "val":
        refit.refuse(meta, "--split val")
    if own and split != "all":
        prepared = prepare(data_cfg, progress=progress)
        rows_ok, unseen = remap_targets(prepared, meta["encoders"])
        prepared.splits = {k: np.intersect1d(v, rows_ok) for k, v in prepared.splits.items()}
        scope = f"the {split} split of {where} ({len(prepared.splits[split])} images, as in training)"
    else:
        prepared, unseen = prepare_eval(data_cfg, meta["encoders"], partial=partial, progress=progress)
        if split not in prepared.splits:
            raise DataError(f"{len(prepared.df)} rows are too few to split; evaluate them with --split all")
        read = prepared.steps[0].remaining
        what = "all rows" if split == "all" else f"a fresh {split} split (seed {data_cfg.seed}) of the rows"
        scope = (f"{what} of {where} whose labels the model knows: {len(prepared.splits[split])} of {read} "
                 "read" + (", partly scored where a label is unknown" if partial else ""))
    prepared.encoders = meta["encoders"]
    if unseen:
        console.print("[yellow]labels unseen in training: "
                      + "; ".join(f"{t}: {sum(c.values())} rows (" + ", ".join(f"{k} {v}" for k, v in c.items()) + ")"
                                  for t, c in unseen.items())
                      + (" (scored on their other tasks)" if partial else " (rows not scored; --partial scores "
                         "them on their other tasks)") + "[/yellow]")
    if len(prepared.splits[split]) == 0:
        raise DataError(f"no rows to evaluate in split {split!r}")
    run_dir = Path(out) if out else path.parent.parent / f"eval-{split}"
    run_dir.mkdir(parents=True, exist_ok=True)
    result = evaluate_run(run_dir, prepared, cfg, history=meta.get("history"), console=console, split=split,
                          path=path, scope=scope, train_counts=meta.get("train_class_counts"),
                          steps_dir=path.parent.parent, unseen=unseen)
    return result


# --------------------------------------------------------------------------- compare


def compare(cfg: FashionRunConfig, backbones: Sequence[str], recipes: Sequence[str], progress: bool = True) -> Path:
    """Train every backbone x recipe with the same budget (cfg.train epochs/max_steps) and report."""
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-compare")
    runs: dict[str, dict] = {}
    for bb in backbones:
        for rc in recipes:
            sub = cfg.model_copy(deep=True)
            sub.model.backbone, sub.train.recipe = bb, rc
            sub.out_dir, sub.name = str(out), f"{bb}-{rc}"
            run_dir = train(sub, progress=progress)
            m = json.loads((run_dir / "metrics.json").read_text())
            hist = ckpt.read_meta(run_dir / "checkpoints" / "last.safetensors").get("history", [])
            runs[f"{bb} / {rc}"] = {"backbone": bb, "recipe": rc, "metrics": m["metrics"], "dir": run_dir,
                                    "seconds": m.get("train_seconds"), "history": hist}
    write_comparison_report(out, runs, cfg)
    return out


def write_comparison_report(out: Path, runs: dict[str, dict], cfg: FashionRunConfig) -> Path:
    fig = out / "figures"
    fig.mkdir(exist_ok=True)
    tasks = [t for t in next(iter(runs.values()))["metrics"] if t != "average"]
    per_task = {name: {t: {"accuracy": r["metrics"][t]["accuracy"], "f1": r["metrics"][t]["f1"]} for t in tasks}
                for name, r in runs.items()}
    avg = {name: r["metrics"]["average"] for name, r in runs.items()}
    tc = cfg.train.filled()
    sections = [Section("Summary", f"Same budget for every run: {tc.epochs} epochs"
                        + (f", at most {cfg.train.max_steps} steps" if cfg.train.max_steps else "")
                        + f", batch {tc.batch_size}, image {cfg.data.image_size[0]}x{cfg.data.image_size[1]}.",
                        tables=[Table(["run", "avg accuracy", "avg macro F1", "avg precision", "avg recall", "avg loss",
                                       "train s"],
                                      [[n, a.get("accuracy"), a.get("f1"), a.get("precision"), a.get("recall"),
                                        a.get("loss"), runs[n]["seconds"]] for n, a in avg.items()])],
                        images=[plots.summary_bars({n: {k: a[k] for k in ("accuracy", "f1")} for n, a in avg.items()},
                                                   fig / "summary.png"),
                                comparison_bars(per_task, fig / "per_task.png")])]
    sections.append(Section("Per task",
                            tables=[Table(["run"] + [f"{t} acc" for t in tasks] + [f"{t} F1" for t in tasks],
                                          [[n] + [per_task[n][t]["accuracy"] for t in tasks]
                                           + [per_task[n][t]["f1"] for t in tasks] for n in runs])]))
    by_bb: dict[str, dict[str, dict]] = {}
    for r in runs.values():
        by_bb.setdefault(r["backbone"], {})[r["recipe"]] = {k: r["metrics"]["average"][k]
                                                             for k in ("accuracy", "f1", "precision", "recall")}
    abl = [ablation_bars(v, fig / f"ablation_{bb.replace('/', '_')}.png", f"{bb}: baseline vs tuned")
           for bb, v in by_bb.items() if len(v) > 1]
    if abl:
        sections.append(Section("Ablation: recipes", "baseline = Adam, constant lr, no weight decay, no clipping; "
                                "tuned = AdamW (wd 1e-4), backbone lr x0.1, OneCycle, clip 1.0.", images=abl))
    sections.append(Section("Runs", tables=[Table(["run", "report"], [[n, str(Path(r["dir"]) / "report.html")]
                                                                      for n, r in runs.items()])]))
    (out / "comparison.json").write_text(json.dumps({n: {k: v for k, v in r.items() if k != "dir"}
                                                        | {"dir": str(r["dir"])}
                                                     for n, r in runs.items()}, indent=2))
    html, _ = write_report(out, "vislab fashion comparison", sections,
                           {"created": dt.datetime.now().isoformat(timespec="seconds"), "hardware": hardware()})
    return html


# --------------------------------------------------------------------------- eda


def eda(cfg: FashionRunConfig, out: str | Path | None = None, progress: bool = True) -> Path:
    console = rich_console()
    prepared = prepare_data(cfg, progress)
    _print_cleaning(console, prepared)
    out = Path(out) if out else Path(cfg.out_dir) / f"{cfg.name}-eda"
    fig = out / "figures"
    fig.mkdir(parents=True, exist_ok=True)
    from vislab.core.report import Figure
    counts = class_counts(prepared)
    imgs = [Figure(plots.class_distribution(counts[t], fig / f"classes_{t}.png", t),
                   f"{t}: images per class ({len(counts[t])} classes)") for t in counts]
    summary = Table(["task", "classes", "largest", "smallest", "majority share", "train", "val", "test"],
                    [[t, len(c), f"{max(c, key=c.get)} ({max(c.values())})", f"{min(c, key=c.get)} ({min(c.values())})",
                      f"{100 * max(c.values()) / sum(c.values()):.1f}%", len(prepared.splits['train']),
                      len(prepared.splits['val']), len(prepared.splits['test'])] for t, c in counts.items()])
    save_summary(prepared, out / "data_summary.json")
    sample = np.asarray(prepared.images[: min(32, len(prepared.images))])
    grid = plots.image_grid(sample, fig / "samples.png", "",
                            labels=[prepared.df.iloc[i][cfg.data.label_cols[-1]] for i in range(len(sample))])
    cleaning = [Table(["step", "removed", "remaining", "detail"], prepared.summary_rows())]
    colour = next((s for s in prepared.steps if s.table), None)
    if colour is not None:
        cleaning.append(Table(["raw colour", "merged into", "rows"], colour.table,
                              caption=f"{cfg.data.colour_col}: {colour.detail} (data.merge_colours)"))
    write_report(out, "vislab fashion EDA", [
        Section("Summary", f"{len(prepared.df)} rows after cleaning, {len(counts)} tasks.", tables=[summary],
                card=True),
        Section("Cleaning", "Every step, with the rows it removed.", tables=cleaning),
        Section("Class distributions", images=imgs),
        Section("Samples", images=[Figure(grid, f"The first {len(sample)} images as the model sees them (resized "
                                          f"to {cfg.data.image_size[0]}x{cfg.data.image_size[1]}), with their "
                                          f"{cfg.data.label_cols[-1]}.", "wide")])],
        {"data": str(cfg.data.root or "synthetic")})
    console.print(summary_to_rich(summary))
    console.print(f"EDA report: {out / 'report.html'}")
    return out


def summary_to_rich(t: Table):
    from rich.table import Table as RTable
    r = RTable()
    for c in t.columns:
        r.add_column(c)
    for row in t.rows:
        r.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    return r
