"""Inference backends in one run, one table: eager PyTorch float32 (channels_last), eager bf16 where the CPU
has it, torch.compile (--compile), ONNX Runtime float32 and int8 (files from `vislab export`).

For each: single-image latency p50/p95 (one decoded image through `predict_arrays`: the model plus the
softmax/top-k/caption step) and batch-64 throughput (images/s), interleaved over --rounds, medians; and the
model file's size. Real catalog photos, decoded once beforehand.

    vislab export runs/fashion --out fashion.onnx && vislab export runs/fashion --int8 --out fashion.int8.onnx
    python benchmarks/bench_infer.py --checkpoint runs/fashion --onnx fashion.onnx --int8 fashion.int8.onnx
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def latency(p, x1: np.ndarray, runs: int) -> list[float]:
    for _ in range(5):
        p.predict_arrays(x1)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        p.predict_arrays(x1)
        out.append((time.perf_counter() - t) * 1000)
    return out


def throughput(p, xb: np.ndarray, reps: int) -> float:
    p.predict_arrays(xb)
    t = time.perf_counter()
    for _ in range(reps):
        p.predict_arrays(xb)
    return reps * len(xb) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--onnx", default=None, help="float32 .onnx of the same checkpoint")
    ap.add_argument("--int8", default=None, help="int8 .onnx of the same checkpoint")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-products" / "images"))
    ap.add_argument("--compile", action="store_true", help="Also time torch.compile (slow to compile on a CPU)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=100, help="Single-image predictions per round")
    ap.add_argument("--reps", type=int, default=8, help="Batches of 64 per round")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from vislab.core.checkpoint import resolve
    from vislab.core.data.paths import folder_images
    from vislab.labs.fashion.predict import Predictor, bf16_native
    from vislab.product.onnx_predictor import OnnxPredictor
    base = Predictor.load(a.checkpoint)
    xb = base.preprocess(folder_images(Path(a.data))[:64]).numpy()
    x1 = xb[:1]
    ck = resolve(a.checkpoint)[0]
    backends = {"torch float32 (eager, channels_last)": (base, ck)}
    if bf16_native():
        backends["torch bf16 (eager)"] = (Predictor.load(a.checkpoint, precision="bf16"), ck)
    if a.compile:
        c = Predictor.load(a.checkpoint)
        c.net = torch.compile(c.net)
        backends["torch float32, torch.compile"] = (c, ck)
    if a.onnx:
        backends["ONNX Runtime float32"] = (OnnxPredictor(a.onnx), Path(a.onnx))
    if a.int8:
        backends["ONNX Runtime int8"] = (OnnxPredictor(a.int8), Path(a.int8))
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {version('onnxruntime')}; "
          f"{base.meta['backbone']} at {base.image_size[0]}x{base.image_size[1]}; {a.rounds} rounds of "
          f"{a.runs} single images and {a.reps} batches of 64")
    lat: dict[str, list[float]] = {k: [] for k in backends}
    thr: dict[str, list[float]] = {k: [] for k in backends}
    for _ in range(a.rounds):
        for name, (p, _) in backends.items():
            lat[name] += latency(p, x1, a.runs)
            thr[name].append(throughput(p, xb, a.reps))
    ref = backends and next(iter(backends))
    p50_ref, thr_ref = np.percentile(lat[ref], 50), np.median(thr[ref])
    print("\n| backend | single image p50 ms | p95 ms | p50 vs eager | batch 64 images/s | vs eager | file MB |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, (_, f) in backends.items():
        p50, p95, t = np.percentile(lat[name], 50), np.percentile(lat[name], 95), np.median(thr[name])
        rows.append({"backend": name, "p50_ms": p50, "p95_ms": p95, "images_per_s": t, "mb": f.stat().st_size / 2**20})
        print(f"| {name} | {p50:.2f} | {p95:.2f} | {p50 / p50_ref:.2f}x | {t:.0f} | {t / thr_ref:.2f}x | "
              f"{f.stat().st_size / 2**20:.1f} |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "settings": vars(a) | {"json": str(a.json)},
                                      "results": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
