"""Inference backends in one run, one table: eager PyTorch float32 (channels_last), eager bf16 where the CPU
has it, torch.compile (--compile), ONNX Runtime float32 and int8 (files from `vislab export`).

For each: single-image latency p50/p95 (one decoded image through `predict_arrays`: the model plus the
softmax/top-k/caption step) and batch-64 throughput (images/s), interleaved over --rounds, medians; and the
model file's size. Real catalog photos, decoded once beforehand. Several checkpoints (e.g. one at 96x72 and
one at 128x96) make one table; ratios are against eager float32 of the same checkpoint.

    vislab export runs/fashion --out fashion.onnx && vislab export runs/fashion --int8 --out fashion.int8.onnx
    python benchmarks/bench_infer.py --checkpoint runs/fashion --onnx fashion.onnx --int8 fashion.int8.onnx
    python benchmarks/bench_infer.py --checkpoint runs/fashion runs/fashion-128 --export exports/ --compile

--export DIR writes (or reuses, when newer than the checkpoint) DIR/<run>.onnx and DIR/<run>.int8.onnx.
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


EAGER = "torch float32 (eager, channels_last)"


def exported(checkpoint: str, folder: Path) -> tuple[str, str]:
    """DIR/<run>.onnx and DIR/<run>.int8.onnx of a checkpoint, exported unless newer ones are there."""
    from vislab.core.checkpoint import resolve
    from vislab.product.export import export_onnx
    from vislab.product.quantize import export_int8
    ck, run_dir = resolve(checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    fp32, int8 = folder / f"{run_dir.name}.onnx", folder / f"{run_dir.name}.int8.onnx"
    for f, make in ((fp32, lambda: export_onnx(ck, fp32)), (int8, lambda: export_int8(ck, int8))):
        if not f.is_file() or f.stat().st_mtime < ck.stat().st_mtime:
            print(f"exporting {f} ...", flush=True)
            make()
    return str(fp32), str(int8)


def candidates(checkpoint: str, files, onnx: str | None, int8: str | None, compile_: bool, bf16: bool) -> dict:
    """{(size, backend): (predictor, model file, 64 decoded images at the checkpoint's size)}."""
    import torch

    from vislab.core.checkpoint import resolve
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.onnx_predictor import OnnxPredictor
    base = Predictor.load(checkpoint)
    ck = resolve(checkpoint)[0]
    size = f"{base.image_size[0]}x{base.image_size[1]}"
    x = base.preprocess(files).numpy()
    out = {(size, EAGER): (base, ck, x)}
    if bf16:
        out[(size, "torch bf16 (eager)")] = (Predictor.load(checkpoint, precision="bf16"), ck, x)
    if compile_:
        c = Predictor.load(checkpoint)
        c.net = torch.compile(c.net, dynamic=False)
        t = time.perf_counter()
        c.predict_arrays(x[:1])
        c.predict_arrays(x)
        print(f"torch.compile at {size}: {time.perf_counter() - t:.0f} s to compile (batch 1 and 64)", flush=True)
        out[(size, "torch float32, torch.compile")] = (c, ck, x)
    if onnx:
        out[(size, "ONNX Runtime float32")] = (OnnxPredictor(onnx), Path(onnx), x)
    if int8:
        out[(size, "ONNX Runtime int8")] = (OnnxPredictor(int8), Path(int8), x)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, nargs="+", help="Run folders or checkpoints")
    ap.add_argument("--onnx", default=None, help="float32 .onnx of the (one) checkpoint")
    ap.add_argument("--int8", default=None, help="int8 .onnx of the (one) checkpoint")
    ap.add_argument("--export", type=Path, default=None, help="Export (or reuse) both .onnx files of each checkpoint "
                                                              "into this folder")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fashion-products" / "images"))
    ap.add_argument("--compile", action="store_true", help="Also time torch.compile (slow to compile on a CPU)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=100, help="Single-image predictions per round")
    ap.add_argument("--reps", type=int, default=8, help="Batches of 64 per round")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    import torch

    from vislab.core.data.paths import folder_images
    from vislab.labs.fashion.predict import bf16_native
    if len(a.checkpoint) > 1 and (a.onnx or a.int8):
        ap.error("--onnx/--int8 name the files of one checkpoint; with several, use --export DIR")
    files = folder_images(Path(a.data))[:64]
    backends = {}
    for c in a.checkpoint:
        onnx, int8 = (a.onnx, a.int8) if not a.export else exported(c, a.export)
        backends |= candidates(c, files, onnx, int8, a.compile, bf16_native())
    first = next(iter(backends.values()))[0]
    print(f"machine: {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), onnxruntime {version('onnxruntime')}; "
          f"{first.meta['backbone']}; {a.rounds} rounds of {a.runs} single images and {a.reps} batches of 64")
    lat: dict[tuple, list[float]] = {k: [] for k in backends}
    thr: dict[tuple, list[float]] = {k: [] for k in backends}
    for _ in range(a.rounds):
        for key, (p, _, x) in backends.items():
            lat[key] += latency(p, x[:1], a.runs)
            thr[key].append(throughput(p, x, a.reps))
    print("\n| size | backend | single image p50 ms | p95 ms | p50 vs eager | batch 64 images/s | vs eager | file MB |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for (size, name), (_, f, _) in backends.items():
        ref = (size, EAGER)
        p50_ref, thr_ref = np.percentile(lat[ref], 50), np.median(thr[ref])
        key = (size, name)
        p50, p95, t = np.percentile(lat[key], 50), np.percentile(lat[key], 95), np.median(thr[key])
        mb = f.stat().st_size / 2**20
        rows.append({"size": size, "backend": name, "p50_ms": p50, "p95_ms": p95, "images_per_s": t, "mb": mb})
        print(f"| {size} | {name} | {p50:.2f} | {p95:.2f} | {p50 / p50_ref:.2f}x | {t:.0f} | {t / thr_ref:.2f}x | "
              f"{mb:.1f} |")
    if a.json:
        a.json.write_text(json.dumps({"machine": platform.platform(), "settings": vars(a) | {"json": str(a.json)},
                                      "results": rows}, indent=2, default=str))


if __name__ == "__main__":
    main()
