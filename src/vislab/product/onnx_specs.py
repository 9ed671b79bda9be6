"""What each lab's model becomes in ONNX: the graph (uint8 images in, named outputs out), its metadata,
and the images its parity gate compares on by default (the checkpoint's own test split).

    fashion   one logits output per attribute, then `embedding` (the pooled backbone features)
    cifar     `class` (logits over the 10 classes, or the folder's), then `embedding` (the penultimate features)
    siamese   `embedding` (the face embedding `verify` and `gallery` compare, L2-normalised when the model is)

Every graph takes `image`: uint8 RGB (batch, 3, H, W) at the model's size, and normalises it itself."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vislab.core.errors import DataError, VislabError

EMBEDDING = "embedding"
PADDING = "resize to H x W keeping the aspect ratio, centred, padded with white (255, 255, 255); RGB"


class Uint8Graph(nn.Module):
    """A network behind the normalisation: uint8 (N, 3, H, W) -> `outputs(normalised)` (a tuple)."""

    def __init__(self, net: nn.Module, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor):
        return self.outputs((image.float() / 255.0 - self.mean) / self.std)

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class OnnxModel(Uint8Graph):
    """Fashion: one logits tensor per task, then the pooled backbone features (for similar-product search)."""

    def __init__(self, net: nn.Module, mean, std, tasks: list[str]):
        super().__init__(net, mean, std)
        self.tasks = tasks

    def outputs(self, x):
        f = self.net.forward_features(x)
        out = self.net.forward_heads(f)
        return (*(out[t] for t in self.tasks), f)


class CifarGraph(Uint8Graph):
    """CIFAR: logits, then the penultimate features they are computed from."""

    def outputs(self, x):
        f = self.net.forward_features(x)
        return self.net.forward_head(f), f


class EmbeddingGraph(Uint8Graph):
    """Siamese: the embedding."""

    def outputs(self, x):
        return (self.net(x),)


@dataclass
class OnnxSpec:
    module: Uint8Graph
    names: list[str]
    """The graph's outputs, in order."""
    labelled: list[str]
    """Those that are logits: the parity gate also requires their argmax to agree."""
    info: dict[str, Any]
    """The lab's part of the metadata (lab, backbone, outputs, embedding, extras)."""
    mean: list[float]
    std: list[float]
    image_size: list[int]
    test_images: Callable[[], np.ndarray]


def input_info(spec: OnnxSpec) -> dict[str, Any]:
    return {"name": "image", "dtype": "uint8", "layout": "NCHW", "channels": "RGB", "size": list(spec.image_size),
            "preprocessing": PADDING,
            "normalisation": {"mean": list(spec.mean), "std": list(spec.std), "applied": "inside the graph"}}


def _no_data(e: Exception) -> DataError:
    return DataError(f"the parity gate needs the checkpoint's data ({e}); pass images with --parity-images")


def fashion_spec(path: Path, meta: dict) -> OnnxSpec:
    from vislab.labs.fashion.lab import load_model
    from vislab.product.parity import test_split_images
    net, meta = load_model(path)
    tasks = list(meta["encoders"])
    mean, std = meta["data_config"]["mean"], meta["data_config"]["std"]
    info = {"lab": "fashion", "backbone": meta["backbone"],
            "outputs": {t: {"kind": "logits", "labels": labels} for t, labels in meta["encoders"].items()},
            "embedding": {"name": EMBEDDING, "kind": "pooled backbone features, before the heads"},
            "review": meta.get("review")}
    if meta.get("knn"):  # the bank stays in the checkpoint: the graph gives the heads' logits alone
        info["neighbour_vote"] = "not exported: the graph's outputs are the heads' logits without the checkpoint's vote"
    return OnnxSpec(OnnxModel(net.eval(), mean, std, tasks).eval(), [*tasks, EMBEDDING], tasks, info, mean, std,
                    list(meta["image_size"]), lambda: test_split_images(meta))


def cifar_spec(path: Path, meta: dict) -> OnnxSpec:
    from vislab.labs.cifar.config import CifarRunConfig
    from vislab.labs.cifar.lab import load_data, load_model
    net, meta = load_model(path)

    def test_images():
        try:
            return np.asarray(load_data(CifarRunConfig.model_validate(meta["config"]), progress=False).test.images)
        except (DataError, FileNotFoundError) as e:
            raise _no_data(e) from None

    info = {"lab": "cifar", "backbone": meta["model"],
            "outputs": {"class": {"kind": "logits", "labels": meta["classes"]}},
            "embedding": {"name": EMBEDDING, "kind": "penultimate features, the input of the last layer"}}
    return OnnxSpec(CifarGraph(net.eval(), meta["mean"], meta["std"]).eval(), ["class", EMBEDDING], ["class"],
                    info, meta["mean"], meta["std"], list(meta["image_size"]), test_images)


def siamese_spec(path: Path, meta: dict) -> OnnxSpec:
    from vislab.labs.siamese.config import FACE_NET
    from vislab.labs.siamese.data import load_data
    from vislab.labs.siamese.lab import load_model
    if meta["config"]["model"]["backbone"] == FACE_NET:  # before loading the network: nothing to trace
        raise VislabError(f"{path} embeds with {FACE_NET}, dlib's network, which is not a PyTorch graph and has no "
                          "ONNX export; use it through vislab siamese verify / gallery")
    net, meta, cfg = load_model(path)

    def test_images():
        try:
            data = load_data(cfg, progress=False)
        except (DataError, FileNotFoundError) as e:
            raise _no_data(e) from None
        return np.asarray(data.images[data.split.test])

    verification = path.parent.parent / "verification.json"  # the threshold `evaluate` chose on validation
    v = json.loads(verification.read_text()) if verification.is_file() else {}
    info = {"lab": "siamese", "backbone": cfg.model.backbone, "outputs": {},
            "embedding": {"name": EMBEDDING, "kind": "face embedding", "dim": net.embedding_dim,
                          "l2_normalised": bool(net.normalize), "distance": meta.get("distance", "euclidean")},
            "verification": {"threshold": v.get("threshold"), "calibration": v.get("calibration"),
                             "rule": "same person when distance(a, b) <= threshold"}}
    return OnnxSpec(EmbeddingGraph(net.eval(), meta["mean"], meta["std"]).eval(), [EMBEDDING], [], info,
                    meta["mean"], meta["std"], list(meta["image_size"]), test_images)


SPECS: dict[str, Callable[[Path, dict], OnnxSpec]] = {"fashion": fashion_spec, "cifar": cifar_spec,
                                                      "siamese": siamese_spec}
