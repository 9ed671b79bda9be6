"""Ablation rows against a reference, on the same test images: accuracy and macro F1 per task, the averages
with 95% bootstrap intervals, and the paired difference to the first row with its interval (the same 1,000
resamples for every row, so a difference the split cannot tell shows an interval around 0).

    python benchmarks/ablation_delta.py runs/def-base runs/def-base:tta runs/def-ema runs/def-ema:tta

A row is a run folder or checkpoint, with ":tta" to score it with flip test-time augmentation and ":heads" to
score a checkpoint with a neighbour vote by its heads alone, or an ensemble of them joined by "+"
(runs/a+runs/b:tta: the mean of their probabilities, each member decoded at its own size), or an ensemble file
(`vislab fashion ensemble`; shop.json:tta: scored by the predictor `tag` and `serve` run, photos decoded once
at the file's size). With `--split val` only the training images vote (the
validation images are in a `train+val` bank, and each would vote for itself). Every row must come from the same
data and split; each model is scored at its own image size (data.image_size), on the same test images in the
same order.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="RUN[+RUN...][:tta][:heads]")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from vislab.core.checkpoint import read_meta, resolve
    from vislab.core.metrics import bootstrap_difference, bootstrap_intervals
    from vislab.labs.fashion import lab, refit
    from vislab.labs.fashion.config import FashionRunConfig, split_differs
    from vislab.labs.fashion.ensemble import EnsemblePredictor, ensemble_metrics, score
    from vislab.labs.fashion.knn import bank_splits
    specs = [parse_row(r) for r in a.rows]
    from vislab.labs.fashion.ensemble_file import is_ensemble, read
    head = specs[0][0]
    head = read(head, verify=False)[1][0] if is_ensemble(head) else resolve(head.split("+")[0])[0]
    first = FashionRunConfig.model_validate(read_meta(head)["config"])
    by_size: dict = {}  # one decoded copy of the data per image size

    results, ref = [], None
    for run, tta, heads in specs:
        file = read(run, verify=False) if is_ensemble(run) else None  # (document, member files)
        members = file[1] if file else [resolve(m)[0] for m in run.split("+")]
        metas = [read_meta(p) for p in members]
        for path, meta in zip(members, metas):
            if a.split != "test":
                try:
                    refit.refuse(meta, f"{path} with --split {a.split}")
                except ValueError as e:
                    raise SystemExit(str(e)) from None
            cfg = FashionRunConfig.model_validate(meta["config"])
            differ = split_differs(cfg.data, first.data)
            if differ:
                raise SystemExit(f"{path}: its data config differs from {specs[0][0]}'s in {differ}: "
                                 "not the same split")
        cfg = FashionRunConfig.model_validate(metas[0]["config"])
        size = tuple(file[0]["image_size"]) if file else tuple(cfg.data.image_size)
        if size not in by_size:
            by_size[size] = lab.prepare(cfg.data.model_copy(update={"image_size": size}), progress=False)
        prepared = by_size[size]
        if any(meta["encoders"] != prepared.encoders for meta in metas):
            raise SystemExit(f"{run}: its label encoders differ from {specs[0][0]}'s: not the same data")
        rows = np.sort(prepared.splits[a.split])
        bank = None if heads else bank_splits(a.split)  # no image votes for itself
        if file:
            probs, _ = score(EnsemblePredictor.load(run, tta=tta, vote_splits=bank), prepared.images, rows)
            preds, targets = {t: p.argmax(1) for t, p in probs.items()}, prepared.targets[rows]
            metrics = ensemble_metrics(probs, targets, prepared.tasks)
        elif len(members) == 1:
            metrics, raw = lab.evaluate_checkpoint(members[0], prepared, rows, tta=tta,
                                                   vote_splits=bank)
            preds, targets = {t: o.argmax(1) for t, o in raw["outputs"].items()}, raw["targets"]
        else:
            from vislab.labs.fashion.distill import ensemble_probs
            probs = ensemble_probs(members, cfg.data, prepared, rows, tta=tta, by_size=by_size,
                                   vote_splits=bank)
            preds, targets = {t: p.argmax(1) for t, p in probs.items()}, prepared.targets[rows]
            metrics = ensemble_metrics(probs, targets, prepared.tasks)
        tasks = {t: (targets[:, j], preds[t], len(prepared.encoders[t])) for j, t in enumerate(prepared.encoders)}
        ref = ref or tasks
        if any(not np.array_equal(ref[t][0], tasks[t][0]) for t in tasks):
            raise SystemExit(f"{run}: its {a.split} images differ from {specs[0][0]}'s: no paired difference")
        hist = [h for meta in metas for h in meta.get("history", [])]
        sizes = " + ".join(dict.fromkeys("x".join(map(str, m["image_size"])) for m in metas))
        where = f"decoded at {size[0]}x{size[1]} for {sizes}" if file else sizes
        label = f"{run} @ {where}{' + flip TTA' if tta else ''}{' (heads alone)' if heads else ''}"
        results.append({"row": label, "metrics": metrics,
                        "intervals": bootstrap_intervals(tasks), "delta": bootstrap_difference(ref, tasks),
                        "train_seconds": sum(float(h.get("train_seconds", 0)) for h in hist),
                        "epochs": [meta.get("epoch") for meta in metas], "image_size": list(size)})
    names = list(prepared.encoders)
    print(f"{len(rows)} {a.split} images; accuracy %, [95% bootstrap interval], paired difference to the first row")
    print("\n| row | " + " | ".join(names) + " | average | [95%] | vs first [95%] | macro F1 | vs first [95%] | "
          "train s |")
    print("|---" * (len(names) + 7) + "|")
    for r in results:
        m, iv, d = r["metrics"], r["intervals"]["average"], r["delta"]["average"]
        print(f"| {r['row']} | " + " | ".join(f"{100 * m[t]['accuracy']:.1f}" for t in names)
              + f" | {100 * m['average']['accuracy']:.2f}"
              + f" | [{100 * iv['accuracy'][0]:.2f}, {100 * iv['accuracy'][1]:.2f}]"
              + f" | [{100 * d['accuracy'][0]:+.2f}, {100 * d['accuracy'][1]:+.2f}]"
              + f" | {100 * m['average']['f1']:.2f} | [{100 * d['f1'][0]:+.2f}, {100 * d['f1'][1]:+.2f}]"
              + f" | {r['train_seconds']:.0f} |")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2, default=str))


def parse_row(row: str) -> tuple[str, bool, bool]:
    """'runs/a+runs/b:tta:heads' -> ('runs/a+runs/b', tta, heads alone); the suffixes in either order."""
    tta = heads = False
    while row.endswith((":tta", ":heads")):
        if row.endswith(":tta"):
            row, tta = row.removesuffix(":tta"), True
        else:
            row, heads = row.removesuffix(":heads"), True
    return row, tta, heads


if __name__ == "__main__":
    main()
