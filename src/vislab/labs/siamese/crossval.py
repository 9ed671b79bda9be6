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


def cross_validate(cfg: SiameseRunConfig, data: FaceData, folds: int, out: str | Path,
                   progress: bool = False) -> dict:
    """Train `cfg` on each fold (runs in out/fold-<k>) and score its held-out people: {"folds": [...],
    "cv_auc", "cv_eer" (means), "cv_auc_sd", "cv_eer_sd"}; each fold row has its validation people."""
    from vislab.labs.siamese.lab import load_model, split_embeddings, train
    from vislab.labs.siamese.metrics import pair_distances, verification_metrics
    out = Path(out)
    rows = []
    for k, d in enumerate(fold_data(data, folds, cfg.data.seed)):  # seeded by the split: same folds every setting
        run = train(cfg.model_copy(update={"name": f"fold-{k}", "out_dir": str(out)}), progress=progress,
                    report=False, data=d, run_dir=out / f"fold-{k}")
        model, meta, _ = load_model(run / "checkpoints" / "last.safetensors")
        e, lab, _ = split_embeddings(model, d, meta["mean"], meta["std"], "val", bool(cfg.train.filled().tta))
        v = verification_metrics(*pair_distances(e, lab, meta.get("distance", "euclidean")))
        rows.append({"fold": k, "val_people": [d.people[p] for p in d.split.people["val"]], "auc": v["auc"],
                     "eer": v["eer"], "train_seconds": sum(float(h.get("train_seconds", 0))
                                                           for h in meta.get("history", []))})
    auc, eer = np.array([r["auc"] for r in rows]), np.array([r["eer"] for r in rows])
    return {"folds": rows, "cv_auc": float(auc.mean()), "cv_eer": float(eer.mean()),
            "cv_auc_sd": float(auc.std(ddof=1)), "cv_eer_sd": float(eer.std(ddof=1))}


def repeat_cv(cfg: SiameseRunConfig, seeds=(42, 1, 2, 3, 4), folds: int = 3, progress: bool = False,
              console=None) -> Path:
    """`cross_validate` on each person split (data.seed): per split and over splits, the mean CV AUC/EER of the
    setting on training + validation people only. Every split's folds are checked before the first run.
    Writes cv.json and report.html into <out_dir>/<name>-cv."""
    console = console or rich_console()
    out = new_run_dir(cfg.out_dir, f"{cfg.name}-cv")
    cfgs = [on_split(cfg, int(s)) for s in seeds]
    datas = [load_data(c, progress=progress) for c in cfgs]
    for d, c in zip(datas, cfgs):
        person_folds(d.split, d.labels, folds, c.data.seed)  # a bad --folds fails before any training
    rows = []
    for seed, c, d in zip(seeds, cfgs, datas):
        r = cross_validate(c, d, folds, out / f"seed-{seed}", progress)
        rows.append({"seed": int(seed), **r})
        console.print(f"split {seed}: {folds}-fold CV AUC {r['cv_auc']:.4f}, EER {100 * r['cv_eer']:.2f}%")
    auc, eer = np.array([r["cv_auc"] for r in rows]), np.array([r["cv_eer"] for r in rows])
    sd = (lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0)  # noqa: E731
    summary = {"cv_auc": {"mean": float(auc.mean()), "std": sd(auc)}, "cv_eer": {"mean": float(eer.mean()),
                                                                               "std": sd(eer)}}
    desc = SiameseObjective.from_config(cfg).describe()
    (out / "cv.json").write_text(json.dumps({"seeds": [int(s) for s in seeds], "folds": folds, "loss": desc,
                                             "config": cfg.model_dump(mode="json"), "splits": rows,
                                             "summary": summary}, indent=2))
    fmt = lambda k, scale=1.0: f"{scale * summary[k]['mean']:.4f} ± {scale * summary[k]['std']:.4f}"  # noqa: E731
    write_report(out, "Siamese lab: cross-validation by person", [
        Section("Mean ± standard deviation over person splits",
                f"seeds {list(seeds)}; {folds} folds of each split's training + validation people, each fold's "
                f"last checkpoint scored on its held-out people; test people never read; {desc}",
                [Table(["folds", "CV AUC", "CV EER %"], [[folds, fmt("cv_auc"), fmt("cv_eer", 100)]])]),
        Section("Every split and fold", "", [Table(
            ["split seed", "fold", "validation people", "AUC", "EER %"],
            [[r["seed"], f["fold"], len(f["val_people"]), f["auc"], 100 * f["eer"]]
             for r in rows for f in r["folds"]])])], {"hardware": hardware()})
    console.print(f"{folds}-fold CV over {len(seeds)} splits: AUC {fmt('cv_auc')}, EER % {fmt('cv_eer', 100)}")
    return out
