"""Generative lab figures: image mosaics side by side, the sampling-temperature sweep."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.plots import (
    COLORS,
    as_image_list,
    finite,
    message_figure,
    new_figure,
    prep_image,
    save,
    short,
)


def _mosaic(images, nrows: int, ncols: int, gap: int = 1) -> np.ndarray:
    """(N, [1,] H, W) grayscale images in [0, 1] or uint8 -> one (nrows*(H+gap), ncols*(W+gap)) array, row-major."""
    imgs = [np.asarray(prep_image(a), dtype=np.float32) for a in as_image_list(images)]
    imgs = [a / 255.0 if a.max() > 1.0 else a for a in imgs]
    if not imgs:
        return np.zeros((1, 1), np.float32)
    h, w = imgs[0].shape[:2]
    out = np.ones((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.float32)
    for i, a in enumerate(imgs[: nrows * ncols]):
        r, c = divmod(i, ncols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = a
    return out


def mosaic_panels(panels: Mapping[str, tuple[Any, int, int]], path, title: str = "",
                  row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                  cell: float = 0.42) -> Path:
    """One or more image mosaics side by side, each {panel title: (images, nrows, ncols)} with images
    row-major; optional row labels (e.g. class names, latent dimensions) and column labels (e.g. traversal
    values) on the axes. Grayscale only (the generative lab's 28x28 images)."""
    items = list(panels.items())
    if not items:
        return message_figure(path, title, "no images")
    widths = [nc for _, (_, _, nc) in items]
    nrows = max(nr for _, (_, nr, _) in items)
    fig = new_figure(cell * sum(widths) + 1.6 * len(items) + 0.4, cell * nrows + 1.2)
    axes = np.atleast_1d(fig.subplots(1, len(items), squeeze=False, gridspec_kw={"width_ratios": widths})).ravel()
    for ax, (name, (imgs, nr, nc)) in zip(axes, items):
        m = _mosaic(imgs, nr, nc)
        ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        h, w = (m.shape[0] + 1) / nr, (m.shape[1] + 1) / nc
        ax.set_yticks([(i + 0.5) * h - 1 for i in range(nr)], [short(s, 24) for s in row_labels[:nr]] if row_labels
                      else [""] * nr, fontsize=8)
        ax.set_xticks([(i + 0.5) * w - 1 for i in range(nc)], [str(s) for s in col_labels[:nc]] if col_labels
                      else [""] * nc, fontsize=7)
        ax.tick_params(length=0)
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def temperature_sweep(rows: Sequence[Mapping[str, Any]], path, title: str = "Sampling temperature") -> Path:
    """Quality/diversity trade-off of a sampler over temperatures: rows of {"temperature", "fid_classifier",
    optional "controllability": {"mean", "worst", "worst_class"}}; FID on the left, controllability (mean and
    worst class, %) on the right when present."""
    rows = sorted((r for r in rows if finite(r.get("fid_classifier"))), key=lambda r: r["temperature"])
    if not rows:
        return message_figure(path, title, "no results")
    ctrl = all("controllability" in r for r in rows)
    fig = new_figure(11 if ctrl else 6, 4)
    t = [r["temperature"] for r in rows]
    ax = fig.add_subplot(1, 2 if ctrl else 1, 1)
    ax.plot(t, [r["fid_classifier"] for r in rows], "-o", color=COLORS[0])
    ax.set_xlabel("temperature")
    ax.set_ylabel("FID (a), classifier features")
    ax.grid(alpha=0.3)
    if ctrl:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(t, [100 * r["controllability"]["mean"] for r in rows], "-o", color=COLORS[1], label="mean")
        ax2.plot(t, [100 * r["controllability"]["worst"] for r in rows], "-s", color=COLORS[2],
                 label="worst class")
        for x, r in zip(t, rows):
            ax2.annotate(short(r["controllability"]["worst_class"], 10), (x, 100 * r["controllability"]["worst"]),
                         textcoords="offset points", xytext=(0, -12), fontsize=7, ha="center")
        ax2.set_xlabel("temperature")
        ax2.set_ylabel("controllability (%)")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, path)
