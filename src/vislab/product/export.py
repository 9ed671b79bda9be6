"""`vislab export CKPT --format onnx`: one self-contained .onnx file a consumer can run without vislab.

The graph takes what a photo decodes to, `image`: uint8 RGB, (batch, 3, H, W) at the model's size (any
batch), and does the normalisation itself; it has one named output per attribute (logits, in the
label order of the metadata). The preprocessing contract and the label lists are stored in the model's
metadata (`metadata_props["vislab"]`, JSON), so nothing else is needed:

    resize to H x W keeping the aspect ratio, padding with white (255, 255, 255), centred;
    any image mode -> RGB (transparency composited on white); then uint8, channels first.

Exporter: `torch.onnx.export(..., dynamo=True)` (opset 18); the legacy TorchScript exporter only if that
fails. Every export then passes the parity gate (`vislab.product.parity`) or is not written."""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core import checkpoint as ckpt
from vislab.core.errors import VislabError

ONNX_FORMAT = "vislab-onnx-1"
OPSET = 18
EMBEDDING = "embedding"
PADDING = "resize to H x W keeping the aspect ratio, centred, padded with white (255, 255, 255); RGB"


class ExportError(VislabError):
    """An export that failed, or whose graph does not give the checkpoint's answers."""


class OnnxModel(nn.Module):
    """uint8 (N, 3, H, W) -> one logits tensor per task, then the pooled backbone features ("embedding",
    for similar-product search), normalisation inside."""

    def __init__(self, net: nn.Module, mean, std, tasks: list[str]):
        super().__init__()
        self.net, self.tasks = net, tasks
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, image: torch.Tensor):
        f = self.net.forward_features((image.float() / 255.0 - self.mean) / self.std)
        out = self.net.forward_heads(f)
        return (*(out[t] for t in self.tasks), f)


def onnx_metadata(meta: dict[str, Any], exporter: str, opset: int) -> dict[str, Any]:
    from vislab import __version__
    dc = meta["data_config"]
    return {"format": ONNX_FORMAT, "lab": meta["lab"], "backbone": meta["backbone"],
            "input": {"name": "image", "dtype": "uint8", "layout": "NCHW", "channels": "RGB",
                      "size": list(meta["image_size"]), "preprocessing": PADDING,
                      "normalisation": {"mean": dc["mean"], "std": dc["std"], "applied": "inside the graph"}},
            "outputs": {t: {"kind": "logits", "labels": labels} for t, labels in meta["encoders"].items()},
            "embedding": {"name": EMBEDDING, "kind": "pooled backbone features, before the heads"},
            "review": meta.get("review"), "exporter": exporter, "opset": opset,
            "versions": {"vislab": __version__, "torch": torch.__version__, **meta.get("versions", {})}}


def _export(model: OnnxModel, example: torch.Tensor, tasks: list[str], opset: int):
    """ModelProto and the exporter that made it: dynamo first, the legacy exporter as a fallback."""
    import onnx
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"],
                                     output_names=[*tasks, EMBEDDING],
                                     dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
                                     opset_version=opset, verbose=False)
        return prog.model_proto, "torch.onnx dynamo"
    except Exception as first:  # noqa: BLE001  (the fallback says why it was needed)
        with tempfile.TemporaryDirectory() as d:
            try:
                names = [*tasks, EMBEDDING]
                torch.onnx.export(model, (example,), f"{d}/m.onnx", dynamo=False, input_names=["image"],
                                  output_names=names, opset_version=min(opset, 17),
                                  dynamic_axes={"image": {0: "batch"}, **{t: {0: "batch"} for t in names}})
            except Exception as second:  # noqa: BLE001
                raise ExportError(f"ONNX export failed: dynamo exporter: {type(first).__name__}: {first}; "
                                  f"legacy exporter: {type(second).__name__}: {second}") from None
            return onnx.load(f"{d}/m.onnx"), f"torch.onnx legacy (dynamo failed: {type(first).__name__})"


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = OPSET, parity_images=None,
                tolerance: float = 1e-3) -> tuple[Path, dict]:
    """Export a fashion checkpoint to `out` (one file), after the parity gate on `parity_images` ((N, 3, H, W)
    uint8; default: the checkpoint's own test split). Returns (path, parity report)."""
    import onnx

    from vislab.labs.fashion.lab import load_model
    from vislab.product.parity import check_parity, test_split_images
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_checked(path, "fashion")
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise ExportError(f"--out must end in .onnx, got {out}")
    folder = out.parent if str(out.parent) else Path(".")
    try:  # before the (slow) export: a folder that cannot take the file fails at once
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as e:
        raise ExportError(f"cannot write {out}: {e.strerror or e} ({folder})") from None
    os.close(fd)
    try:
        net, meta = load_model(path)
        tasks = list(meta["encoders"])
        model = OnnxModel(net.eval(), meta["data_config"]["mean"], meta["data_config"]["std"], tasks).eval()
        h, w = meta["image_size"]
        proto, exporter = _export(model, torch.zeros(2, 3, h, w, dtype=torch.uint8), tasks, opset)
        info = onnx_metadata(meta, exporter, opset)
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = "vislab", json.dumps(info)
        proto.producer_name = "vislab"
        proto.doc_string = f"vislab fashion model ({meta['backbone']}): " + ", ".join(tasks)
        onnx.save_model(proto, tmp, save_as_external_data=False)
        images = test_split_images(meta) if parity_images is None else parity_images
        report = check_parity(tmp, model, images, tasks, tolerance)
        os.chmod(tmp, 0o666 & ~ckpt.current_umask())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out, report | {"exporter": exporter, "opset": opset, "bytes": out.stat().st_size}
