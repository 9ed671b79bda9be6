"""Accuracy against training time, one curve per fashion run: validation accuracy (average over the tasks) after
each epoch against the cumulative training seconds, and the run's test accuracy (metrics.json) as a star at the
training time of the epoch whose checkpoint was tested (the best by the run's `train.monitor`).

    python benchmarks/time_accuracy.py runs/def-base=default runs/def-6ep="6 epochs" --out docs/labs/img/time.png

A row is RUN or RUN=LABEL. Times are those the runs measured on their own machine (history.csv train_seconds);
compare runs made on one machine, alone.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml


def curve(run: Path) -> dict:
    with open(run / "history.csv", newline="") as f:
        hist = list(csv.DictReader(f))
    if not hist:
        raise SystemExit(f"{run}: history.csv has no epochs")
    seconds, total = [], 0.0
    for h in hist:
        total += float(h["train_seconds"])
        seconds.append(total)
    out = {"seconds": seconds, "values": [100 * float(h["val_accuracy"]) for h in hist]}
    metrics = run / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        if m.get("split") == "test":
            from vislab.core.summary import best_epoch
            conf = run / "config.yaml"
            train = (yaml.safe_load(conf.read_text()) or {}).get("train", {}) if conf.is_file() else {}
            best = best_epoch(hist, train.get("monitor", "val_loss"), train.get("monitor_mode"))
            at = seconds[[int(h["epoch"]) for h in hist].index(best)] if best is not None else total
            out["final"] = (at, 100 * float(m["metrics"]["average"]["accuracy"]))
            out["tta"] = bool(m.get("tta"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="RUN or RUN=LABEL")
    ap.add_argument("--out", type=Path, default=Path("time_accuracy.png"))
    ap.add_argument("--title", default="Fashion attributes: accuracy against training time (2 CPU cores)")
    a = ap.parse_args()
    from vislab.core.plots import time_curves
    curves = {}
    for r in a.rows:
        run, _, label = r.partition("=")
        c = curve(Path(run))
        curves[label or Path(run).name] = c
        fin = f", test {c['final'][1]:.2f}" if "final" in c else ""
        print(f"{label or run}: {len(c['values'])} epochs, {c['seconds'][-1] / 60:.1f} min, "
              f"best val {max(c['values']):.2f}{fin}")
    print(time_curves(curves, a.out, a.title))


if __name__ == "__main__":
    main()
