"""CPU benchmark: evaluation throughput (forward passes, no gradients) of the fashion network by batch size and
memory format, as `Trainer.evaluate` runs it (validation after each epoch, test, feature extraction).

The engine used to evaluate with the checkpoint's NCHW weights on channels_last batches of 256; it now converts
the model to channels_last (as training does) and the fashion configs evaluate in batches of 32. Ratios are to
that old setting, measured in the same run.

    python benchmarks/bench_eval.py                         # 128x96, batches 32,64,256
    python benchmarks/bench_eval.py --size 96x72 --batches 16,32,256 --images 2048
"""
from __future__ import annotations

import argparse
import platform
import time

import torch

from vislab.labs.fashion.model import MultiTaskNet

TASKS = {"gender": 5, "masterCategory": 4, "subCategory": 33, "baseColour": 18, "season": 4, "articleType": 80}


def throughput(net, size, batch: int, images: int, model_cl: bool) -> float:
    """images/s of `images` forward passes in batches of `batch` (channels_last batches, as BatchTransform gives)."""
    net = net.to(memory_format=torch.channels_last if model_cl else torch.contiguous_format)
    x = torch.randn(batch, 3, *size).contiguous(memory_format=torch.channels_last)
    steps = max(1, images // batch)
    with torch.inference_mode():
        net(x)  # warm-up
        t = time.perf_counter()
        for _ in range(steps):
            net(x)
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="tf_efficientnet_lite0")
    ap.add_argument("--size", default="128x96", help="HxW")
    ap.add_argument("--batches", default="32,64,256")
    ap.add_argument("--images", type=int, default=1024, help="images per setting")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    torch.manual_seed(0)
    net = MultiTaskNet(a.backbone, TASKS, pretrained=False).eval()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch "
          f"{torch.__version__}; {a.backbone} at {size[0]}x{size[1]}, {a.images} images per setting")
    base = throughput(net, size, 256, a.images, model_cl=False)
    print("\n| batch | NCHW model img/s | channels_last model img/s | vs NCHW model, batch 256 (the old setting) |")
    print("|---|---|---|---|")
    for b in (int(v) for v in a.batches.split(",")):
        nchw = base if b == 256 else throughput(net, size, b, a.images, model_cl=False)
        cl = throughput(net, size, b, a.images, model_cl=True)
        print(f"| {b} | {nchw:.0f} | {cl:.0f} | {cl / base:.2f}x |")


if __name__ == "__main__":
    main()
