"""CIFAR-10 lab figures: augmentation preview, feature maps, accuracy against time, curves by model."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.plots import (
    COLORS,
    finite,
    grid,
    message_figure,
    new_figure,
    prep_image,
    save,
    short,
    to_numpy,
)


def _chw_uint8(image) -> np.ndarray:
    """(3, H, W) uint8 from (3, H, W) / (H, W, 3) arrays or tensors."""
    a = to_numpy(image)
    if a.ndim == 4 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"expected one (3, H, W) image, got shape {a.shape}")
    if a.shape[0] not in (1, 3) and a.shape[-1] in (1, 3):
        a = np.transpose(a, (2, 0, 1))
    if a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0 if a.max() <= 1.0 else a), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a)


def augmentation_preview(image_u8, augments: Mapping[str, Any], path, draws: int = 10, seed: int = 0,
                         title: str = "Augmentations") -> Path:
    """One row per augmentation: the original image, then ``draws`` augmented versions.

    ``augments``: name -> ``vislab.core.augment.BatchAugment``; each is run in train mode on ``draws`` copies
    of the image with ``torch.Generator().manual_seed(seed)`` (its train/eval mode is restored) and
    de-normalised with its own mean/std so the panels look like images.
    """
    import torch

    from vislab.core.augment import denormalize

    img = _chw_uint8(image_u8)
    if not augments:
        return message_figure(path, title, "no augmentations")
    draws = max(int(draws), 1)
    rows: list[tuple[str, np.ndarray]] = []
    batch = torch.from_numpy(img).unsqueeze(0).repeat(draws, 1, 1, 1)
    for name, aug in augments.items():
        was_training = aug.training
        try:
            aug.train()
            with torch.no_grad():
                out = aug(batch.to(aug.mean.device), torch.Generator().manual_seed(int(seed)))
        finally:
            aug.train(was_training)
        rows.append((str(name), denormalize(out, aug.mean, aug.std).numpy()))
    ncols = draws + 1
    cell = 1.1
    fig = new_figure(cell * ncols + 1.0, cell * len(rows) + 0.8)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    orig = np.transpose(img, (1, 2, 0))
    orig = orig[..., 0] if orig.shape[-1] == 1 else orig
    for r, (name, outs) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            im = orig if c == 0 else prep_image(outs[c - 1])
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, interpolation="nearest")
            if r == 0:
                ax.set_title("original" if c == 0 else f"#{c}", fontsize=8)
            if c == 0:
                ax.set_ylabel(short(name, 14), fontsize=9)
        for spine in axes[r, 0].spines.values():
            spine.set_edgecolor("#1f77b4")
            spine.set_linewidth(2)
    fig.suptitle(title)
    return save(fig, path)


def _safe_name(s: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(s)).strip("_")
    return out or "stage"


def feature_maps(stages: Sequence[tuple[str, Any]], out_dir, prefix: str = "featuremap", max_channels: int = 32,
                 image_u8=None, ncols: int = 8) -> list[Path]:
    """One PNG per stage: the first ``max_channels`` channels of its (C, H, W) or (1, C, H, W) output as
    small grayscale panels, each min-max normalised on its own; title = stage name and shape. The input
    image (3, H, W uint8), when given, is the first panel of the first figure.
    Files: ``out_dir/{prefix}_{i:02d}_{name}.png``."""
    out_dir = Path(out_dir)
    paths: list[Path] = []
    for i, (name, t) in enumerate(stages):
        if hasattr(t, "detach"):
            t = t.detach().float().cpu()
        a = to_numpy(t).astype(np.float32)
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        if a.ndim == 2:
            a = a[None]
        if a.ndim != 3:
            raise ValueError(f"stage {name!r}: expected (C, H, W) or (1, C, H, W), got shape {a.shape}")
        c, h, w = a.shape
        k = max(1, min(int(max_channels), c))
        maps = a[:k]
        lo = maps.min(axis=(1, 2), keepdims=True)
        hi = maps.max(axis=(1, 2), keepdims=True)
        maps = np.divide(maps - lo, hi - lo, out=np.zeros_like(maps), where=(hi - lo) > 1e-12)
        panels: list[np.ndarray] = []
        titles: list[str] = []
        if i == 0 and image_u8 is not None:
            img = np.transpose(_chw_uint8(image_u8), (1, 2, 0))
            panels.append(img[..., 0] if img.shape[-1] == 1 else img)
            titles.append("input")
        panels += [m for m in maps]
        titles += [f"ch {j}" for j in range(k)]
        more = f", first {k} of {c} channels" if k < c else ""
        path = out_dir / f"{prefix}_{i:02d}_{_safe_name(name)}.png"
        paths.append(grid(panels, titles, path, f"{name}: {c}\u00d7{h}\u00d7{w}{more}", ncols, "#333333", 1.25))
    return paths


def accuracy_vs_time(points: Mapping[str, Sequence[float]], path,
                     title: str = "Accuracy vs training time") -> Path:
    """points[model] = (training seconds, accuracy, parameters): scatter, x on a log scale (linear when a
    time is <= 0), marker area proportional to the parameter count, each point labelled."""
    rows = [(str(k), float(v[0] or 0.0), float(v[1]), float(v[2] or 0.0) if len(v) > 2 else 0.0)
            for k, v in points.items() if finite(v[1])]
    if not rows:
        return message_figure(path, title, "no results")
    fig = new_figure(8, 5.5)
    ax = fig.add_subplot()
    pmax = max((r[3] for r in rows), default=0.0)
    for i, (name, sec, acc, params) in enumerate(rows):
        size = 40.0 + (560.0 * params / pmax if pmax > 0 else 0.0)
        ax.scatter([sec], [acc], s=size, color=COLORS[i % len(COLORS)], alpha=0.7, edgecolors="black",
                   linewidths=0.6, label=short(name, 24))
        ptxt = f"{params / 1e6:.2f}M" if params >= 1e5 else f"{params / 1e3:.0f}k"
        ax.annotate(f"{short(name, 20)}\n{acc:.3f}, {ptxt} params", (sec, acc), textcoords="offset points",
                    xytext=(8, 6), fontsize=8)
    if all(r[1] > 0 for r in rows):
        ax.set_xscale("log")
        lo, hi = min(r[1] for r in rows), max(r[1] for r in rows)
        ax.set_xlim(lo / 1.8, hi * 2.5)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("accuracy")
    accs = [r[2] for r in rows]
    pad = max(0.02, 0.15 * (max(accs) - min(accs)))
    ax.set_ylim(max(0.0, min(accs) - pad), min(1.0, max(accs) + pad) if max(accs) <= 1 else max(accs) + pad)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(f"{title}  (marker area ~ parameters)")
    return save(fig, path)


def curves_by_model(histories: Mapping[str, Sequence[Mapping[str, float]]], path, key: str = "val_accuracy",
                    title: str | None = None) -> Path:
    """One line per model of ``history[epoch][key]`` over epochs (missing / non-finite values skipped)."""
    title = title or key.replace("_", " ")
    fig = new_figure(8, 5)
    ax = fig.add_subplot()
    drawn = False
    for i, (name, hist) in enumerate(histories.items()):
        pts = [(float(r.get("epoch", j + 1)), float(r[key])) for j, r in enumerate(hist or [])
               if finite(r.get(key))]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "-o", markersize=3, color=COLORS[i % len(COLORS)], label=short(name, 24))
        drawn = True
    if not drawn:
        fig.clf()
        return message_figure(path, title, "no data")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save(fig, path)
