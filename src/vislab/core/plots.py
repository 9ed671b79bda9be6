"""Generic report figures: class balance, training curves, confusion matrices, ROC curves, bars, image grids,
histograms, t-SNE. Lab-specific figures live in each lab's `plots.py` and build on the helpers here
(`new_figure`, `save`, `grid`, `message_figure`, ...).

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
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]



# --------------------------------------------------------------------------------------------- helpers
def to_numpy(x: Any) -> np.ndarray:
    """numpy array from a numpy array, list or torch tensor (without importing torch)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    if hasattr(x, "numpy") and callable(x.numpy) and not isinstance(x, np.ndarray):
        return np.asarray(x.numpy())
    return np.asarray(x)


def short(label: Any, n: int = 22) -> str:
    s = str(label).replace("\n", " ")
    return s if len(s) <= n else s[: n - 1] + "\u2026"


def new_figure(w: float, h: float) -> Figure:
    return Figure(figsize=(max(w, 3.0), max(h, 2.5)), layout="constrained")


def save(fig: Figure, path: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png", facecolor="white")
    fig.clf()
    return path


def message_figure(path: Any, title: str, message: str) -> Path:
    fig = new_figure(5, 3)
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, color="#555555",
            transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return save(fig, path)


def finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------- accuracy vs time
def time_curves(curves: Mapping[str, Mapping[str, Any]], path, title: str = "Accuracy against training time",
                ylabel: str = "validation accuracy (%)") -> Path:
    """One line per setting: curves[label] = {"seconds": cumulative training seconds per epoch, "values": the
    metric per epoch, optional "final": (seconds, value) drawn as a star, e.g. the test score of the chosen
    checkpoint}. x in minutes."""
    rows = [(str(k), to_numpy(v["seconds"]).astype(float), to_numpy(v["values"]).astype(float), v.get("final"))
            for k, v in curves.items() if len(v["seconds"])]
    if not rows:
        return message_figure(path, title, "no curves")
    fig = new_figure(8, 5.5)
    ax = fig.add_subplot()
    starred = False
    for i, (name, sec, val, final) in enumerate(rows):
        c = COLORS[i % len(COLORS)]
        ax.plot(sec / 60, val, marker="o", ms=3, color=c, label=short(name, 40))
        if final is not None and finite(final[1]):
            ax.scatter([final[0] / 60], [final[1]], marker="*", s=140, color=c, edgecolors="black", linewidths=0.6,
                       zorder=3, label=None if starred else "test score of the chosen checkpoint")
            starred = True
    ax.set_xlabel("training time (min)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title, fontsize=11)
    return save(fig, path)


# ------------------------------------------------------------------------------------ class balance
def class_distribution(counts: Mapping[str, int], path, title: str, top_n: int = 40) -> Path:
    """Horizontal bar chart of class counts, largest first; the tail beyond ``top_n`` is one 'other' bar."""
    items = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return message_figure(path, title, "no data")
    if len(items) > top_n:
        rest = items[top_n:]
        items = items[:top_n] + [(f"other ({len(rest)} classes)", sum(v for _, v in rest))]
    names = [short(k, 30) for k, _ in items]
    values = [v for _, v in items]
    colors = [COLORS[0]] * len(items)
    if names[-1].startswith("other (") and len(counts) > top_n:
        colors[-1] = "#999999"
    fig = new_figure(8, 0.27 * len(items) + 1.3)
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
    return save(fig, path)


# ---------------------------------------------------------------------------------- training curves
_PANELS = [
    ("Loss", ("train_loss", "val_loss")),
    ("Accuracy (avg over tasks)", ("train_accuracy", "val_accuracy")),
    ("Macro-F1 (avg over tasks)", ("train_f1", "val_f1")),
]


def training_curves(history: Sequence[Mapping[str, float]], path, title: str = "Training curves",
                    panels: Sequence[tuple[str, tuple[str, ...]]] | None = None, best_epoch: int | None = None,
                    steps: Sequence[Mapping[str, float]] | None = None) -> Path:
    """Loss / accuracy / macro-F1 per epoch, train and val; missing keys are simply not drawn.
    ``panels``: other (title, (key, key)) panels, e.g. the Siamese lab's val AUC and EER. ``best_epoch`` is
    marked on every panel. A short run (under 3 epochs) with ``steps`` (rows with step, loss) is drawn against
    the optimizer step instead, the per-step training loss in the loss panel: a one-epoch run is a curve, not a
    single point on a 0.96-1.04 axis."""
    rows = list(history)
    panels = list(panels or _PANELS)
    by_step = len(rows) < 3 and bool(steps)
    xkey = "step" if by_step else "epoch"
    fig = new_figure(4.7 * len(panels), 4)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    best_x = None
    if best_epoch is not None:
        best_x = next((float(r.get(xkey, best_epoch)) for r in rows if int(r.get("epoch", 0)) == best_epoch), None)
    for i_panel, (ax, (name, keys)) in enumerate(zip(axes, panels)):
        drawn = False
        if by_step and i_panel == 0:
            pts = [(float(s["step"]), float(s["loss"])) for s in steps if finite(s.get("loss"))]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, "-", color=COLORS[0], lw=0.8, alpha=0.6, label="train (each step)")
                drawn = True
        for key, color, style in zip(keys, (COLORS[0], COLORS[1]), ("-o", "-s")):
            pts = [(float(r.get(xkey, i + 1)), float(r[key])) for i, r in enumerate(rows) if finite(r.get(key))]
            if pts:
                xs, ys = zip(*pts)
                label = key.split("_", 1)[0] + (" (epoch end)" if by_step else "")
                ax.plot(xs, ys, style, color=color, markersize=5 if by_step else 4, label=label)
                drawn = True
        if best_x is not None and drawn:
            ax.axvline(best_x, color="#2a9d2a", ls="--", lw=1.2, label=f"best (epoch {best_epoch})")
        ax.set_title(name)
        ax.set_xlabel("optimizer step" if by_step else "epoch")
        ax.grid(alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
            if by_step:  # every panel from step 0, so that an end-of-epoch point sits where it belongs
                ax.set_xlim(0, 1.03 * max(float(s["step"]) for s in steps))
            elif len(rows) == 1:  # one point: a sensible axis, not 0.96-1.04
                ax.set_xlim(0.5, 1.5)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", color="#777777", transform=ax.transAxes)
    fig.suptitle(title)
    return save(fig, path)


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
        return message_figure(path, title, "no classes")
    data = cm2.astype(float)
    if normalize:
        sums = data.sum(axis=1, keepdims=True)
        data = np.divide(data, sums, out=np.zeros_like(data), where=sums > 0)
    side = min(max(5.0, 0.34 * n + 3.0), 15.0)
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(float(data.max()), 1.0)
    im = ax.imshow(data, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest", aspect="equal")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    cbar.set_label("share of the true class (recall on the diagonal)" if normalize else "count")
    fs = max(5.0, min(9.0, 200.0 / n))
    labels = [short(s, 24) for s in names]
    ax.set_xticks(np.arange(n), labels, rotation=90, fontsize=fs)
    ax.set_yticks(np.arange(n), labels, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 15:  # rates and the counts behind them
        for i in range(n):
            for j in range(n):
                v, count = data[i, j], int(cm2[i, j])
                txt = (f"{v:.2f}\n({count})" if count else "0") if normalize else f"{count}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7 if n <= 10 else 5,
                        color="white" if v > 0.55 * vmax else "black")
    sub = f" (top {top_n} of {n_orig} true classes)" if n_orig > top_n else ""
    ax.set_title(f"{title}{sub}")
    return save(fig, path)


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
        return message_figure(path, title, "not enough data for ROC")
    if t.min() < 0 or t.max() >= c:
        raise ValueError(f"targets must lie in [0, {c}), got range [{t.min()}, {t.max()}]")
    names = [str(s) for s in class_names] if class_names is not None else [str(i) for i in range(c)]
    if len(names) < c:
        names = names + [str(i) for i in range(len(names), c)]
    y = label_binarize(t, classes=np.arange(c))
    if c == 2:  # label_binarize gives one column for two classes
        y = np.hstack([1 - y, y])
    fig = new_figure(7, 6.2)
    ax = fig.add_subplot()
    fpr, tpr, _ = roc_curve(y.ravel(), p.ravel())
    ax.plot(fpr, tpr, color="black", lw=2.4, label=f"micro-average (AUC = {auc(fpr, tpr):.3f})")
    support = y.sum(axis=0)
    present = [k for k in np.argsort(-support, kind="stable") if 0 < support[k] < n]
    shown = present[:max_classes]
    for i, k in enumerate(shown):
        f, tp, _ = roc_curve(y[:, k], p[:, k])
        ax.plot(f, tp, lw=1.2, alpha=0.85, color=COLORS[i % len(COLORS)],
                label=f"{short(names[k], 20)} (AUC {auc(f, tp):.3f}, n={int(support[k])})")
    ax.plot([0, 1], [0, 1], "--", color="#999999", lw=1, label="chance")
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    extra = f"; {len(shown)} of {len(present)} classes shown" if len(present) > len(shown) else ""
    ax.set_title(f"{title}{extra}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    return save(fig, path)


# ------------------------------------------------------------------------------------------ bar charts
def grouped_bars(ax, groups: Sequence[str], series: Sequence[str], value, labels: bool) -> None:
    """Bars at x = group, one bar per series; ``value(series, group)`` -> float or nan."""
    k = max(len(series), 1)
    width = 0.8 / k
    x = np.arange(len(groups))
    allv = []
    for i, s in enumerate(series):
        vals = np.array([value(s, g) for g in groups], dtype=float)
        allv.extend(vals[np.isfinite(vals)].tolist())
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(vals, nan=0.0), width,
                      label=short(s, 28), color=COLORS[i % len(COLORS)])
        if labels:
            ax.bar_label(bars, labels=["" if not np.isfinite(v) else f"{v:.3f}" for v in vals],
                         padding=1, fontsize=7 if k * len(groups) <= 12 else 6, rotation=90 if k > 3 else 0)
    ax.set_xticks(x, [short(g, 18) for g in groups], rotation=30 if len(groups) > 4 else 0,
                  ha="right" if len(groups) > 4 else "center")
    if allv and min(allv) >= 0 and max(allv) <= 1:
        ax.set_ylim(0, 1.12)
    ax.grid(axis="y", alpha=0.3)


def union_keys(dicts) -> list[str]:
    out: list[str] = []
    for d in dicts:
        for k in d:
            if k not in out:
                out.append(k)
    return out


def get(d: Mapping, *keys) -> float:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return float("nan")
        d = d[k]
    return float(d) if finite(d) else float("nan")


def summary_bars(results: Mapping[str, Mapping[str, float]], path, title: str = "Average over tasks") -> Path:
    """results[model] = {"accuracy", "f1"}: x = model, one bar per metric, value labels."""
    if not results:
        return message_figure(path, title, "no results")
    models = list(results)
    metrics = [m for m in ("accuracy", "f1") if any(m in results[k] for k in models)]
    metrics += [m for m in union_keys(results[k] for k in models) if m not in metrics]
    fig = new_figure(max(6.0, 1.4 * len(models) + 2.5), 4.8)
    ax = fig.add_subplot()
    names = [str(m) for m in models]
    grouped_bars(ax, names, metrics, lambda s, g: get(results[models[names.index(g)]], s), True)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save(fig, path)


# ------------------------------------------------------------------------------------------ image grids
def as_image_list(images) -> list[np.ndarray]:
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
    return [prep_image(a) for a in arrs]


def prep_image(a: np.ndarray) -> np.ndarray:
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


def grid(imgs: list[np.ndarray], titles: Sequence[str] | None, path, title: str, ncols: int,
          title_color: str, cell: float) -> Path:
    n = len(imgs)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    extra = 0.1 + 0.2 * max(str(s).count("\n") + 1 for s in titles) if titles else 0.0
    fig = new_figure(cell * ncols + 0.3, (cell + extra) * nrows + (0.5 if title else 0.1))
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
    return save(fig, path)


def error_examples(images, true: Sequence[str], pred: Sequence[str], path, title: str = "Errors",
                   ncols: int = 6, captions: Sequence[str] | None = None) -> Path:
    """Grid of misclassified images, each titled 'T: <true>\\nP: <pred>' in red, or with its own `captions`
    (e.g. 'gender: Women -> Men 81%', one line per wrong task); 0 images -> 'no errors'."""
    imgs = as_image_list(images)
    if not imgs:
        return message_figure(path, title, "no errors")
    if captions is not None:
        if len(captions) != len(imgs):
            raise ValueError(f"{len(imgs)} images but {len(captions)} captions")
        return grid(imgs, [str(c) for c in captions], path, title, ncols, "#c00000", 3.0)
    true, pred = [str(s) for s in true], [str(s) for s in pred]
    if len(true) != len(imgs) or len(pred) != len(imgs):
        raise ValueError(f"{len(imgs)} images but {len(true)} true and {len(pred)} predicted labels")
    titles = [f"T: {short(t, 20)}\nP: {short(p, 20)}" for t, p in zip(true, pred)]
    return grid(imgs, titles, path, title, ncols, "#c00000", 2.0)


def cam_overlay(image, heat, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """A heat map (H, W) in [0, 1] blended over an image (CxHxW or HxWxC, uint8): HxWx3 uint8."""
    import matplotlib.pyplot as plt
    im = to_numpy(image)
    if im.ndim == 3 and im.shape[0] in (1, 3) and im.shape[-1] not in (1, 3):
        im = im.transpose(1, 2, 0)
    if im.ndim == 2 or im.shape[-1] == 1:
        im = np.repeat(im.reshape(im.shape[0], im.shape[1], 1), 3, axis=2)
    h = np.clip(to_numpy(heat).astype(np.float32), 0, 1)
    if h.shape != im.shape[:2]:
        raise ValueError(f"heat map {h.shape} and image {im.shape[:2]} differ in size")
    colour = plt.get_cmap(cmap)(h)[..., :3] * 255
    return np.clip((1 - alpha) * im.astype(np.float32) + alpha * colour, 0, 255).astype(np.uint8)


def image_grid(images, path, title: str = "", ncols: int = 8, labels: Sequence[str] | None = None) -> Path:
    """Generic image grid (samples, reconstructions, ...), optional per-image labels."""
    imgs = as_image_list(images)
    if not imgs:
        return message_figure(path, title, "no images")
    titles = None
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(imgs):
            raise ValueError(f"{len(imgs)} images but {len(labels)} labels")
        titles = [short(s, 20) for s in labels]
    return grid(imgs, titles, path, title, ncols, "black", 1.6)




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
        return message_figure(path, title, "not enough points for t-SNE")
    idx = _balanced_subsample(y, int(max_points), seed)
    emb = tsne_embed(feats[idx], seed=seed, max_iter=max_iter)
    y = y[idx]
    names = [str(s) for s in class_names]
    fig = new_figure(8.5, 7)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["tab10" if max(len(names), y.max() + 1) <= 10 else "tab20"]
    for k in np.unique(y):
        m = y == k
        name = names[k] if k < len(names) else str(k)
        ax.scatter(emb[m, 0], emb[m, 1], s=7 if len(idx) > 500 else 30, alpha=0.75, color=cmap(int(k) % cmap.N),
                   label=short(name, 20), linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, markerscale=2.5, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.set_title(f"{title}  (n={len(idx):,})")
    return save(fig, path)


def per_class_bars(per_class: Mapping[str, Mapping[str, float]], path, title: str = "Per-class metrics") -> Path:
    """per_class[class] = {"precision", "recall", "f1", ...}: x = class, bars for precision / recall / F1."""
    if not per_class:
        return message_figure(path, title, "no classes")
    classes = list(per_class)
    names = [str(c) for c in classes]
    metrics = ["precision", "recall", "f1"]
    fig = new_figure(max(7.0, 0.75 * len(classes) * 1.2 + 2.0), 4.8)
    ax = fig.add_subplot()
    grouped_bars(ax, names, metrics, lambda s, g: get(per_class[classes[names.index(g)]], s),
                  len(classes) <= 12)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    return save(fig, path)






def histograms(series: Mapping[str, Any], path, title: str, xlabel: str, bins: int | Sequence[float] = 50,
               log_y: bool = False, density: bool = True, unit: str = "values") -> Path:
    """Overlaid step histograms of several value sets (e.g. train and test pixel intensities); the legend
    counts each set in `unit` (values, pixels, images ...)."""
    fig = new_figure(7, 4)
    ax = fig.add_subplot()
    for i, (name, v) in enumerate(series.items()):
        v = to_numpy(v).ravel()
        ax.hist(v, bins=bins, histtype="step", linewidth=1.5, density=density, color=COLORS[i % len(COLORS)],
                label=f"{name} (n={len(v):,} {unit})")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save(fig, path)


