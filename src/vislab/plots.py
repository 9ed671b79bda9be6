"""Report figures: class balance, training curves, confusion matrices, ROC curves, comparisons, image grids.

Every public function writes ONE PNG (dpi 110), returns its ``Path`` and leaves no open figure behind
(figures are built with the object API, ``matplotlib.figure.Figure``, so nothing is registered with
pyplot). Inputs may be numpy arrays, lists or torch tensors; torch is never imported here.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 110
_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]

__all__ = [
    "DPI", "to_numpy", "reduce_confusion", "class_distribution", "training_curves", "confusion_matrix",
    "roc_curves", "comparison_bars", "summary_bars", "ablation_bars", "error_examples", "image_grid",
]


# --------------------------------------------------------------------------------------------- helpers
def to_numpy(x: Any) -> np.ndarray:
    """numpy array from a numpy array, list or torch tensor (without importing torch)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy") and callable(x.numpy) and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    return np.asarray(x)


def _short(label: Any, n: int = 22) -> str:
    s = str(label).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def _new_figure(w: float, h: float) -> Figure:
    return Figure(figsize=(max(w, 3.0), max(h, 2.5)), layout="constrained")


def _save(fig: Figure, path: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", facecolor="white")
    fig.clf()
    return path


def _message_figure(path: Any, title: str, message: str) -> Path:
    fig = _new_figure(5, 3)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#555555",
            transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------------ class balance
def class_distribution(counts: Mapping[str, int], path, title: str, top_n: int = 40) -> Path:
    """Horizontal bar chart of class counts, largest first; the tail beyond ``top_n`` is one 'other' bar."""
    items = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return _message_figure(path, title, "no data")
    if len(items) > top_n:
        rest = items[top_n:]
        items = items[:top_n] + [(f"other ({len(rest)} classes)", sum(v for _, v in rest))]
    names = [_short(k, 30) for k, _ in items]
    values = [v for _, v in items]
    colors = [_COLORS[0]] * len(items)
    if names[-1].startswith("other (") and len(counts) > top_n:
        colors[-1] = "#999999"
    fig = _new_figure(8, 0.27 * len(items) + 1.3)
    ax = fig.add_subplot()
    y = np.arange(len(items))
    bars = ax.barh(y, values, color=colors)
    ax.set_yticks(y, names, fontsize=8 if len(items) > 20 else 9)
    ax.invert_yaxis()
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=7)
    ax.set_xlim(0, max(values) * 1.15 if max(values) > 0 else 1)
    ax.set_xlabel("count")
    ax.set_title(f"{title}  (n={sum(int(v) for v in counts.values()):,}, {len(counts)} classes)")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


# ---------------------------------------------------------------------------------- training curves
_PANELS = [
    ("Loss", ("train_loss", "val_loss")),
    ("Accuracy (avg over tasks)", ("train_accuracy", "val_accuracy")),
    ("Macro-F1 (avg over tasks)", ("train_f1", "val_f1")),
]


