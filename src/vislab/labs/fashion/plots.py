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
