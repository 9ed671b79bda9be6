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
from vislab.labs.fashion.predict import Prediction, predictions
from vislab.product.parity import read_onnx_meta, session


class OnnxPredictor:
    predicts_in_workers = False  # ONNX Runtime's thread pools do not survive a fork: workers only decode
    precision = "32"

    def __init__(self, path: str | Path, thresholds: dict | None = None, top_k: int = 3,
                 default_threshold: float | None = 0.6, threads: int | None = None):
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

    def preprocess(self, images: Sequence) -> torch.Tensor:
        from PIL import Image

        from vislab.core.data.images import load_image
        arrs = [load_image(im if not isinstance(im, np.ndarray) else Image.fromarray(im), self.image_size)
                for im in images]
        return torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()

    def predict_arrays(self, x, sources: Sequence[str] | None = None) -> list[Prediction]:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.uint8))
        if x.ndim != 4 or tuple(x.shape[2:]) != self.image_size:
            raise ValueError(f"expected (N, 3, {self.image_size[0]}, {self.image_size[1]}) uint8, got {x.shape}")
        out = self.session.run(self.tasks, {"image": x})
        probs = {t: torch.from_numpy(o).float().softmax(-1) for t, o in zip(self.tasks, out)}
        return predictions(probs, self.encoders, self.thresholds, self.top_k, sources)

    def predict_batch(self, images: Sequence, batch_size: int = 64) -> list[Prediction]:
        out: list[Prediction] = []
        for i in range(0, len(images), batch_size):
            chunk = images[i:i + batch_size]
            out += self.predict_arrays(self.preprocess(chunk).numpy(),
                                       [str(s) if isinstance(s, (str, Path)) else "" for s in chunk])
        return out

    def predict(self, image) -> Prediction:
        return self.predict_batch([image])[0]


BACKENDS = ("torch", "onnx")


def load_predictor(path: str | Path, backend: str | None = None, **kw):
    """The predictor for `path`: a .onnx file runs on ONNX Runtime, a checkpoint (or run folder) on torch;
    `backend="onnx"` with a checkpoint uses the .onnx file exported beside it (`vislab export` first)."""
    from vislab.core.errors import UsageError
    path = Path(path)
    if backend not in (None, *BACKENDS):
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise UsageError(f"{path} is an ONNX model: it runs with --backend onnx (or leave --backend out)")
        return OnnxPredictor.load(path, **kw)
    from vislab.core.checkpoint import resolve
    ckpt = resolve(path)[0]
    if backend == "onnx":
        onnx_file = ckpt.with_suffix(".onnx")
        if not onnx_file.is_file():
            raise UsageError(f"--backend onnx needs an exported model: run `vislab export {path} --out "
                             f"{onnx_file}`, or pass an .onnx file")
        if onnx_file.stat().st_mtime < ckpt.stat().st_mtime:
            raise UsageError(f"{onnx_file} is older than {ckpt}: export it again")
        return OnnxPredictor.load(onnx_file, **kw)
    from vislab.labs.fashion.predict import Predictor
    return Predictor.load(ckpt, **kw)


def model_meta(path: str | Path, backend: str | None = None) -> tuple[Path, dict]:
    """(model file, checkpoint-shaped metadata: encoders, image_size, review) without loading torch or a
    session, so that commands check their input first. A .onnx file gives its vislab metadata."""
    from vislab.core.cli import checkpoint_arg
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        m = read_onnx_meta(path)
        if m["lab"] != "fashion":
            from vislab.core.errors import CheckpointError
            raise CheckpointError(f"{path} is a {m['lab']} model, not a fashion model")
        return path, {"lab": "fashion", "backbone": m.get("backbone"), "image_size": m["input"]["size"],
                      "encoders": {t: o["labels"] for t, o in m["outputs"].items()}, "review": m.get("review"),
                      "versions": m.get("versions", {}), "config": {}}
    return checkpoint_arg(path, "fashion")
