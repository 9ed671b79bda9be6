"""CPU benchmark: MultiTaskNet training throughput (channels_last off/on, a few resolutions)
and prediction from a saved vislab checkpoint (single-image latency, batch throughput).

Training uses random weights and random input batches (the data pipeline is bench_data.py);
prediction decodes real JPEGs from the fashion data, as `vislab.load(path).predict(path)` does.

    python benchmarks/bench_train_predict.py                       # sizes 64x48,96x72,128x96, 10 steps
    python benchmarks/bench_train_predict.py --steps 3 --sizes 64x48 --json out.json
    python benchmarks/bench_train_predict.py --sizes 128x96,160x120 --train-blocks all,4,2   # partial fine-tuning
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from vislab.core import checkpoint as ckpt
from vislab.core.data.csv import read_csv
from vislab.core.objectives import ClassificationObjective
from vislab.labs.fashion.config import FashionRunConfig
from vislab.labs.fashion.model import MultiTaskNet
from vislab.labs.fashion.predict import Predictor, latency

DEFAULT_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "fashion-products"
TASKS = {"gender": 5, "masterCategory": 4, "subCategory": 33, "baseColour": 18, "season": 4, "articleType": 80}


def parse_size(s: str) -> tuple[int, int]:
    h, w = s.lower().split("x")
    return int(h), int(w)


def train_throughput(backbone: str, size, batch: int, steps: int, warmup: int, channels_last: bool,
                     train_blocks: int | None = None) -> float:
    """images/s of full AdamW training steps (forward, multi-task loss, backward, step); `train_blocks` as
    `model.train_blocks` (None: every layer trains)."""
    torch.manual_seed(0)
    net = MultiTaskNet(backbone, TASKS, pretrained=False, train_blocks=train_blocks).train()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3, weight_decay=1e-4)
    objective = ClassificationObjective(TASKS)
    xs = [torch.randn(batch, 3, *size) for _ in range(2)]
    ys = [torch.stack([torch.randint(0, n, (batch,)) for n in TASKS.values()], 1) for _ in range(2)]

    def step(i):
        x = xs[i % 2].contiguous(memory_format=torch.channels_last) if channels_last else xs[i % 2]
        opt.zero_grad(set_to_none=True)
        loss, _ = objective(net(x), ys[i % 2])
        loss.backward()
        opt.step()

    for i in range(warmup):
        step(i)
    t = time.perf_counter()
    for i in range(steps):
        step(i)
    return steps * batch / (time.perf_counter() - t)


def save_checkpoint(path: Path, backbone: str, size) -> Path:
    """A randomly initialised MultiTaskNet, saved with the metadata Predictor.load reads."""
    torch.manual_seed(0)
    net = MultiTaskNet(backbone, TASKS, pretrained=False)
    cfg = FashionRunConfig()
    cfg.model.backbone = backbone
    cfg.model.pretrained = False
    cfg.data.label_cols = list(TASKS)
    cfg.data.image_size = tuple(size)
    meta = {"lab": "fashion", "config": cfg.model_dump(mode="json"), "backbone": backbone, "tasks": TASKS,
            "encoders": {t: [f"{t}_{i}" for i in range(n)] for t, n in TASKS.items()},
            "image_size": list(size), "data_config": net.data_config}
    return ckpt.save_weights(path, net.state_dict(), meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder with styles.csv and images/ (default: %(default)s)")
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--sizes", default="64x48,96x72,128x96", help="training resolutions HxW, comma separated")
    ap.add_argument("--train-blocks", default="all",
                    help="model.train_blocks values to time (channels_last on), comma separated; all = every layer")
    ap.add_argument("--batch-size", type=int, default=32, help="training batch")
    ap.add_argument("--steps", type=int, default=10, help="timed training steps per setting")
    ap.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    ap.add_argument("--predict-size", type=parse_size, default=(96, 72), help="checkpoint image size HxW")
    ap.add_argument("--predict-images", type=int, default=256, help="images for batch prediction")
    ap.add_argument("--predict-batch", type=int, default=64)
    ap.add_argument("--latency-runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()

    root = args.data.resolve()
    if not (root / "styles.csv").is_file() or not (root / "images").is_dir():
        sys.exit(f"error: no fashion data at {root} (need styles.csv and images/). Pass --data PATH.")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    partial = [int(b) for b in args.train_blocks.split(",") if b.strip() != "all"]
    df, _ = read_csv(root / "styles.csv")
    paths = []
    for img_id in df["id"]:
        p = root / "images" / f"{img_id}.jpg"
        if img_id and p.is_file():
            paths.append(str(p))
            if len(paths) == args.predict_images:
                break

    machine = {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "platform": platform.platform(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "load_avg_1m": os.getloadavg()[0]}
    settings = {"backbone": args.backbone, "weights": "random", "tasks": TASKS,
                "train_sizes_hw": [list(s) for s in sizes], "train_blocks": partial or "all",
                "train_batch": args.batch_size, "optimizer": "AdamW",
                "warmup_steps": args.warmup, "timed_steps": args.steps,
                "predict_size_hw": list(args.predict_size), "predict_images": len(paths),
                "predict_batch": args.predict_batch, "latency_runs": args.latency_runs, "data": str(root)}
    print("== bench_train_predict: MultiTaskNet on CPU ==")
    for k, v in {**machine, **settings}.items():
        print(f"  {k:>16}: {v}")

    train_rows = []
    for size in sizes:
        for cl in (False, True):
            ips = train_throughput(args.backbone, size, args.batch_size, args.steps, args.warmup, cl)
            train_rows.append({"size_hw": list(size), "channels_last": cl, "train_blocks": None, "images_per_s": ips})
            print(f"  done: train {size[0]}x{size[1]} channels_last={'on' if cl else 'off'}: {ips:.1f} img/s",
                  flush=True)
        for k in partial:
            ips = train_throughput(args.backbone, size, args.batch_size, args.steps, args.warmup, True, k)
            train_rows.append({"size_hw": list(size), "channels_last": True, "train_blocks": k, "images_per_s": ips})
            print(f"  done: train {size[0]}x{size[1]} train_blocks={k}: {ips:.1f} img/s", flush=True)

    with tempfile.TemporaryDirectory(prefix="vislab-bench-") as tmp:
        path = save_checkpoint(Path(tmp) / "best.safetensors", args.backbone, args.predict_size)
        predictor = Predictor.load(path)
        lat = latency(predictor, paths[0], runs=args.latency_runs)
        predictor.predict_batch(paths[: args.predict_batch], batch_size=args.predict_batch)  # warm-up
        t = time.perf_counter()
        preds = predictor.predict_batch(paths, batch_size=args.predict_batch)
        batch_s = time.perf_counter() - t
    assert len(preds) == len(paths)
    predict = {"latency_p50_ms": lat["p50_ms"], "latency_p95_ms": lat["p95_ms"],
               "single_images_per_s": 1000 / lat["p50_ms"], "batch_images_per_s": len(paths) / batch_s}

    print(f"\n  {'training (batch %d, AdamW)' % args.batch_size:<28} {'channels_last':>13} {'train_blocks':>12} "
          f"{'img/s':>9}")
    for r in train_rows:
        print(f"  {'%dx%d' % tuple(r['size_hw']):<28} {'on' if r['channels_last'] else 'off':>13} "
              f"{'all' if r['train_blocks'] is None else r['train_blocks']:>12} {r['images_per_s']:>9.1f}")
    h, w = args.predict_size
    print(f"\n  prediction at {h}x{w} (JPEG decode included)")
    print(f"  {'single image latency p50':<36} {predict['latency_p50_ms']:>9.1f} ms")
    print(f"  {'single image latency p95':<36} {predict['latency_p95_ms']:>9.1f} ms")
    print(f"  {'single image throughput (1/p50)':<36} {predict['single_images_per_s']:>9.1f} img/s")
    print(f"  {'predict_batch, batch %d' % args.predict_batch:<36} {predict['batch_images_per_s']:>9.1f} img/s")

    ratios = {}
    for size in sizes:
        off, on = (r["images_per_s"] for r in train_rows if r["size_hw"] == list(size) and r["train_blocks"] is None)
        ratios[f"train {size[0]}x{size[1]}: channels_last on / off"] = on / off
        for r in train_rows:
            if r["size_hw"] == list(size) and r["train_blocks"] is not None:
                key = f"train {size[0]}x{size[1]}: train_blocks {r['train_blocks']} / all (on)"
                ratios[key] = r["images_per_s"] / on
    base = next(r["images_per_s"] for r in train_rows if r["size_hw"] == list(sizes[0]) and not r["channels_last"])
    for size in sizes[1:]:
        other = next(r["images_per_s"] for r in train_rows if r["size_hw"] == list(size) and not r["channels_last"]
                     and r["train_blocks"] is None)
        ratios[f"train {sizes[0][0]}x{sizes[0][1]} / {size[0]}x{size[1]} (off)"] = base / other
    ratios["predict: batch / single-image throughput"] = predict["batch_images_per_s"] / predict["single_images_per_s"]
    print("\nRATIOS (same run)")
    for k, v in ratios.items():
        print(f"  {k:<48} {v:>8.2f}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "settings": settings, "train": train_rows,
                                         "predict": predict, "ratios": ratios}, indent=2))
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