def training_curves(history: Sequence[Mapping[str, float]], path, title: str = "Training curves",
                    panels: Sequence[tuple[str, tuple[str, ...]]] | None = None) -> Path:
    """Loss / accuracy / macro-F1 per epoch, train and val; missing keys are simply not drawn.
    ``panels``: other (title, (key, key)) panels, e.g. the Siamese lab's val AUC and EER."""
    rows = list(history)
    panels = list(panels or _PANELS)
    fig = _new_figure(4.7 * len(panels), 4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, keys) in zip(axes, panels):
        drawn = False
        for key, color, style in zip(keys, (_COLORS[0], _COLORS[1]), ("-o", "-s")):
            pts = [(float(r.get("epoch", i + 1)), float(r[key])) for i, r in enumerate(rows)
                   if _finite(r.get(key))]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, color=color, markersize=4, label=key.split("_", 1)[0])
                drawn = True
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="#777777", transform=ax.transAxes)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------------- confusion matrix
def reduce_confusion(cm, class_names: Sequence[str], top_n: int) -> tuple[np.ndarray, list[str]]:
    """Keep the ``top_n`` most frequent TRUE classes (row sums), lump the rest into one 'other' row/column.

    Returns ``(cm2, names2)``; cm2 has ``top_n + 1`` rows/columns when reduced, the same total count, and
    its last row is the sum of the dropped rows (restricted to kept columns + 'other'). Unchanged (copy) when
    there are at most ``top_n`` classes.
    """
    cm = to_numpy(cm)
    names = [str(n) for n in class_names]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if len(names) != cm.shape[0]:
        raise ValueError(f"{len(names)} class names for a {cm.shape[0]}x{cm.shape[0]} confusion matrix")
    c = cm.shape[0]
    if top_n < 1:
        raise ValueError("top_n must be >= 1")
    if c <= top_n:
        return cm.copy(), names
    order = np.argsort(-cm.sum(axis=1), kind="stable")
    keep, rest = order[:top_n], order[top_n:]
    cm2 = np.zeros((top_n + 1, top_n + 1), dtype=cm.dtype)
    cm2[:top_n, :top_n] = cm[np.ix_(keep, keep)]
    cm2[:top_n, top_n] = cm[np.ix_(keep, rest)].sum(axis=1)
    cm2[top_n, :top_n] = cm[np.ix_(rest, keep)].sum(axis=0)
    cm2[top_n, top_n] = cm[np.ix_(rest, rest)].sum()
    return cm2, [names[i] for i in keep] + [f"other ({len(rest)} classes)"]


