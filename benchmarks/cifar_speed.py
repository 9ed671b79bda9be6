"""CIFAR-10 speed: vislab's in-memory pipeline vs the torchvision DataLoader + PIL way, one run.

Both train the SAME model with the SAME recipe and seed on the engine; only the input pipeline
differs:
  torchvision: ImageFolder (decodes each JPEG with PIL every epoch) + RandomCrop(32, 4) + flip +
               ToTensor + Normalize in a DataLoader with `--workers` processes;
  vislab:      every image decoded once into a uint8 tensor (on the GPU when there is one), batches
               are slices, RandomCrop + flip run vectorised on the batch (augment "b").
Printed: data-only images/s (second epoch), training epochs/s, test accuracy after each epoch
and time to `--target` validation accuracy (when reached within `--epochs`), and the ratios.

    python benchmarks/cifar_speed.py                          # CPU default: cnn-bn, 2 epochs
    python benchmarks/cifar_speed.py --model fastnet --recipe fast --epochs 16 --target 0.85
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

from vislab.core.augment import CIFAR_MEAN, CIFAR_STD, BatchAugment
from vislab.core.config import load_config
from vislab.core.data.loaders import batch_loader
from vislab.core.engine import Trainer, make_fabric, seed_all
from vislab.core.objectives import ClassificationObjective
from vislab.labs.cifar import lab as cifar
from vislab.labs.cifar.config import CifarRunConfig

DEFAULT_DATA = Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "cifar10"


def torchvision_loader(root: Path, batch: int, workers: int, train: bool, seed: int):
    from torchvision import datasets
    from torchvision import transforms as T
    tf = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if train else []
    ds = datasets.ImageFolder(str(root), T.Compose(tf + [T.ToTensor(), T.Normalize(CIFAR_MEAN, CIFAR_STD)]))
    return torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=train, num_workers=workers,
                                       drop_last=train, persistent_workers=workers > 0,
                                       generator=torch.Generator().manual_seed(seed))


def data_only(loader, transform=None) -> float:
    """images/s of the second pass over a loader (the first warms caches and workers)."""
    for k in range(2):
        t, n = time.perf_counter(), 0
        for x, y in loader:
            if transform is not None:
                x = transform(x, torch.Generator().manual_seed(k))
            n += len(y)
        dt = time.perf_counter() - t
    return n / dt


def fit(cfg: CifarRunConfig, model, train_loader, val_loader, transform, out: Path) -> dict:
    tc = cfg.train.filled()
    fabric = make_fabric(tc)
    trainer = Trainer(tc, out, fabric=fabric, meta={"lab": "bench"}, progress=False)
    objective = ClassificationObjective({"label": 10}, label_smoothing=tc.label_smoothing)
    res = trainer.fit(model, objective, train_loader, val_loader, transform)
    h = res.history
    return {"epochs": len(h), "train_seconds": sum(r["train_seconds"] for r in h),
            "epochs_per_s": len(h) / sum(r["train_seconds"] for r in h),
            "val_accuracy": [round(r["val_accuracy"], 4) for r in h],
            "time_to_target": cifar.time_to(h, ARGS.target)}


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default="cnn-bn")
    ap.add_argument("--recipe", default=None, help="default: the model's own")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the torchvision pipeline")
    ap.add_argument("--target", type=float, default=0.85)
    ap.add_argument("--json", type=Path, default=None)
    ARGS = ap.parse_args()
    if not (ARGS.data / "train").is_dir():
        print(f"no CIFAR-10 class folders in {ARGS.data}", file=sys.stderr)
        return 1
    ov = [f"data.root={ARGS.data}", f"model.name={ARGS.model}", f"train.epochs={ARGS.epochs}",
          "train.eval_batch_size=1000"]
    ov += [f"train.recipe={ARGS.recipe}"] if ARGS.recipe else []
    ov += [f"train.batch_size={ARGS.batch}"] if ARGS.batch else []
    cfg = load_config(None, ov, model=CifarRunConfig)
    tc = cfg.train.filled()
    data = cifar.load_data(cfg, progress=False)
    device = make_fabric(tc).device
    x = torch.from_numpy(np.array(data.train.images))  # a writable copy of the cached array
    y = torch.from_numpy(data.train.labels)
    x = x.to(device) if device.type == "cuda" else x
    res: dict = {"machine": f"{os.cpu_count()} CPU cores ({platform.machine()})"
                 + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
                 "torch": torch.__version__, "model": ARGS.model, "recipe": tc.recipe, "epochs": ARGS.epochs,
                 "batch": tc.batch_size, "torchvision_workers": ARGS.workers, "train_images": len(data.train_rows)}
    # the torchvision pipeline reads the whole train folder; vislab trains on the same images
    all_rows = np.arange(len(data.train))
    aug = BatchAugment("b").train().to(device)
    vis_train = batch_loader(x, y, all_rows, tc.batch_size, shuffle=True, seed=0, drop_last=True)
    tv_train = torchvision_loader(ARGS.data / "train", tc.batch_size, ARGS.workers, True, 0)
    res["data_images_per_s"] = {"vislab": data_only(vis_train, aug), "torchvision": data_only(tv_train)}
    xt = torch.from_numpy(np.array(data.test.images))
    yt = torch.from_numpy(data.test.labels)
    with tempfile.TemporaryDirectory() as tmp:
        seed_all(tc.seed)
        m1 = cifar.build_model(cfg, 10)
        res["vislab"] = fit(cfg, m1, vis_train, batch_loader(xt, yt, None, 1000, shuffle=False), aug, Path(tmp) / "v")
        seed_all(tc.seed)
        m2 = cifar.build_model(cfg, 10)
        res["torchvision"] = fit(cfg, m2, tv_train,
                                 torchvision_loader(ARGS.data / "test", 1000, ARGS.workers, False, 0),
                                 None, Path(tmp) / "t")
    d = res["data_images_per_s"]
    res["ratio_data"] = d["vislab"] / d["torchvision"]
    res["ratio_epochs_per_s"] = res["vislab"]["epochs_per_s"] / res["torchvision"]["epochs_per_s"]
    print(f"{res['machine']}, torch {res['torch']}; {ARGS.model} / {tc.recipe}, batch {tc.batch_size}, "
          f"{len(data.train)} train images, torchvision workers {ARGS.workers}")
    print(f"data only (2nd epoch): vislab {d['vislab']:,.0f} img/s, torchvision {d['torchvision']:,.0f} img/s "
          f"-> {res['ratio_data']:.1f}x")
    for k in ("vislab", "torchvision"):
        r = res[k]
        tt = (f"{r['time_to_target']:.0f} s" if r["time_to_target"] is not None
              else f"not reached in {r['epochs']} epochs")
        print(f"train {k:11s}: {r['epochs_per_s'] * 60:.2f} epochs/min, test acc by epoch {r['val_accuracy']}, "
              f"time to {ARGS.target:.0%}: {tt}")
    print(f"training speed-up: {res['ratio_epochs_per_s']:.2f}x")
    if ARGS.json:
        ARGS.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
