"""`vislab fashion explain`: where the model looked, per attribute (Grad-CAM / Grad-CAM++ of `vislab.core.gradcam`).

    explain(ckpt, "shirt.jpg")                                   # every attribute, its predicted label
    explain(ckpt, "shirt.jpg", task="baseColour", label="Navy Blue", out="why.png")

One forward pass, one gradient per attribute; gradients on (not inference mode). The grid shows the photo,
then one heat map per attribute titled with the label it explains and its confidence."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from vislab.core.explain import resolve_targets  # noqa: F401  (the CLI checks --task/--class with it)

# torch, the model and matplotlib load inside the functions: the CLI checks --task/--class first


def explainer(net, meta: dict, layer: str = "auto", method: str = "gradcam"):
    """A GradCAM over a fashion net (float32, NCHW) and the normalisation its inputs need."""
    from vislab.core.gradcam import GradCAM
    from vislab.core.transforms import BatchTransform
    norm = BatchTransform(meta["data_config"]["mean"], meta["data_config"]["std"], channels_last=False).eval()
    return GradCAM(net.float().eval(), layer, method), norm


def explain(checkpoint: str | Path, image: str | Path, task: str | None = None, label: str | None = None,
            out: str | Path | None = None, layer: str = "auto", method: str = "gradcam") -> dict:
    """Heat maps of one photo for every attribute (or --task), written as a grid to `out`
    (`vislab.core.explain.explain_image`)."""
    from vislab.core.explain import explain_image
    from vislab.labs.fashion.lab import load_model
    net, meta = load_model(checkpoint)
    dc = meta["data_config"]
    return explain_image(net.float(), meta["encoders"], dc["mean"], dc["std"], meta["image_size"], image, task, label,
                         out, layer, method)


def error_maps(net, meta: dict, images: np.ndarray, wrong_task: list[str], layer: str = "auto") -> list[np.ndarray]:
    """For each image, the overlay of the map of its predicted label for the attribute it got wrong."""
    import torch

    from vislab.core import plots
    if not len(images):
        return []
    cam, norm = explainer(net, meta, layer)
    out = []
    for i in range(0, len(images), 32):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + 32]))
        chunk = wrong_task[i:i + 32]
        res = cam(norm(x), dict.fromkeys(sorted(set(chunk))))
        out += [plots.cam_overlay(images[i + j], res[t].maps[j].numpy()) for j, t in enumerate(chunk)]
    return out


def deletion_check(net, meta: dict, images: np.ndarray, fraction: float = 0.2, layer: str = "auto",
                   method: str = "gradcam") -> dict:
    """`vislab.core.gradcam.deletion_test` on fashion photos: removed pixels are painted white, the
    background of product photos."""
    import torch

    from vislab.core.gradcam import deletion_test
    cam, norm = explainer(net, meta, layer, method)
    return deletion_test(cam, torch.from_numpy(np.ascontiguousarray(images)), norm, fraction, (255, 255, 255))


def deletion_section(result: dict, ec):
    """The report's check that the heat maps mean something (`deletion_check` results per attribute)."""
    from vislab.core.report import Section, Table
    rows = [[t, f"{m['confidence']:.3f}", f"{m['salient_removed']:.3f}", f"{m['random_removed']:.3f}",
             f"{m['drop_salient']:+.3f}", f"{m['drop_random']:+.3f}", f"{m['salient_wins']:.0%}"]
            for t, m in result.items()]
    n = next(iter(result.values()))["images"]
    pct = f"{ec.deletion_fraction:.0%}"
    text = (f"On {n} scored images, the {pct} of pixels the {ec.method} map of the predicted label marks as most "
            f"salient are painted white, and separately {pct} of pixels at random; then the model's confidence in "
            "the same label is read again. Where the maps point at what the model uses, removing the salient "
            "pixels costs more confidence than removing random ones.")
    return Section("Do the heat maps mean something?", text, tables=[Table(
        ["attribute", "confidence", f"salient {pct} removed", f"random {pct} removed", "drop (salient)",
         "drop (random)", "images where salient drops more"], rows)])
