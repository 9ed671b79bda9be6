"""Fashion lab figures: per-task comparison bars and the baseline-vs-tuned ablation."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vislab.core.plots import (
    get,
    grouped_bars,
    message_figure,
    new_figure,
    save,
    union_keys,
)


def comparison_bars(results: Mapping[str, Mapping[str, Mapping[str, float]]], path,
                    title: str = "Model comparison") -> Path:
    """results[model][task] = {"accuracy", "f1"}: two panels, x = task, one bar per model."""
    models = [str(m) for m in results]
    if not models:
        return message_figure(path, title, "no results")
    tasks = union_keys(results[m] for m in results)
    w = min(max(8.0, 1.0 + len(tasks) * (0.45 * len(models) + 0.6)), 22.0)
    fig = new_figure(w, 8.5)
    axes = fig.subplots(2, 1)
    labels = len(tasks) * len(models) <= 40
    keys = list(results)
    for ax, metric, name in zip(axes, ("accuracy", "f1"), ("Accuracy", "Macro-F1")):
        grouped_bars(ax, tasks, models, lambda s, g, metric=metric: get(results[keys[models.index(s)]], g, metric),
                     labels)
        ax.set_title(name)
        ax.set_ylabel(metric)
    axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title)
    return save(fig, path)


def ablation_bars(results: Mapping[str, Mapping[str, float]], path, title: str = "Baseline vs tuned") -> Path:
    """results[recipe] = {"accuracy", "f1", "precision", "recall"}: x = metric, one bar per recipe."""
    if not results:
        return message_figure(path, title, "no results")
    recipes = list(results)
    std = ("accuracy", "f1", "precision", "recall")
    metrics = [m for m in std if any(m in results[r] for r in recipes)]
    metrics += [m for m in union_keys(results[r] for r in recipes) if m not in metrics]
    fig = new_figure(max(6.5, 1.3 * len(metrics) * max(1, len(recipes) / 2) + 2), 4.8)
    ax = fig.add_subplot()
    names = [str(r) for r in recipes]
    grouped_bars(ax, metrics, names, lambda s, g: get(results[recipes[names.index(s)]], g), True)
    ax.legend(fontsize=8)
    ax.set_title(title)
    return save(fig, path)


def coverage_accuracy(curves: Mapping[str, tuple], target: float, path,
                      title: str = "Auto-accepted share vs its accuracy") -> Path:
    """curves[task] = (confidences, correct, threshold or None): one panel per task, x = share auto-accepted
    (most confident first), y = accuracy of that share; the chosen threshold's point marked."""
    import numpy as np

    from vislab.labs.fashion.review import accepted, coverage_curve
    tasks = list(curves)
    if not tasks:
        return message_figure(path, title, "no tasks")
    cols = min(3, len(tasks))
    rows = (len(tasks) + cols - 1) // cols
    fig = new_figure(4.2 * cols, 3.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, t in zip(axes, tasks):
        conf, correct, th = curves[t]
        cov, acc = coverage_curve(conf, correct)
        ax.plot(100 * cov, 100 * acc, lw=1.6)
        ax.axhline(100 * target, ls="--", lw=1, color="grey")
        m = accepted(conf, th)
        if th is not None and m.any():
            ax.plot([100 * m.mean()], [100 * correct[m].mean()], "o", color="C3")
            ax.annotate(f"t={th:.2f}", (100 * m.mean(), 100 * correct[m].mean()), textcoords="offset points",
                        xytext=(4, -12), fontsize=8)
        ax.set_title(t, fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_xlabel("auto-accepted (%)")
        ax.set_ylabel("accuracy of accepted (%)")
        ax.grid(alpha=0.3)
    for ax in axes[len(tasks):]:
        ax.axis("off")
    fig.suptitle(title)
    return save(fig, path)