def confusion_matrix(cm, class_names: Sequence[str], path, title: str, top_n: int = 25,
                     normalize: bool = True) -> Path:
    """Heat map of ``cm[true, pred]``; >top_n classes are reduced (see ``reduce_confusion``)."""
    cm = to_numpy(cm)
    n_orig = cm.shape[0] if cm.ndim == 2 else 0
    cm2, names = reduce_confusion(cm, class_names, top_n)
    n = len(names)
    if n == 0:
        return _message_figure(path, title, "no classes")
    data = cm2.astype(float)
    if normalize:
        sums = data.sum(axis=1, keepdims=True)
        data = np.divide(data, sums, out=np.zeros_like(data), where=sums > 0)
    side = min(max(5.0, 0.34 * n + 3.0), 15.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(float(data.max()), 1.0)
    im = ax.imshow(data, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cbar.set_label("row-normalised (recall)" if normalize else "count")
    fs = max(5.0, min(9.0, 200.0 / n))
    labels = [_short(s, 24) for s in names]
    ax.set_xticks(np.arange(n), labels, rotation=90, fontsize=fs)
    ax.set_yticks(np.arange(n), labels, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = data[i, j]
                txt = f"{v:.2f}" if normalize else (f"{v:.0f}" if float(v).is_integer() else f"{v:.2g}")
                ax.text(j, i, txt, ha="center", va="center", fontsize=8 if n <= 10 else 6,
                        color="white" if v > 0.55 * vmax else "black")
    sub = f" (top {top_n} of {n_orig} true classes)" if n_orig > top_n else ""
    ax.set_title(f"{title}{sub}")
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ ROC
def roc_curves(probs, targets, class_names: Sequence[str], path, title: str, max_classes: int = 10) -> Path:
    """One-vs-rest ROC: micro-average (with AUC) plus the ``max_classes`` most frequent present classes."""
    from sklearn.metrics import auc, roc_curve
    from sklearn.preprocessing import label_binarize

    p = to_numpy(probs).astype(float)
    t = to_numpy(targets).astype(int).reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ValueError(f"probs must be (N, C) matching targets (N,), got {p.shape} and {t.shape}")
    n, c = p.shape
    if n == 0 or c < 2:
        return _message_figure(path, title, "not enough data for ROC")
    if t.min() < 0 or t.max() >= c:
        raise ValueError(f"targets must lie in [0, {c}), got range [{t.min()}, {t.max()}]")
    names = [str(s) for s in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) < c:
        names = names + [str(i) for i in range(len(names), c)]
    y = label_binarize(t, classes=np.arange(c))
    if c == 2:  # label_binarize gives one column for two classes
        y = np.hstack([1 - y, y])
    fig = _new_figure(7, 6.2)
    ax = fig.add_subplot()
    fpr, tpr, _ = roc_curve(y.ravel(), p.ravel())
    ax.plot(fpr, tpr, color="black", lw=2.4, label=f"micro-average (AUC = {auc(fpr, tpr):.3f})")
    support = y.sum(axis=0)
    present = [k for k in np.argsort(-support, kind="stable") if 0 < support[k] < n]
    shown = present[:max_classes]
    for i, k in enumerate(shown):
        f, tp, _ = roc_curve(y[:, k], p[:, k])
        ax.plot(f, tp, lw=1.2, alpha=0.85, color=_COLORS[i % len(_COLORS)],
                label=f"{_short(names[k], 20)} (AUC {auc(f, tp):.3f}, n={int(support[k])})")
    ax.plot([0, 1], [0, 1], "--", color="#999999", lw=1, label="chance")
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    extra = f"; {len(shown)} of {len(present)} classes shown" if len(present) > len(shown) else ""
    ax.set_title(f"{title}{extra}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ bar charts
def _grouped_bars(ax, groups: Sequence[str], series: Sequence[str], value, labels: bool) -> None:
    """Bars at x = group, one bar per series; ``value(series, group)`` -> float or nan."""
    k = max(len(series), 1)
    width = 0.8 / k
    x = np.arange(len(groups))
    allv = []
    for i, s in enumerate(series):
        vals = np.array([value(s, g) for g in groups], dtype=float)
        allv.extend(vals[np.isfinite(vals)].tolist())
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(vals, nan=0.0), width,
                      label=_short(s, 28), color=_COLORS[i % len(_COLORS)])
        if labels:
            ax.bar_label(bars, labels=["" if not np.isfinite(v) else f"{v:.3f}" for v in vals],
                         padding=1, fontsize=7 if k * len(groups) <= 12 else 6, rotation=90 if k > 3 else 0)
    ax.set_xticks(x, [_short(g, 18) for g in groups], rotation=30 if len(groups) > 4 else 0,
                  ha="right" if len(groups) > 4 else "center")
    if allv and min(allv) >= 0 and max(allv) <= 1:
        ax.set_ylim(0, 1.12)
    ax.grid(axis="y", alpha=0.3)


def _union_keys(dicts) -> list[str]:
    out: list[str] = []
    for d in dicts:
        for k in d:
            if k not in out:
                out.append(k)
    return out


def _get(d: Mapping, *keys) -> float:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return float("nan")
        d = d[k]
    return float(d) if _finite(d) else float("nan")


def comparison_bars(results: Mapping[str, Mapping[str, Mapping[str, float]]], path,
                    title: str = "Model comparison") -> Path:
    """results[model][task] = {"accuracy", "f1"}: two panels, x = task, one bar per model."""
    models = [str(m) for m in results]
    if not models:
        return _message_figure(path, title, "no results")
    tasks = _union_keys(results[m] for m in results)
    w = min(max(8.0, 1.0 + len(tasks) * (0.45 * len(models) + 0.6)), 22.0)
    fig = _new_figure(w, 8.5)
    axes = fig.subplots(2, 1)
    labels = len(tasks) * len(models) <= 40
    keys = list(results)
    for ax, metric, name in zip(axes, ("accuracy", "f1"), ("Accuracy", "Macro-F1")):
        _grouped_bars(ax, tasks, models, lambda s, g: _get(results[keys[models.index(s)]], g, metric), labels)
        ax.set_title(name)
        ax.set_ylabel(metric)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title)
    return _save(fig, path)


def summary_bars(results: Mapping[str, Mapping[str, float]], path, title: str = "Average over tasks") -> Path:
    """results[model] = {"accuracy", "f1"}: x = model, one bar per metric, value labels."""
    if not results:
        return _message_figure(path, title, "no results")
    models = list(results)
    metrics = [m for m in ("accuracy", "f1") if any(m in results[k] for k in models)]
    metrics += [m for m in _union_keys(results[k] for k in models) if m not in metrics]
    fig = _new_figure(max(6.0, 1.4 * len(models) + 2.5), 4.8)
    ax = fig.add_subplot()
    names = [str(m) for m in models]
    _grouped_bars(ax, names, metrics, lambda s, g: _get(results[models[names.index(g)]], s), True)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


def ablation_bars(results: Mapping[str, Mapping[str, float]], path, title: str = "Baseline vs tuned") -> Path:
    """results[recipe] = {"accuracy", "f1", "precision", "recall"}: x = metric, one bar per recipe."""
    if not results:
        return _message_figure(path, title, "no results")
    recipes = list(results)
    std = ("accuracy", "f1", "precision", "recall")
    metrics = [m for m in std if any(m in results[r] for r in recipes)]
    metrics += [m for m in _union_keys(results[r] for r in recipes) if m not in metrics]
    fig = _new_figure(max(6.5, 1.3 * len(metrics) * max(1, len(recipes) / 2) + 2), 4.8)
    ax = fig.add_subplot()
    names = [str(r) for r in recipes]
    _grouped_bars(ax, metrics, names, lambda s, g: _get(results[recipes[names.index(s)]], g), True)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------ image grids
def _as_image_list(images) -> list[np.ndarray]:
    """List of HxW or HxWxC arrays (C in 1/3/4 squeezed/kept) ready for imshow, from many input layouts."""
    if images is None:
        return []
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            return []
        arrs = [to_numpy(im) for im in images]
    else:
        a = to_numpy(images)
        if a.size == 0 or a.ndim < 2:
            return []
        if a.ndim == 2 or (a.ndim == 3 and (a.shape[-1] in (1, 3, 4) or a.shape[0] in (1, 3, 4))):
            arrs = [a]  # one image: HxW, HxWxC or CxHxW (a 3-D array of other shape = grayscale batch)
        else:
            arrs = list(a)  # NxHxW, NxHxWxC, NxCxHxW
    return [_prep_image(a) for a in arrs]


def _prep_image(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))  # channels-first -> HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"cannot show an image of shape {a.shape}")
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        return np.clip(a, 0, 255).astype(np.uint8)
    a = np.nan_to_num(a.astype(np.float32))
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        return a
    if lo >= -1.0 and hi <= 1.0:
        return (a + 1.0) / 2.0
    if lo >= 0.0 and hi <= 255.0:
        return a.astype(np.uint8) if hi > 1.5 else np.clip(a, 0, 1)
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _grid(imgs: list[np.ndarray], titles: Sequence[str] | None, path, title: str, ncols: int,
          title_color: str, cell: float) -> Path:
    n = len(imgs)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    extra = 0.5 if titles else 0.0
    fig = _new_figure(cell * ncols + 0.3, (cell + extra) * nrows + (0.5 if title else 0.1))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        im = imgs[i]
        ax.imshow(im, cmap="gray" if im.ndim == 2 else None, vmin=0 if im.ndim == 2 else None,
                  vmax=(255 if im.dtype == np.uint8 else 1) if im.ndim == 2 else None,
                  interpolation="nearest" if max(im.shape[:2]) < 64 else None)
        if titles:
            ax.set_title(titles[i], fontsize=8, color=title_color)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def error_examples(images, true: Sequence[str], pred: Sequence[str], path, title: str = "Errors",
                   ncols: int = 6) -> Path:
    """Grid of misclassified images, each titled 'T: <true>\\nP: <pred>' in red; 0 images -> 'no errors'."""
    imgs = _as_image_list(images)
    if not imgs:
        return _message_figure(path, title, "no errors")
    true, pred = [str(s) for s in true], [str(s) for s in pred]
    if len(true) != len(imgs) or len(pred) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(true)} true and {len(pred)} predicted labels")
    titles = [f"T: {_short(t, 20)}\nP: {_short(p, 20)}" for t, p in zip(true, pred)]
    return _grid(imgs, titles, path, title, ncols, "#c00000", 2.0)


