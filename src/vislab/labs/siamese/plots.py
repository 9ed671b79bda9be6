"""Siamese lab figures: verification ROC, distance distributions, nearest-neighbour grids."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.plots import (
    COLORS,
    as_image_list,
    message_figure,
    new_figure,
    save,
    short,
    to_numpy,
)


def verification_roc(curves: Mapping[str, Mapping[str, Any]], path,
                     title: str = "Verification ROC (test people)") -> Path:
    """One ROC curve per entry ``{name: {"fpr", "tpr", "auc", "eer"}}``, the EER point marked on each."""
    fig = new_figure(6, 5.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
    ax.plot([0, 1], [1, 0], color="#dddddd", lw=1, ls=":")  # FNR = FPR: the EER line
    for i, (name, c) in enumerate(curves.items()):
        fpr, tpr = to_numpy(c["fpr"]), to_numpy(c["tpr"])
        color = COLORS[i % len(COLORS)]
        ax.plot(fpr, tpr, color=color, lw=1.8,
                label=f"{short(name, 30)}  AUC {float(c['auc']):.4f}  EER {100 * float(c['eer']):.2f}%")
        ax.plot([c["eer"]], [1 - float(c["eer"])], "o", color=color, ms=5)
    ax.set_xlabel("false accept rate (different people called same)")
    ax.set_ylabel("true accept rate (same person called same)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return save(fig, path)


def distance_distributions(groups: Mapping[str, tuple[Any, Any]], path, threshold: float | None = None,
                           title: str = "Embedding distances of test pairs") -> Path:
    """Box plot (left) and histograms (right) of same-person vs different-person distances.

    ``groups`` = ``{name: (same_distances, different_distances)}``: one entry per model (e.g. margin 1 and
    margin 2), each drawn in its own row of histograms; ``threshold`` (one model) as a vertical line.
    """
    names = list(groups)
    if not names:
        return message_figure(path, title, "no distances")
    fig = new_figure(11, 3.2 * len(names) + 0.6)
    sub = fig.subfigures(1, 2, width_ratios=[1, 1.6])
    axb = sub[0].add_subplot()
    data, labels, colors = [], [], []
    for n in names:
        same, diff = (to_numpy(v).astype(float).ravel() for v in groups[n])
        data += [same, diff]
        labels += [f"{short(n, 16)}\nsame", f"{short(n, 16)}\ndifferent"]
        colors += ["#2ca02c", "#d62728"]
    bp = axb.boxplot(data, patch_artist=True, showfliers=True, widths=0.6)
    for patch, c in zip(bp["boxes"], colors):
        patch.set_facecolor(c)
        patch.set_alpha(0.45)
    axb.set_xticks(range(1, len(labels) + 1), labels, fontsize=8)
    axb.set_ylabel("distance")
    if threshold is not None and len(names) == 1:
        axb.axhline(threshold, color="black", lw=1, ls="--", label=f"threshold {threshold:.3f}")
        axb.legend(fontsize=8)
    axes = np.atleast_1d(sub[1].subplots(len(names), 1, squeeze=False)).ravel()
    for ax, n in zip(axes, names):
        same, diff = (to_numpy(v).astype(float).ravel() for v in groups[n])
        lo = min(same.min(initial=0.0), diff.min(initial=0.0))
        hi = max(same.max(initial=1.0), diff.max(initial=1.0))
        bins = np.linspace(lo, hi, 40)
        ax.hist(same, bins=bins, alpha=0.55, color="#2ca02c", density=True, label=f"same person ({len(same):,})")
        ax.hist(diff, bins=bins, alpha=0.55, color="#d62728", density=True, label=f"different people ({len(diff):,})")
        if threshold is not None and len(names) == 1:
            ax.axvline(threshold, color="black", lw=1, ls="--")
        ax.set_title(short(n, 40), fontsize=9)
        ax.set_xlabel("distance")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return save(fig, path)


def neighbour_grid(queries, neighbours, same, path, distances=None, title: str = "Nearest neighbours") -> Path:
    """One row per query: the query image, then its neighbours (closest first), framed green when the
    neighbour is the same person and red when not. ``neighbours`` is a list (per query) of images and
    ``same`` a matching list of booleans; ``distances`` (optional) titles each neighbour."""
    q = as_image_list(queries)
    if not q:
        return message_figure(path, title, "no queries")
    k = max(len(as_image_list(n)) for n in neighbours)
    fig = new_figure(1.3 * (k + 1) + 0.3, 1.6 * len(q) + 0.5)
    axes = fig.subplots(len(q), k + 1, squeeze=False)
    for r, qi in enumerate(q):
        row = as_image_list(neighbours[r])
        for c in range(k + 1):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            im = qi if c == 0 else (row[c - 1] if c - 1 < len(row) else None)
            if im is None:
                continue
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None)
            if c == 0:
                ax.set_title("query", fontsize=8)
                color = "#1f77b4"
            else:
                ok = bool(same[r][c - 1])
                color = "#2ca02c" if ok else "#d62728"
                label = ("same" if ok else "other")
                if distances is not None:
                    label += f" {float(distances[r][c - 1]):.2f}"
                ax.set_title(label, fontsize=7, color=color)
            for s in ax.spines.values():
                s.set_visible(True)
                s.set_edgecolor(color)
                s.set_linewidth(2.5)
    fig.suptitle(title)
    return save(fig, path)
