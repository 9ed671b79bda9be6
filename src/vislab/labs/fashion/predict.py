"""Prediction from a checkpoint: `vislab.load(path).predict(image)`.

An image can be a path, raw bytes, a PIL image or an (H, W, 3) uint8 array. It is decoded and
resized exactly as in training (any mode -> RGB, white padding to the trained aspect ratio).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vislab.core.data.images import load_image
from vislab.core.transforms import BatchTransform
from vislab.labs.fashion.lab import load_model


@dataclass
class Prediction:
    labels: dict[str, str]
    confidences: dict[str, float]
    caption: str
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"image": self.source, "caption": self.caption,
                "attributes": {t: {"label": self.labels[t], "confidence": round(self.confidences[t], 4)}
                               for t in self.labels}}

    def __str__(self) -> str:
        return "\n".join([f"{t}: {self.labels[t]} ({self.confidences[t]:.2f})" for t in self.labels]
                         + [f"caption: {self.caption}"])


_POSSESSIVE = {"Men": "Men's", "Women": "Women's", "Boys": "Boys'", "Girls": "Girls'", "Unisex": "Unisex"}
_SINGULAR = {"Tshirts": "t-shirt", "Shirts": "shirt", "Tops": "top", "Jeans": "jeans", "Trousers": "trousers",
             "Shorts": "shorts", "Dresses": "dress", "Kurtas": "kurta", "Watches": "watch", "Handbags": "handbag",
             "Backpacks": "backpack", "Belts": "belt", "Heels": "heels", "Sandals": "sandals",
             "Flip Flops": "flip flops", "Casual Shoes": "casual shoes", "Sports Shoes": "sports shoes",
             "Formal Shoes": "formal shoes", "Sunglasses": "sunglasses", "Socks": "socks", "Briefs": "briefs",
             "Wallets": "wallet", "Sweatshirts": "sweatshirt", "Jackets": "jacket", "Sweaters": "sweater",
             "Caps": "cap", "Ties": "tie", "Earrings": "earrings", "Track Pants": "track pants", "Bra": "bra",
             "Perfume and Body Mist": "perfume", "Kurtis": "kurti", "Tunics": "tunic", "Clutches": "clutch",
             "Innerwear Vests": "innerwear vest", "Flats": "flats", "Night suits": "night suit",
             "Lipstick": "lipstick", "Nail Polish": "nail polish", "Jewellery Set": "jewellery set"}


def caption(labels: dict[str, str]) -> str:
    """'Men's navy blue casual shirt for fall' from whichever attributes the model predicts."""
    words = []
    if "gender" in labels:
        words.append(_POSSESSIVE.get(labels["gender"], labels["gender"]))
    if "baseColour" in labels:
        words.append(labels["baseColour"].lower())
    item = labels.get("articleType") or labels.get("subCategory") or labels.get("masterCategory")
    if item:
        words.append(_SINGULAR.get(item, item.lower()))
    if not words:
        return ", ".join(f"{k} {v}" for k, v in labels.items())
    text = " ".join(words)
    if "season" in labels:
        text += f" for {labels['season'].lower()}"
    return text[0].upper() + text[1:]


class Predictor:
    def __init__(self, net, meta: dict, device: str = "cpu"):
        self.net, self.meta, self.device = net.to(device).eval(), meta, torch.device(device)
        self.encoders: dict[str, list[str]] = meta["encoders"]
        self.image_size = tuple(meta["image_size"])
        self.transform = BatchTransform(meta["data_config"]["mean"], meta["data_config"]["std"]).to(device).eval()

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Predictor:
        net, meta = load_model(path, device)
        return cls(net, meta, device)

    @property
    def tasks(self) -> list[str]:
        return list(self.encoders)

    def preprocess(self, images: Sequence) -> torch.Tensor:
        arrs = [load_image(im if not isinstance(im, np.ndarray) else Image.fromarray(im), self.image_size)
                for im in images]
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()

    @torch.inference_mode()
    def predict_batch(self, images: Sequence, batch_size: int = 64) -> list[Prediction]:
        out: list[Prediction] = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            x = self.transform(self.preprocess(chunk).to(self.device))
            logits = self.net(x)
            probs = {t: v.float().softmax(-1).cpu() for t, v in logits.items()}
            for k, src in enumerate(chunk):
                labels, conf = {}, {}
                for t, p in probs.items():
                    j = int(p[k].argmax())
                    labels[t], conf[t] = self.encoders[t][j], float(p[k, j])
                out.append(Prediction(labels, conf, caption(labels), str(src) if isinstance(src, (str, Path)) else ""))
        return out

    def predict(self, image) -> Prediction:
        return self.predict_batch([image])[0]


def latency(predictor: Predictor, image, runs: int = 50, warmup: int = 5) -> dict[str, float]:
    """Single-image latency percentiles (ms), preprocessing included."""
    for _ in range(warmup):
        predictor.predict(image)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        predictor.predict(image)
        ts.append((time.perf_counter() - t) * 1000)
    return {"p50_ms": float(np.percentile(ts, 50)), "p95_ms": float(np.percentile(ts, 95))}