def image_grid(images, path, title: str = "", ncols: int = 8, labels: Sequence[str] | None = None) -> Path:
    """Generic image grid (samples, reconstructions, ...), optional per-image labels."""
    imgs = _as_image_list(images)
    if not imgs:
        return _message_figure(path, title, "no images")
    titles = None
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(imgs):
            raise ValueError(f"{len(imgs)} images but {len(labels)} labels")
        titles = [_short(s, 20) for s in labels]
    return _grid(imgs, titles, path, title, ncols, "black", 1.6)


# ===================================================================================== CIFAR-10 lab
__all__ += ["augmentation_preview", "tsne_embed", "tsne_scatter", "feature_maps", "per_class_bars",
            "accuracy_vs_time", "curves_by_model"]


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

    ``augments``: name -> ``vislab.augment.BatchAugment``; each is run in train mode on ``draws`` copies
    of the image with ``torch.Generator().manual_seed(seed)`` (its train/eval mode is restored) and
    de-normalised with its own mean/std so the panels look like images.
    """
    import torch

    from .augment import denormalize

    img = _chw_uint8(image_u8)
    if not augments:
        return _message_figure(path, title, "no augmentations")
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
    fig = _new_figure(cell * ncols + 1.0, cell * len(rows) + 0.8)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    orig = np.transpose(img, (1, 2, 0))
    orig = orig[..., 0] if orig.shape[-1] == 1 else orig
    for r, (name, outs) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            im = orig if c == 0 else _prep_image(outs[c - 1])
            ax.imshow(im, cmap="gray" if im.ndim == 2 else None, interpolation="nearest")
            if r == 0:
                ax.set_title("original" if c == 0 else f"#{c}", fontsize=8)
            if c == 0:
                ax.set_ylabel(_short(name, 14), fontsize=9)
        for spine in axes[r, 0].spines.values():
            spine.set_edgecolor("#1f77b4")
            spine.set_linewidth(2)
    fig.suptitle(title)
    return _save(fig, path)


def tsne_embed(features, seed: int = 0, perplexity: float = 30.0, pca_dims: int = 50,
               max_iter: int = 1000) -> np.ndarray:
    """2-D t-SNE embedding ``(N, 2)`` of ``features`` ``(N, D)``.

    PCA to ``pca_dims`` dimensions first when D > ``pca_dims``; sklearn TSNE with ``init="pca"``,
    ``learning_rate="auto"`` and ``random_state=seed`` (same seed and input -> same result). The
    perplexity is lowered to ``(N - 1) / 3`` for small N (it must stay below N); ``max_iter`` >= 250.
    Runs single-threaded: torch's and sklearn's OpenMP runtimes otherwise spin against each other
    (0.1 s -> 10+ s for 120 points on 2 cores), and one thread keeps the result core-count independent
    (2,000 points x 50 dims: ~7 s).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = to_numpy(features).astype(np.float32)
    x = x.reshape(x.shape[0], -1)
    n = x.shape[0]
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32)
    perp = float(min(perplexity, max(1.0, (n - 1) / 3.0)))
    with threadpool_limits(limits=1):
        if x.shape[1] > pca_dims:
            x = PCA(n_components=min(pca_dims, n), random_state=seed).fit_transform(x).astype(np.float32)
        emb = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed,
                   max_iter=max(int(max_iter), 250)).fit_transform(x)
    return np.asarray(emb, dtype=np.float32)


