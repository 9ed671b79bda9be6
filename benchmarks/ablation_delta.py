"""Ablation rows against a reference, on the same test images: accuracy and macro F1 per task, the averages
with 95% bootstrap intervals, and the paired difference to the first row with its interval (the same 1,000
resamples for every row, so a difference the split cannot tell shows an interval around 0).

    python benchmarks/ablation_delta.py runs/def-base runs/def-base:tta runs/def-ema runs/def-ema:tta

A row is a run folder or checkpoint, with ":tta" to score it with flip test-time augmentation. Every row must
come from the same data and split; each row is scored at its own image size (data.image_size), on the same
test images in the same order.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="RUN[:tta]")
    ap.add_argument("--split", default="test")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    from vislab.core.checkpoint import read_meta, resolve
    from vislab.core.metrics import bootstrap_difference, bootstrap_intervals
    from vislab.labs.fashion import lab
    from vislab.labs.fashion.config import FashionRunConfig
    specs = [(r.removesuffix(":tta"), r.endswith(":tta")) for r in a.rows]
    first = FashionRunConfig.model_validate(read_meta(resolve(specs[0][0])[0])["config"])
    by_size: dict = {}  # one decoded copy of the data per image size

    def data_fields(cfg) -> dict:  # what decides the rows and labels; the image size and caches do not
        return {k: v for k, v in cfg.data.model_dump(mode="json").items()
                if k not in ("image_size", "cache_dir", "workers")}

    results, ref = [], None
    for run, tta in specs:
        path = resolve(run)[0]
        meta = read_meta(path)
        cfg = FashionRunConfig.model_validate(meta["config"])
        differ = sorted(k for k, v in data_fields(cfg).items() if data_fields(first).get(k) != v)
        if differ:
            raise SystemExit(f"{run}: its data config differs from {specs[0][0]}'s in {differ}: not the same split")
        size = tuple(cfg.data.image_size)
        if size not in by_size:
            by_size[size] = lab.prepare_data(cfg, progress=False)
        prepared = by_size[size]
        if meta["encoders"] != prepared.encoders:
            raise SystemExit(f"{run}: its label encoders differ from {specs[0][0]}'s: not the same data")
        rows = prepared.splits[a.split]
        metrics, raw = lab.evaluate_checkpoint(path, prepared, rows, tta=tta)
        tasks = {t: (raw["targets"][:, j], raw["outputs"][t].argmax(1), len(prepared.encoders[t]))
                 for j, t in enumerate(prepared.encoders)}
        ref = ref or tasks
        if any(not np.array_equal(ref[t][0], tasks[t][0]) for t in tasks):
            raise SystemExit(f"{run}: its {a.split} images differ from {specs[0][0]}'s: no paired difference")
        hist = meta.get("history", [])
        results.append({"row": f"{run} @ {size[0]}x{size[1]}{' + flip TTA' if tta else ''}", "metrics": metrics,
                        "intervals": bootstrap_intervals(tasks), "delta": bootstrap_difference(ref, tasks),
                        "train_seconds": sum(float(h.get("train_seconds", 0)) for h in hist),
                        "epochs": meta.get("epoch"), "image_size": list(size)})
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


if __name__ == "__main__":
    main()
