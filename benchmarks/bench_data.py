"""Data pipeline benchmark: images/s over a SECOND epoch, "notebook way" vs vislab.

notebook: a Dataset that opens, converts and resizes each JPEG with PIL in __getitem__, every epoch.
vislab:   decode_images() once (uint8 cache on disk), then batch_loader() slices one uint8 tensor.

    python benchmarks/bench_data.py                      # 5000 images, 96x72, workers 0
    python benchmarks/bench_data.py --limit 500 --workers 0,2 --json out.json
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

import numpy as np
import torch
from PIL import Image

from vislab.core.data import images as D
from vislab.core.data.cache import decode_images
from vislab.core.data.csv import read_csv
from vislab.core.data.loaders import batch_loader
from vislab.core.transforms import BatchTransform

DEFAULT_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "fashion-products"
MEAN = STD = [0.5, 0.5, 0.5]  # tf_efficientnet_lite0's data config


def parse_size(s: str) -> tuple[int, int]:
    h, w = s.lower().split("x")
    return int(h), int(w)


class NotebookDataset(torch.utils.data.Dataset):
    """The usual tutorial Dataset: decode + resize one JPEG per __getitem__, every epoch."""

    def __init__(self, paths, labels, size, transform=None):
        self.paths, self.labels, self.size, self.transform = paths, labels, size, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        im = Image.open(self.paths[i]).convert("RGB").resize((self.size[1], self.size[0]), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])


def time_epochs(loader, n_images: int, per_batch=None) -> dict:
    """Run two epochs; return wall seconds of each and images/s of the second."""
    secs = []
    for _ in range(2):
        t = time.perf_counter()
        seen = 0
        for x, _y in loader:
            if per_batch is not None:
                x = per_batch(x)
            seen += len(x)
        secs.append(time.perf_counter() - t)
        assert seen == n_images, (seen, n_images)
    return {"epoch1_s": secs[0], "epoch2_s": secs[1], "images_per_s": n_images / secs[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="folder with styles.csv and images/ (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=5000, help="first N rows of styles.csv that have an image")
    ap.add_argument("--size", type=parse_size, default=(96, 72), help="HxW, default 96x72")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", default="0",
                    help="DataLoader num_workers of the notebook loader; a list runs each, e.g. 0,2")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
    ap.add_argument("--no-v2", action="store_true", help="skip the notebook + torchvision v2 transforms row")
    ap.add_argument("--json", type=Path, help="write the results here as JSON")
    args = ap.parse_args()

    root = args.data.resolve()
    if not (root / "styles.csv").is_file() or not (root / "images").is_dir():
        sys.exit(f"error: no fashion data at {root} (need styles.csv and images/). Pass --data PATH.")
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = [int(w) for w in args.workers.split(",")]
    size, bs = args.size, args.batch_size

    df, _ = read_csv(root / "styles.csv")
    paths, labels = [], []
    for img_id, art in zip(df["id"], df["articleType"]):
        p = root / "images" / f"{img_id}.jpg"
        if img_id and p.is_file():
            paths.append(p)
            labels.append(art or "?")
            if len(paths) == args.limit:
                break
    n = len(paths)
    targets = np.unique(np.asarray(labels), return_inverse=True)[1].astype(np.int64).reshape(-1, 1)

    machine = {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
               "platform": platform.platform(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
               "load_avg_1m": os.getloadavg()[0]}
    settings = {"data": str(root), "images": n, "size_hw": list(size), "batch_size": bs, "notebook_workers": workers,
                "shuffle": True, "timed": "epoch 2 (epoch 1 discarded)"}
    print("== bench_data: data pipeline, images/s over the 2nd epoch ==")
    for k, v in {**machine, **settings}.items():
        print(f"  {k:>16}: {v}")

    rows = []  # (name, epoch1_s, epoch2_s, images/s)

    def add(name, r):
        rows.append({"name": name, **r})
        print(f"  done: {name:<40} {r['images_per_s']:>10.0f} img/s", flush=True)

    # --- notebook way
    for w in workers:
        ds = NotebookDataset(paths, targets[:, 0], size)
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, num_workers=w, persistent_workers=w > 0)
        add(f"notebook (PIL per item, workers={w})", time_epochs(loader, n))
        if not args.no_v2:
            from torchvision.transforms import v2
            tf = v2.Compose([v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
            ds = NotebookDataset(paths, targets[:, 0], size, transform=tf)
            loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, num_workers=w,
                                                 persistent_workers=w > 0)
            add(f"notebook + v2 flip/normalise (workers={w})", time_epochs(loader, n))

    # --- vislab: decode once (cold, then a cache hit), then epochs over the uint8 tensor
    with tempfile.TemporaryDirectory(prefix="vislab-bench-") as cache:
        t = time.perf_counter()
        decode_images(paths, size, cache_dir=cache, progress=False)
        decode_cold = time.perf_counter() - t
        t = time.perf_counter()
        images, status, _ = decode_images(paths, size, cache_dir=cache, progress=False)
        decode_hit = time.perf_counter() - t
        index = np.arange(n)
        loader = batch_loader(images, targets, index, bs, shuffle=True)
        add("vislab (uint8 cache, batch slices)", time_epochs(loader, n))
        norm = BatchTransform(MEAN, STD, augment=False).eval()
        add("vislab + normalise (BatchTransform)", time_epochs(loader, n, norm))
        aug = BatchTransform(MEAN, STD, augment=True).train()
        add("vislab + augmentation (BatchTransform)", time_epochs(loader, n, aug))
    decode_workers = (os.cpu_count() or 1) if n > 256 else 1  # decode_images' own rule

    print(f"\n  one-time decode (vislab, {decode_workers} processes): {decode_cold:.2f} s = "
          f"{n / decode_cold:.0f} img/s;"
          f" cache hit: {decode_hit * 1000:.0f} ms; bad images: {int((status != D.OK).sum())}")
    print(f"\n  {'pipeline':<42} {'epoch 1 s':>10} {'epoch 2 s':>10} {'img/s (ep 2)':>13}")
    for r in rows:
        print(f"  {r['name']:<42} {r['epoch1_s']:>10.3f} {r['epoch2_s']:>10.3f} {r['images_per_s']:>13.0f}")

    by = {r["name"]: r for r in rows}
    vis = by["vislab (uint8 cache, batch slices)"]
    ratios = {}
    for w in workers:
        nb = by[f"notebook (PIL per item, workers={w})"]
        ratios[f"vislab / notebook(workers={w}), epoch 2"] = vis["images_per_s"] / nb["images_per_s"]
        if not args.no_v2:
            nv2 = by[f"notebook + v2 flip/normalise (workers={w})"]
            ratios[f"vislab+aug / notebook+v2(workers={w}), epoch 2"] = (
                by["vislab + augmentation (BatchTransform)"]["images_per_s"] / nv2["images_per_s"])
        saved = nb["epoch2_s"] - vis["epoch2_s"]  # seconds saved per epoch once decoded
        ratios[f"epochs to repay the one-time decode (vs workers={w})"] = (decode_cold / saved if saved > 0
                                                                            else float("inf"))
    ratios["one-time decode / notebook(workers=%d) epoch 2" % workers[0]] = (
        decode_cold / by[f"notebook (PIL per item, workers={workers[0]})"]["epoch2_s"])
    ratios["cold decode / cache hit"] = decode_cold / decode_hit
    print("\nRATIOS (same run)")
    for k, v in ratios.items():
        print(f"  {k:<55} {v:>8.2f}")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "settings": settings, "results": rows,
                                         "decode": {"cold_s": decode_cold, "cache_hit_s": decode_hit,
                                                    "processes": decode_workers},
                                         "ratios": ratios}, indent=2))
        print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