def _balanced_subsample(labels: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``max_points`` samples, spread as evenly over the classes as possible
    (every class present when max_points >= #classes); deterministic given ``seed``."""
    n = len(labels)
    if n <= max_points:
        return np.arange(n)
    perm = np.random.default_rng(seed).permutation(n)
    lab = labels[perm]
    rank = np.empty(n, dtype=np.int64)  # rank of each permuted sample within its class
    for c in np.unique(lab):
        m = lab == c
        rank[m] = np.arange(int(m.sum()))
    order = np.lexsort((np.arange(n), rank))  # by rank, then permutation position
    return np.sort(perm[order[:max_points]])


def tsne_scatter(features, labels, class_names: Sequence[str], path, title: str = "t-SNE", seed: int = 0,
                 max_points: int = 2000, max_iter: int = 1000) -> Path:
    """t-SNE scatter of ``features`` (N, D), one colour per class with a legend; at most ``max_points``
    points, subsampled deterministically and balanced over classes (see ``tsne_embed``)."""
    feats = to_numpy(features)
    y = to_numpy(labels).astype(int).reshape(-1)
    if feats.shape[0] != y.shape[0]:
        raise ValueError(f"{feats.shape[0]} feature rows but {y.shape[0]} labels")
    if len(y) < 3:
        return _message_figure(path, title, "not enough points for t-SNE")
    idx = _balanced_subsample(y, int(max_points), seed)
    emb = tsne_embed(feats[idx], seed=seed, max_iter=max_iter)
    y = y[idx]
    names = [str(s) for s in class_names]
    fig = _new_figure(8.5, 7)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10" if max(len(names), y.max() + 1) <= 10 else "tab20"]
    for k in np.unique(y):
        m = y == k
        name = names[k] if k < len(names) else str(k)
        ax.scatter(emb[m, 0], emb[m, 1], s=7 if len(idx) > 500 else 30, alpha=0.75, color=cmap(int(k) % cmap.N), label=_short(name, 20),
                   linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=2.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title(f"{title}  (n={len(idx):,})")
    return _save(fig, path)


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
        paths.append(_grid(panels, titles, path, f"{name}: {c}\u00d7{h}\u00d7{w}{more}", ncols, "#333333", 1.25))
    return paths


def per_class_bars(per_class: Mapping[str, Mapping[str, float]], path, title: str = "Per-class metrics") -> Path:
    """per_class[class] = {"precision", "recall", "f1", ...}: x = class, bars for precision / recall / F1."""
    if not per_class:
        return _message_figure(path, title, "no classes")
    classes = list(per_class)
    names = [str(c) for c in classes]
    metrics = ["precision", "recall", "f1"]
    fig = _new_figure(max(7.0, 0.75 * len(classes) * 1.2 + 2.0), 4.8)
    ax = fig.add_subplot()
    _grouped_bars(ax, names, metrics, lambda s, g: _get(per_class[classes[names.index(g)]], s),
                  len(classes) <= 12)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    return _save(fig, path)


def accuracy_vs_time(points: Mapping[str, Sequence[float]], path,
                     title: str = "Accuracy vs training time") -> Path:
    """points[model] = (training seconds, accuracy, parameters): scatter, x on a log scale (linear when a
    time is <= 0), marker area proportional to the parameter count, each point labelled."""
    rows = [(str(k), float(v[0] or 0.0), float(v[1]), float(v[2] or 0.0) if len(v) > 2 else 0.0)
            for k, v in points.items() if _finite(v[1])]
    if not rows:
        return _message_figure(path, title, "no results")
    fig = _new_figure(8, 5.5)
    ax = fig.add_subplot()
    pmax = max((r[3] for r in rows), default=0.0)
    for i, (name, sec, acc, params) in enumerate(rows):
        size = 40.0 + (560.0 * params / pmax if pmax > 0 else 0.0)
        ax.scatter([sec], [acc], s=size, color=_COLORS[i % len(_COLORS)], alpha=0.7, edgecolors="black",
                   linewidths=0.6, label=_short(name, 24))
        ptxt = f"{params / 1e6:.2f}M" if params >= 1e5 else f"{params / 1e3:.0f}k"
        ax.annotate(f"{_short(name, 20)}\n{acc:.3f}, {ptxt} params", (sec, acc), textcoords="offset points",
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
    return _save(fig, path)


def curves_by_model(histories: Mapping[str, Sequence[Mapping[str, float]]], path, key: str = "val_accuracy",
                    title: str | None = None) -> Path:
    """One line per model of ``history[epoch][key]`` over epochs (missing / non-finite values skipped)."""
    title = title or key.replace("_", " ")
    fig = _new_figure(8, 5)
    ax = fig.add_subplot()
    drawn = False
    for i, (name, hist) in enumerate(histories.items()):
        pts = [(float(r.get("epoch", j + 1)), float(r[key])) for j, r in enumerate(hist or [])
               if _finite(r.get(key))]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ax.plot(xs, ys, "-o", markersize=3, color=_COLORS[i % len(_COLORS)], label=_short(name, 24))
        drawn = True
    if not drawn:
        fig.clf()
        return _message_figure(path, title, "no data")
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return _save(fig, path)


# ===================================================================================== Siamese lab
__all__ += ["verification_roc", "distance_distributions", "neighbour_grid"]


def verification_roc(curves: Mapping[str, Mapping[str, Any]], path, title: str = "Verification ROC (test people)") -> Path:
    """One ROC curve per entry ``{name: {"fpr", "tpr", "auc", "eer"}}``, the EER point marked on each."""
    fig = _new_figure(6, 5.5)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="#999999", lw=1, ls="--")
    ax.plot([0, 1], [1, 0], color="#dddddd", lw=1, ls=":")  # FNR = FPR: the EER line
    for i, (name, c) in enumerate(curves.items()):
        fpr, tpr = to_numpy(c["fpr"]), to_numpy(c["tpr"])
        color = _COLORS[i % len(_COLORS)]
        ax.plot(fpr, tpr, color=color, lw=1.8, label=f"{_short(name, 30)}  AUC {float(c['auc']):.4f}  EER {100 * float(c['eer']):.2f}%")
        ax.plot([c["eer"]], [1 - float(c["eer"])], "o", color=color, ms=5)
    ax.set_xlabel("false accept rate (different people called same)")
    ax.set_ylabel("true accept rate (same person called same)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return _save(fig, path)


def distance_distributions(groups: Mapping[str, tuple[Any, Any]], path, threshold: float | None = None,
                           title: str = "Embedding distances of test pairs") -> Path:
    """Box plot (left) and histograms (right) of same-person vs different-person distances.

    ``groups`` = ``{name: (same_distances, different_distances)}``: one entry per model (e.g. margin 1 and
    margin 2), each drawn in its own row of histograms; ``threshold`` (one model) as a vertical line.
    """
    names = list(groups)
    if not names:
        return _message_figure(path, title, "no distances")
    fig = _new_figure(11, 3.2 * len(names) + 0.6)
    sub = fig.subfigures(1, 2, width_ratios=[1, 1.6])
    axb = sub[0].add_subplot()
    data, labels, colors = [], [], []
    for n in names:
        same, diff = (to_numpy(v).astype(float).ravel() for v in groups[n])
        data += [same, diff]
        labels += [f"{_short(n, 16)}\nsame", f"{_short(n, 16)}\ndifferent"]
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
        ax.set_title(_short(n, 40), fontsize=9)
        ax.set_xlabel("distance")
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def neighbour_grid(queries, neighbours, same, path, distances=None, title: str = "Nearest neighbours") -> Path:
    """One row per query: the query image, then its neighbours (closest first), framed green when the
    neighbour is the same person and red when not. ``neighbours`` is a list (per query) of images and
    ``same`` a matching list of booleans; ``distances`` (optional) titles each neighbour."""
    q = _as_image_list(queries)
    if not q:
        return _message_figure(path, title, "no queries")
    k = max(len(_as_image_list(n)) for n in neighbours)
    fig = _new_figure(1.3 * (k + 1) + 0.3, 1.6 * len(q) + 0.5)
    axes = fig.subplots(len(q), k + 1, squeeze=False)
    for r, qi in enumerate(q):
        row = _as_image_list(neighbours[r])
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
    return _save(fig, path)


# ===================================================================================== generative lab
__all__ += ["mosaic_panels", "histograms", "temperature_sweep"]


def _mosaic(images, nrows: int, ncols: int, gap: int = 1) -> np.ndarray:
    """(N, [1,] H, W) grayscale images in [0, 1] or uint8 -> one (nrows*(H+gap), ncols*(W+gap)) array, row-major."""
    imgs = [np.asarray(_prep_image(a), dtype=np.float32) for a in _as_image_list(images)]
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
        return _message_figure(path, title, "no images")
    widths = [nc for _, (_, _, nc) in items]
    nrows = max(nr for _, (_, nr, _) in items)
    fig = _new_figure(cell * sum(widths) + 1.6 * len(items) + 0.4, cell * nrows + 1.2)
    axes = np.atleast_1d(fig.subplots(1, len(items), squeeze=False, gridspec_kw={"width_ratios": widths})).ravel()
    for ax, (name, (imgs, nr, nc)) in zip(axes, items):
        m = _mosaic(imgs, nr, nc)
        ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        h, w = (m.shape[0] + 1) / nr, (m.shape[1] + 1) / nc
        ax.set_yticks([(i + 0.5) * h - 1 for i in range(nr)], [_short(s, 24) for s in row_labels[:nr]] if row_labels
                      else [""] * nr, fontsize=8)
        ax.set_xticks([(i + 0.5) * w - 1 for i in range(nc)], [str(s) for s in col_labels[:nc]] if col_labels
                      else [""] * nc, fontsize=7)
        ax.tick_params(length=0)
        for s in ax.spines.values():
            s.set_visible(False)
        ax.set_title(name, fontsize=10)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def histograms(series: Mapping[str, Any], path, title: str, xlabel: str, bins: int | Sequence[float] = 50,
               log_y: bool = False, density: bool = True, unit: str = "values") -> Path:
    """Overlaid step histograms of several value sets (e.g. train and test pixel intensities); the legend
    counts each set in `unit` (values, pixels, images ...)."""
    fig = _new_figure(7, 4)
    ax = fig.add_subplot()
    for i, (name, v) in enumerate(series.items()):
        v = to_numpy(v).ravel()
        ax.hist(v, bins=bins, histtype="step", linewidth=1.5, density=density, color=_COLORS[i % len(_COLORS)],
                label=f"{name} (n={len(v):,} {unit})")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def temperature_sweep(rows: Sequence[Mapping[str, Any]], path, title: str = "Sampling temperature") -> Path:
    """Quality/diversity trade-off of a sampler over temperatures: rows of {"temperature", "fid_classifier",
    optional "controllability": {"mean", "worst", "worst_class"}}; FID on the left, controllability (mean and
    worst class, %) on the right when present."""
    rows = sorted((r for r in rows if _finite(r.get("fid_classifier"))), key=lambda r: r["temperature"])
    if not rows:
        return _message_figure(path, title, "no results")
    ctrl = all("controllability" in r for r in rows)
    fig = _new_figure(11 if ctrl else 6, 4)
    t = [r["temperature"] for r in rows]
    ax = fig.add_subplot(1, 2 if ctrl else 1, 1)
    ax.plot(t, [r["fid_classifier"] for r in rows], "-o", color=_COLORS[0])
    ax.set_xlabel("temperature")
    ax.set_ylabel("FID (a), classifier features")
    ax.grid(alpha=0.3)
    if ctrl:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(t, [100 * r["controllability"]["mean"] for r in rows], "-o", color=_COLORS[1], label="mean")
        ax2.plot(t, [100 * r["controllability"]["worst"] for r in rows], "-s", color=_COLORS[2],
                 label="worst class")
        for x, r in zip(t, rows):
            ax2.annotate(_short(r["controllability"]["worst_class"], 10), (x, 100 * r["controllability"]["worst"]),
                         textcoords="offset points", xytext=(0, -12), fontsize=7, ha="center")
        ax2.set_xlabel("temperature")
        ax2.set_ylabel("controllability (%)")
        ax2.legend(fontsize=8)
        ax2.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)
