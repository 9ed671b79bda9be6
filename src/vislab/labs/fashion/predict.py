"""Prediction from a checkpoint: `vislab.load(path).predict(image)`.

An image can be a path, raw bytes, a PIL image or an (H, W, 3) uint8 array. It is decoded and
resized exactly as in training (any mode -> RGB, white padding to the trained aspect ratio).
Every prediction carries each attribute's top-k and whether it needs a person's review (its
confidence is under the attribute's threshold, see `vislab.labs.fashion.review`). Batch tagging
(`vislab fashion tag`) and the HTTP service (`vislab serve`) use this same predictor.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from vislab.core import checkpoint as ckpt
from vislab.core.data.images import load_image
from vislab.core.errors import UsageError
from vislab.core.knn import blend
from vislab.core.transforms import BatchTransform
from vislab.labs.fashion import review as rv
from vislab.labs.fashion.lab import load_model


@dataclass
class Prediction:
    labels: dict[str, str]
    confidences: dict[str, float]
    caption: str
    source: str = ""
    top_k: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    thresholds: dict[str, float | None] = field(default_factory=dict)

    @property
    def review(self) -> list[str]:
        """The attributes whose confidence is under their threshold (None: always reviewed)."""
        return [t for t in self.labels if t in self.thresholds and not rv.accepted(self.confidences[t],
                                                                                  self.thresholds[t])]

    @property
    def needs_review(self) -> bool:
        return bool(self.review)

    def as_dict(self) -> dict[str, Any]:
        review = set(self.review)
        return {"image": self.source, "caption": self.caption, "needs_review": bool(review),
                "review": [t for t in self.labels if t in review],
                "attributes": {t: {"label": self.labels[t], "confidence": round(self.confidences[t], 4),
                                   "threshold": _round(self.thresholds.get(t)), "needs_review": t in review,
                                   "top_k": [{"label": lab, "confidence": round(c, 4)}
                                             for lab, c in self.top_k.get(t, [])]}
                               for t in self.labels}}

    def __str__(self) -> str:
        review = set(self.review)
        return "\n".join([f"{t}: {self.labels[t]} ({self.confidences[t]:.2f})" + ("  needs review" if t in review
                                                                                    else "") for t in self.labels]
                         + [f"caption: {self.caption}"])


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


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
             "Lipstick": "lipstick", "Nail Polish": "nail polish", "Jewellery Set": "jewellery set",
             "Skirts": "skirt", "Sarees": "saree", "Scarves": "scarf", "Stoles": "stole", "Bangle": "bangle",
             "Bracelet": "bracelet", "Pendant": "pendant", "Ring": "ring", "Necklace and Chains": "necklace",
             "Cufflinks": "cufflinks", "Dupatta": "dupatta", "Duffel Bag": "duffel bag", "Laptop Bag": "laptop bag",
             "Kurta Sets": "kurta set", "Nightdress": "nightdress", "Trunk": "trunk", "Leggings": "leggings",
             "Capris": "capris", "Sports Sandals": "sports sandals", "Deodorant": "deodorant",
             "Lip Gloss": "lip gloss", "Kajal and Eyeliner": "kajal and eyeliner",
             "Foundation and Primer": "foundation and primer", "Accessory Gift Set": "accessory gift set",
             "Fragrance Gift Set": "fragrance gift set", "Free Gifts": "free gift"}


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


PRECISIONS = ("32", "bf16")
"""Inference precision: float32 (as trained), or bfloat16 weights and activations (about twice the throughput
on CPUs with native bf16, e.g. AVX512-BF16 or AMX; slower elsewhere; confidences move by ~0.01)."""


def bf16_native() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN: AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def predictions(probs: dict, encoders: dict[str, list[str]], thresholds: dict, top_k: int,
                sources: Sequence[str] | None = None) -> list[Prediction]:
    """Predictions from softmax outputs ({task: (N, classes)} tensors or arrays): labels, top-k, caption."""
    tops = {}
    for t, p in probs.items():
        vals, idx = torch.as_tensor(p).float().topk(min(top_k, len(encoders[t])), dim=-1)
        tops[t] = (vals.cpu().tolist(), idx.cpu().tolist())
    out = []
    for n in range(len(next(iter(tops.values()))[0]) if tops else 0):
        labels, conf, top = {}, {}, {}
        for t, (vals, idx) in tops.items():
            top[t] = [(encoders[t][j], float(v)) for v, j in zip(vals[n], idx[n])]
            labels[t], conf[t] = top[t][0]
        out.append(Prediction(labels, conf, caption(labels), sources[n] if sources else "", top, thresholds))
    return out


class Predictor:
    """A loaded fashion model. `thresholds` ({task: t}) replace the checkpoint's review thresholds; an attribute
    without any (an old checkpoint) uses `default_threshold`. `top_k` labels are kept per attribute. `tta`: flip
    test-time augmentation, as `evaluate` scores a run trained with `train.tta` (the features of the photo and its
    mirror averaged; two forward passes per image)."""

    def __init__(self, net, meta: dict, device: str = "cpu", thresholds: dict[str, float | None] | None = None,
                 top_k: int = 3, default_threshold: float | None = 0.6, precision: str = "32", vote=None,
                 tta: bool = False):
        # channels_last: ~1.5x the batched throughput of contiguous NCHW on a CPU (benchmarks/bench_tag.py)
        if precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.net = net.to(device).eval().to(memory_format=torch.channels_last, dtype=self.dtype)
        self.meta, self.device = meta, torch.device(device)
        self.encoders: dict[str, list[str]] = meta["encoders"]
        self.image_size = tuple(meta["image_size"])
        self.transform = BatchTransform(meta["data_config"]["mean"], meta["data_config"]["std"]).to(device).eval()
        self.thresholds = rv.resolve(meta, thresholds, default_threshold)
        self.top_k = max(1, int(top_k))
        self.vote = vote
        """(NeighbourVote, blend weights) of a checkpoint with a neighbour vote (`knn.k`), else None."""
        self.tta = bool(tta)

    @property
    def predicts_in_workers(self) -> bool:
        """Whether forked worker processes can run this predictor (a CUDA context cannot be forked)."""
        return self.device.type == "cpu"

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu", vote_splits: tuple[str, ...] | None = ("train", "val"),
             **kw) -> Predictor:
        """`vote_splits`: which bank images vote in a checkpoint's neighbour vote (("train",) to score the
        validation split, whose images would each vote for their own label; None: the heads alone)."""
        from vislab.labs.fashion.knn import vote_of
        net, meta = load_model(path, device)
        vote = vote_of(ckpt.resolve(path)[0], meta, vote_splits) if vote_splits else None
        return cls(net, meta, device, vote=vote, **kw)

    @property
    def tasks(self) -> list[str]:
        return list(self.encoders)

    def preprocess(self, images: Sequence) -> torch.Tensor:
        arrs = [load_image(im if not isinstance(im, np.ndarray) else Image.fromarray(im), self.image_size)
                for im in images]
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()

    def predict_batch(self, images: Sequence, batch_size: int = 64) -> list[Prediction]:
        """Decode and predict; an undecodable image raises ImageError (see `vislab fashion tag` for a run
        that records it and goes on)."""
        out: list[Prediction] = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            srcs = [str(s) if isinstance(s, (str, Path)) else "" for s in chunk]
            out += self.predict_arrays(self.preprocess(chunk), srcs)
        return out

    @torch.inference_mode()
    def predict_arrays(self, x: torch.Tensor | np.ndarray, sources: Sequence[str] | None = None) -> list[Prediction]:
        """Predictions for decoded images: (N, 3, H, W) uint8 at the model's image size, one batch."""
        return self.embed_arrays(x, sources)[1]

    def _probs(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's probabilities from pooled features: the heads', blended with the neighbour vote if any."""
        probs = {t: v.float().softmax(-1) for t, v in self.net.forward_heads(f).items()}
        if self.vote is not None:
            probs = blend(probs, self.vote[0].probs(f.float().cpu()), self.vote[1])
        return probs

    def predict(self, image) -> Prediction:
        return self.predict_batch([image])[0]

    @torch.inference_mode()
    def embed_arrays(self, x: torch.Tensor | np.ndarray, sources: Sequence[str] | None = None
                     ) -> tuple[np.ndarray, list[Prediction]]:
        """(pooled backbone features (N, D) float32, predictions) of decoded images, from one forward pass (with
        `tta`: two, and the features are the mean over the photo and its mirror)."""
        f, probs = self.forward_arrays(x)
        return f.numpy(), predictions(probs, self.encoders, self.thresholds, self.top_k, sources)

    @torch.inference_mode()
    def forward_arrays(self, x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(pooled features (N, D) float32 on the CPU, {task: probabilities (N, classes)}) of decoded images."""
        x = torch.as_tensor(x)
        if x.ndim != 4 or tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"expected (N, 3, {self.image_size[0]}, {self.image_size[1]}) uint8, got {tuple(x.shape)}")
        x = self.transform(x.to(self.device)).to(self.dtype).contiguous(memory_format=torch.channels_last)
        f = self.net.forward_features(x, tta=self.tta)
        return f.float().cpu(), self._probs(f)


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
