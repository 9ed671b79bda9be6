"""Choosing a Siamese setting on more than a handful of people: K-fold cross-validation by person.

A person split of the shared faces has 5 validation people, and over five splits their AUC/EER ranked the
levers of issue 19 almost opposite to the test people's. `cross_validate` trains the setting once per fold
of the split's training + validation people (`pairs.person_folds`), each time validating on the fold's
held-out people with the fold's *last* checkpoint (no choice of epoch on the people that score it), and
returns the mean and sd over folds. The split's test people are never read. `repeat_cv` does it on several
person splits (`vislab siamese cv`), the selection-side twin of `studies.repeat_splits` (the test side)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from vislab.core.engine import new_run_dir
from vislab.core.report import Section, Table, hardware, rich_console, write_report
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.data import FaceData, load_data, on_split
from vislab.labs.siamese.objective import SiameseObjective
from vislab.labs.siamese.pairs import person_folds


def fold_data(data: FaceData, folds: int, seed: int) -> list[FaceData]:
    """`data` once per fold: same images, the fold's train/val people, the split's test people."""
    return [replace(data, split=s) for s in person_folds(data.split, data.labels, folds, seed)]


def _held_out_scores(model, meta: dict, d: FaceData, tta: bool) -> dict:
    from vislab.labs.siamese.lab import split_embeddings
    from vislab.labs.siamese.metrics import pair_distances, verification_metrics
    e, lab, _ = split_embeddings(model, d, meta["mean"], meta["std"], "val", tta)
    v = verification_metrics(*pair_distances(e, lab, meta.get("distance", "euclidean")))
    return {"auc": v["auc"], "eer": v["eer"]}


def _sd(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _summary(rows: list[dict], key: str = "") -> dict:
    auc, eer = [r[f"{key}auc"] for r in rows], [r[f"{key}eer"] for r in rows]
    return {f"cv_{key}auc": float(np.mean(auc)), f"cv_{key}eer": float(np.mean(eer)),
            f"cv_{key}auc_sd": _sd(auc), f"cv_{key}eer_sd": _sd(eer)}


def cross_validate(cfg: SiameseRunConfig, data: FaceData, folds: int, out: str | Path,
                   progress: bool = False, baseline: bool = False) -> dict:
    """Train `cfg` on each fold (runs in out/fold-<k>) and score its held-out people: {"folds": [...],
    "cv_auc", "cv_eer" (means), "cv_auc_sd", "cv_eer_sd"}; each fold row has its validation people. With
    `baseline`, the untrained pretrained features on the same held-out people too (cv_baseline_auc, ...)."""
    from vislab.labs.siamese.lab import load_model, pretrained_features, train
    out = Path(out)
    tta = bool(cfg.train.filled().tta)
    untrained = pretrained_features(cfg) if baseline else None
    rows = []
    for k, d in enumerate(fold_data(data, folds, cfg.data.seed)):  # seeded by the split: same folds every setting
        run = train(cfg.model_copy(update={"name": f"fold-{k}", "out_dir": str(out)}), progress=progress,
                    report=False, data=d, run_dir=out / f"fold-{k}")
        model, meta, _ = load_model(run / "checkpoints" / "last.safetensors")
        row = {"fold": k, "val_people": [d.people[p] for p in d.split.people["val"]],
               **_held_out_scores(model, meta, d, tta),
               "train_seconds": sum(float(h.get("train_seconds", 0)) for h in meta.get("history", []))}
        if untrained:
            base = pretrained_features(cfg, d) if cfg.model.wccn is not None else untrained  # fit on the fold
            row.update({f"baseline_{m}": v for m, v in _held_out_scores(*base, d, False).items()})
        rows.append(row)
    return {"folds": rows, **_summary(rows), **(_summary(rows, "baseline_") if baseline else {})}


def repeat_cv(cfg: SiameseRunConfig, seeds=(42, 1, 2, 3, 4), folds: int = 3, baseline: bool = True,
              progress: bool = False, console=None) -> Path:
    """`cross_validate` on each person split (data.seed): per split and over splits, the mean CV AUC/EER of the
    setting on training + validation people only, and with `baseline` of the untrained features on the same
    held-out people. Every split's folds are checked before the first run. Writes cv.json and report.html
    into <out_dir>/<name>-cv."""
    console = console or rich_console()
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-cv")
    cfgs = [on_split(cfg, int(s)) for s in seeds]
    datas = [load_data(c, progress=progress) for c in cfgs]
    for d, c in zip(datas, cfgs):
        person_folds(d.split, d.labels, folds, c.data.seed)  # a bad --folds fails before any training
    rows = []
    for seed, c, d in zip(seeds, cfgs, datas):
        r = cross_validate(c, d, folds, out / f"seed-{seed}", progress, baseline)
        rows.append({"seed": int(seed), **r})
        console.print(f"split {seed}: {folds}-fold CV AUC {r['cv_auc']:.4f}, EER {100 * r['cv_eer']:.2f}%"
                      + (f" (untrained {r['cv_baseline_auc']:.4f}, {100 * r['cv_baseline_eer']:.2f}%)"
                         if baseline else ""))
    models = {"trained": ""} | ({"pretrained, no training": "baseline_"} if baseline else {})
    summary = {name: {m: {"mean": float(np.mean([r[f"cv_{key}{m}"] for r in rows])),
                          "std": _sd([r[f"cv_{key}{m}"] for r in rows])} for m in ("auc", "eer")}
               for name, key in models.items()}
    desc = SiameseObjective.from_config(cfg).describe()
    (out / "cv.json").write_text(json.dumps({"seeds": [int(s) for s in seeds], "folds": folds, "loss": desc,
                                             "config": cfg.model_dump(mode="json"), "splits": rows,
                                             "summary": summary}, indent=2))
    fmt = lambda s, k, scale=1.0: f"{scale * s[k]['mean']:.4f} ± {scale * s[k]['std']:.4f}"  # noqa: E731
    write_report(out, "Siamese lab: cross-validation by person", [
        Section("Mean ± standard deviation over person splits",
                f"seeds {list(seeds)}; {folds} folds of each split's training + validation people, each fold's "
                f"last checkpoint scored on its held-out people; test people never read; {desc}",
                [Table(["model", "folds", "CV AUC", "CV EER %"],
                       [[name, folds, fmt(s, "auc"), fmt(s, "eer", 100)] for name, s in summary.items()])]),
        Section("Every split and fold", "", [Table(
            ["split seed", "fold", "validation people", "AUC", "EER %", *(["untrained AUC", "untrained EER %"]
                                                                         if baseline else [])],
            [[r["seed"], f["fold"], len(f["val_people"]), f["auc"], 100 * f["eer"],
              *([f["baseline_auc"], 100 * f["baseline_eer"]] if baseline else [])]
             for r in rows for f in r["folds"]])])], {"hardware": hardware()})
    for name, s in summary.items():
        console.print(f"{name}: {folds}-fold CV over {len(seeds)} splits: AUC {fmt(s, 'auc')}, "
                      f"EER % {fmt(s, 'eer', 100)}")
    return out
