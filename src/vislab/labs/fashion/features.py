"""Pooled backbone features of a fashion net: one loop serves the linear probe (every image, cached on disk)
and the neighbour vote (chosen rows, optionally the mean over the photo and its mirror)."""
from __future__ import annotations

import os

import numpy as np
import torch

from vislab.core.data.cache import cache_root
from vislab.core.transforms import BatchTransform


@torch.no_grad()  # not inference_mode: the linear probe trains its heads on these features
def pooled_features(net, images: np.ndarray, rows: np.ndarray | None = None, tta: bool = False,
                    batch_size: int = 32, device: str | torch.device = "cpu", progress: bool = False) -> torch.Tensor:
    """(len(rows), D) float32 pooled backbone features of `images[rows]` (every image when `rows` is None), in
    `rows` order; with `tta` the mean over the photo and its mirror (`MultiTaskNet.forward_features`). The net
    runs in eval mode and channels_last, as training runs it."""
    from rich.progress import Progress
    net = net.eval().to(device, memory_format=torch.channels_last)
    tf = BatchTransform(net.data_config["mean"], net.data_config["std"]).eval().to(device)
    rows = np.arange(len(images)) if rows is None else np.asarray(rows)
    out = []
    with Progress(transient=True, disable=not progress) as bar:
        task = bar.add_task(f"backbone features of {len(rows)} images", total=len(rows))
        for i in range(0, len(rows), batch_size):
            x = tf(torch.from_numpy(np.asarray(images[rows[i:i + batch_size]])).to(device))
            out.append(net.forward_features(x, tta=tta).float().cpu())
            bar.advance(task, len(x))
    return torch.cat(out) if out else torch.zeros(0, net.num_features)


def backbone_features(net, images: np.ndarray, device, cache_key: str | None, cache_dir: str | None,
                      batch_size: int = 256, progress: bool = True) -> torch.Tensor:
    """Pooled backbone features of every image, computed once (cached on disk by `cache_key`)."""
    path = None
    if cache_key:
        path = cache_root(cache_dir) / "features" / f"{cache_key}.pt"
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    feats = pooled_features(net, images, batch_size=batch_size, device=device, progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(feats, tmp)
        os.replace(tmp, path)
    return feats
