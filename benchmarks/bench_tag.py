"""Batch tagging against one-image-at-a-time prediction, on the shared catalog, in one run.

    one at a time   `Predictor.predict(path)` per image: decode, one forward pass of batch 1, as a script
                    calling `vislab.load(ckpt).predict` in a loop does
    tag, workers=0  `vislab.product.tag.tag`: decoding and batched inference in this process (all threads)
    tag             worker processes decode and predict whole batches, one thread each (the default)
    tag bf16        the same with --precision bf16, where the CPU runs bfloat16 natively
    tag --ray       optional (--ray): the Ray Data stage on a local cluster of this machine's cores

Every mode tags the same images (the first --n of the catalog, decoded from JPEG each time: no cache).
Prints images/s and the ratio to one at a time, with the machine, torch version and settings.

    python benchmarks/bench_tag.py --checkpoint runs/fashion
    python benchmarks/bench_tag.py --checkpoint runs/fashion --n 4000 --ray --json tag.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="A fashion run folder or .safetensors checkpoint")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-products" / "images"))
    ap.add_argument("--n", type=int, default=2000, help="Images tagged by each batch mode")
    ap.add_argument("--n-single", type=int, default=300, help="Images predicted one at a time")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=None, help="Decoding processes (default: one per core)")
    ap.add_argument("--rounds", type=int, default=3, help="Interleaved rounds; the median is reported")
    ap.add_argument("--onnx", default=None, help="Also time --backend onnx with this float32 .onnx file")
    ap.add_argument("--int8", default=None, help="Also time --backend onnx with this int8 .onnx file")
    ap.add_argument("--ray", action="store_true", help="Also time the Ray Data stage (needs vislab[ray])")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    import torch

    from vislab.core.data.paths import folder_images
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.inputs import TagInput
    from vislab.product.outputs import TagWriter
    from vislab.product.tag import default_workers, tag
    files = folder_images(Path(a.data))[: max(a.n, a.n_single)]
    workers = default_workers() if a.workers is None else a.workers
    pred = Predictor.load(a.checkpoint)
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), vislab {version('vislab')}; "
          f"model {pred.meta['backbone']} at {pred.image_size[0]}x{pred.image_size[1]}; images: {a.data}; "
          f"batch {a.batch_size}, {workers} workers (each decodes and predicts on one thread)")
    pred.predict_batch([str(f) for f in files[:a.batch_size]])  # warm-up
    runs: dict[str, list[float]] = {}

    def one_at_a_time():
        t = time.perf_counter()
        for f in files[: a.n_single]:
            pred.predict(f)
        return a.n_single / (time.perf_counter() - t)

    def run_tag(fn):
        with tempfile.TemporaryDirectory() as d, TagWriter(Path(d) / "tags.csv", pred.tasks) as w:
            items = [TagInput(str(f)) for f in files[: a.n]]
            s = fn(items, w)
            assert s.tagged == len(items), s
            return s.tagged / s.seconds

    modes = {"one at a time": one_at_a_time,
             "tag, workers=0": lambda: run_tag(lambda items, w: tag(pred, items, w, a.batch_size, workers=0,
                                                                     progress=False)),
             f"tag, workers={workers}": lambda: run_tag(lambda items, w: tag(pred, items, w, a.batch_size,
                                                                              workers=workers, progress=False))}
    from vislab.labs.fashion.predict import bf16_native
    if bf16_native():  # the --precision bf16 lever, where the CPU has it
        fast = Predictor.load(a.checkpoint, precision="bf16")
        modes[f"tag --precision bf16, workers={workers}"] = lambda: run_tag(
            lambda items, w: tag(fast, items, w, a.batch_size, workers=workers, progress=False))
    from vislab.product.onnx_predictor import OnnxPredictor
    for label, f in (("float32", a.onnx), ("int8", a.int8)):
        if f:
            op = OnnxPredictor(f)
            modes[f"tag --backend onnx ({label}), workers={workers}"] = lambda op=op: run_tag(
                lambda items, w: tag(op, items, w, a.batch_size, workers=workers, progress=False))
    for _ in range(a.rounds):  # interleaved: a slower moment of a shared machine slows every mode alike
        for name, fn in modes.items():
            runs.setdefault(name, []).append(fn())
    if a.ray:
        from vislab.product.ray_stage import init_ray, tag_with_ray
        init_ray()
        runs["tag --ray (local cluster)"] = [run_tag(lambda items, w: tag_with_ray(a.checkpoint, items, w,
                                                                                   a.batch_size, progress=False))]
    results = {k: float(np.median(v)) for k, v in runs.items()}
    base = results["one at a time"]
    print(f"\n| mode | images | images/s (median of {a.rounds}) | all rounds | vs one at a time |")
    print("|---|---|---|---|---|")
    for name, v in results.items():
        n = a.n_single if name == "one at a time" else a.n
        print(f"| {name} | {n} | {v:.1f} | {', '.join(f'{x:.0f}' for x in runs[name])} | {v / base:.2f}x |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "torch": torch.__version__,
                                      "settings": vars(a) | {"json": str(a.json)}, "images_per_s": results,
                                      "rounds": runs},
                                     indent=2, default=str))


if __name__ == "__main__":
    main()
