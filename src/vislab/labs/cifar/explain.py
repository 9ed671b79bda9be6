"""`vislab cifar explain`: the Grad-CAM heat map of one image for the predicted (or a chosen) class."""
from __future__ import annotations

from pathlib import Path


def explain(checkpoint: str | Path, image: str | Path, label: str | None = None, out: str | Path | None = None,
            layer: str = "auto", method: str = "gradcam") -> dict:
    from vislab.core.explain import explain_image
    from vislab.labs.cifar.lab import load_model
    net, meta = load_model(checkpoint)
    return explain_image(net, {"class": meta["classes"]}, meta["mean"], meta["std"], meta["image_size"], image,
                         "class", label, out, layer, method)
