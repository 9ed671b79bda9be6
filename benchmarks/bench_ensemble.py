"""What an ensemble file costs in tagging speed: each member alone against the ensemble, on the same images.

    python benchmarks/bench_ensemble.py runs/shop.ensemble.json --tta

Every row tags the first --n images of the catalog with `vislab.product.tag.tag` (worker processes decode and
predict whole batches, the default), members first, then the ensemble, in interleaved rounds; prints images/s
(median over the rounds) and the ratio to the first member, with the machine, torch version and settings.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ensemble", help="An ensemble file (vislab fashion ensemble)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-products" / "images"))
    ap.add_argument("--n", type=int, default=1000, help="Images tagged by each row")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="Worker processes (default: one per core)")
    ap.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; the median is reported")
    ap.add_argument("--tta", action="store_true", help="Flip test-time augmentation in every row")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch

    from vislab.core.data.paths import folder_images
    from vislab.labs.fashion.ensemble import EnsemblePredictor
    from vislab.labs.fashion.ensemble_file import read
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.inputs import TagInput
    from vislab.product.outputs import TagWriter
    from vislab.product.tag import default_workers, tag
    files = folder_images(Path(a.data))[: a.n]
    workers = default_workers() if a.workers is None else a.workers
    doc, members = read(a.ensemble)
    rows = {f"member {i + 1}: {m['backbone']} at {m['image_size'][0]}x{m['image_size'][1]}":
            Predictor.load(f, tta=a.tta) for i, (m, f) in enumerate(zip(doc["members"], members))}
    rows[f"ensemble (decoded at {doc['image_size'][0]}x{doc['image_size'][1]})"] = EnsemblePredictor.load(
        a.ensemble, tta=a.tta)
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}, vislab {version('vislab')}; {len(files)} images from {a.data}; batch "
          f"{a.batch_size}, {workers} workers; flip TTA {'on' if a.tta else 'off'}")

    def run_tag(pred) -> float:
        with tempfile.TemporaryDirectory() as d, TagWriter(Path(d) / "tags.csv", pred.tasks) as w:
            s = tag(pred, [TagInput(str(f)) for f in files], w, a.batch_size, workers=workers, progress=False)
            assert s.tagged == len(files), s
            return s.tagged / s.seconds

    for pred in rows.values():  # warm-up
        pred.predict_batch([str(f) for f in files[: a.batch_size]])
    runs: dict[str, list[float]] = {}
    for _ in range(a.rounds):  # interleaved: a slower moment of a shared machine slows every row alike
        for name, pred in rows.items():
            runs.setdefault(name, []).append(run_tag(pred))
    results = {k: float(np.median(v)) for k, v in runs.items()}
    base = next(iter(results.values()))
    print(f"\n| row | images/s (median of {a.rounds}) | all rounds | vs member 1 |")
    print("|---|---|---|---|")
    for name, v in results.items():
        print(f"| {name} | {v:.1f} | {', '.join(f'{x:.0f}' for x in runs[name])} | {v / base:.2f}x |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__,
                                      "settings": vars(a) | {"json": str(a.json)}, "images_per_s": results,
                                      "rounds": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
