"""`--backend onnx`: the fashion predictor on ONNX Runtime, from a file `vislab export` wrote.

Same interface and output as `vislab.labs.fashion.predict.Predictor` (predict, predict_batch,
predict_arrays, preprocess, tasks, thresholds, top_k), so `predict`, `tag` and `serve` take either.
Everything it needs comes from the file's metadata: labels, input size, review thresholds."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from vislab.labs.fashion import review as rv
from vislab.labs.fashion.predict import Prediction, Predictor, predictions
from vislab.product.parity import read_onnx_meta, session


class OnnxPredictor:
    predicts_in_workers = False  # ONNX Runtime's thread pools do not survive a fork: workers only decode
    precision = "32"

    def __init__(self, path: str | Path, thresholds: dict | None = None, top_k: int = 3,
                 default_threshold: float | None = 0.6, threads: int | None = None, tta: bool = False):
        self.path = Path(path)
        self.onnx_meta = read_onnx_meta(self.path)
        if self.onnx_meta["lab"] != "fashion":
            raise ValueError(f"{path} is a {self.onnx_meta['lab']} model; this predictor takes fashion models")
        self.encoders = {t: o["labels"] for t, o in self.onnx_meta["outputs"].items()}
        self.image_size = tuple(self.onnx_meta["input"]["size"])
        # the same metadata shape as a checkpoint's, for what reads it (review thresholds, /v1/model)
        self.meta = {"lab": "fashion", "backbone": self.onnx_meta.get("backbone", "?"), "encoders": self.encoders,
                     "image_size": list(self.image_size), "review": self.onnx_meta.get("review"),
                     "versions": self.onnx_meta.get("versions", {}), "config": {}}
        self.thresholds = rv.resolve(self.meta, thresholds, default_threshold)
        self.top_k = max(1, int(top_k))
        self.tta = bool(tta)
        """Flip test-time augmentation: the graph runs on the photo and its mirror, logits and embedding averaged
        (the same as the torch predictor's mean features, the heads being linear)."""
        self.device = torch.device("cpu")
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        self.session = session(self.path, threads or cores)

    @classmethod
    def load(cls, path, **kw) -> OnnxPredictor:
        kw.pop("device", None)
        if kw.pop("precision", "32") != "32":
            raise ValueError("--precision bf16 applies to the torch backend; the ONNX backend runs float32")
        return cls(path, **kw)

    @property
    def tasks(self) -> list[str]:
        return list(self.encoders)

    preprocess = Predictor.preprocess  # decoding and resizing exactly as the torch predictor does

    def _run(self, x, names: list[str]) -> list[np.ndarray]:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.uint8))
        if x.ndim != 4 or tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"expected (N, 3, {self.image_size[0]}, {self.image_size[1]}) uint8, got {x.shape}")
        out = self.session.run(names, {"image": x})
        if self.tta:
            mirrored = self.session.run(names, {"image": np.ascontiguousarray(x[..., ::-1])})
            out = [(a + b) / 2 for a, b in zip(out, mirrored)]
        return out

    def predict_arrays(self, x, sources: Sequence[str] | None = None) -> list[Prediction]:
        out = self._run(x, self.tasks)
        probs = {t: torch.from_numpy(o).float().softmax(-1) for t, o in zip(self.tasks, out)}
        return predictions(probs, self.encoders, self.thresholds, self.top_k, sources)

    def embed_arrays(self, x, sources: Sequence[str] | None = None) -> tuple[np.ndarray, list[Prediction]]:
        """(the graph's `embedding` output (N, D), predictions), from one run (two with `tta`)."""
        *out, emb = self._run(x, [*self.tasks, "embedding"])
        probs = {t: torch.from_numpy(o).float().softmax(-1) for t, o in zip(self.tasks, out)}
        return emb.astype(np.float32), predictions(probs, self.encoders, self.thresholds, self.top_k, sources)

    predict_batch = Predictor.predict_batch
    predict = Predictor.predict
