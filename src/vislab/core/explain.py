"""One photo explained: its Grad-CAM heat map per task (or for one task and a chosen class), as a grid PNG and
a dict. Shared by the labs (`vislab fashion explain`, `vislab cifar explain`); torch loads inside the functions,
so `resolve_targets` checks --task/--class before any heavy import."""
from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from vislab.core.errors import UsageError


def resolve_targets(encoders: dict[str, list[str]], task: str | None, label: str | None) -> dict[str, list[int] | None]:
    """{task: None (predicted) or [class index]}: every task, or the one of --task, with --class named."""
    if label is not None and task is None:
        raise UsageError("--class needs --task (which attribute the class belongs to)")
    if task is None:
        return dict.fromkeys(encoders)
    if task not in encoders:
        near = difflib.get_close_matches(task, list(encoders), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UsageError(f"--task {task!r}: the model's attributes are {', '.join(encoders)}{hint}")
    if label is None:
        return {task: None}
    labels = encoders[task]
    if label not in labels:
        near = difflib.get_close_matches(label, labels, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; its labels: {', '.join(labels[:12])}"
        raise UsageError(f"--class {label!r} is not a {task} label of this model{hint}")
    return {task: [labels.index(label)]}


def explain_image(net, encoders: dict[str, list[str]], mean, std, image_size, image: str | Path,
                  task: str | None = None, label: str | None = None, out: str | Path | None = None,
                  layer: str = "auto", method: str = "gradcam") -> dict:
    """Heat maps of one photo; writes the grid to `out` (PNG). Returns per task the label explained, its
    confidence, whether it was the prediction, and where the map peaks (row, column as fractions of the image)."""
    import torch

    from vislab.core import plots
    from vislab.core.data.images import load_image
    from vislab.core.gradcam import GradCAM
    from vislab.core.transforms import BatchTransform
    targets = resolve_targets(encoders, task, label)
    img = load_image(image, tuple(image_size)).transpose(2, 0, 1)
    norm = BatchTransform(mean, std, channels_last=False).eval()
    cam = GradCAM(net.eval(), layer, method)
    x = norm(torch.from_numpy(np.ascontiguousarray(img))[None])
    res = cam(x, targets)
    with torch.no_grad():
        out_ = net(x)
        predicted = {t: int(v.argmax(1)[0]) for t, v in (out_ if isinstance(out_, dict) else {"class": out_}).items()}
    h, w = img.shape[1:]
    info: dict = {"image": str(image), "method": method, "layer": next(iter(res.values())).layer, "attributes": {}}
    panels, titles = [img.transpose(1, 2, 0)], [Path(image).name]
    for t, r in res.items():
        c = int(r.classes[0])
        peak = int(r.maps[0].flatten().argmax())
        info["attributes"][t] = {"label": encoders[t][c], "confidence": float(r.scores[0]),
                                 "predicted": c == predicted[t], "peak": [(peak // w) / h, (peak % w) / w]}
        panels.append(plots.cam_overlay(img, r.maps[0].numpy()))
        titles.append(f"{t}\n{plots.short(encoders[t][c], 16)} {float(r.scores[0]):.0%}"
                      + ("" if c == predicted[t] else " (asked)"))
    if out is not None:
        info["grid"] = str(plots.grid(panels, titles, out, f"{method} at {info['layer']}", min(len(panels), 7),
                                      "black", 2.0))
    return info


