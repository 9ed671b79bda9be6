"""`vislab export CKPT --format onnx`: one self-contained .onnx file a consumer can run without vislab.

Fashion, CIFAR and Siamese checkpoints export (`vislab.product.onnx_specs` says what each becomes). The
graph takes what a photo decodes to, `image`: uint8 RGB, (batch, 3, H, W) at the model's size (any
batch), and does the normalisation itself; its outputs are named (logits per attribute or class, in the
label order of the metadata, and the embedding). The preprocessing contract and the label lists are
stored in the model's metadata (`metadata_props["vislab"]`, JSON), so nothing else is needed:

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

import torch

from vislab.core import checkpoint as ckpt
from vislab.core.errors import VislabError
from vislab.product.backends import EXPORTABLE
from vislab.product.onnx_specs import EMBEDDING, PADDING, SPECS, OnnxModel, OnnxSpec, input_info  # noqa: F401

ONNX_FORMAT = "vislab-onnx-1"
OPSET = 18


class ExportError(VislabError):
    """An export that failed, or whose graph does not give the checkpoint's answers."""


def onnx_metadata(spec: OnnxSpec, exporter: str, opset: int, versions: dict | None = None) -> dict:
    from vislab import __version__
    return {"format": ONNX_FORMAT, **spec.info, "input": input_info(spec), "exporter": exporter, "opset": opset,
            "versions": {"vislab": __version__, "torch": torch.__version__, **(versions or {})}}


def _export(model: torch.nn.Module, example: torch.Tensor, names: list[str], opset: int):
    """ModelProto and the exporter that made it: dynamo first, the legacy exporter as a fallback."""
    import onnx
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prog = torch.onnx.export(model, (example,), dynamo=True, input_names=["image"],
                                     output_names=names,
                                     dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
                                     opset_version=opset, verbose=False)
        return prog.model_proto, "torch.onnx dynamo"
    except Exception as first:  # noqa: BLE001  (the fallback says why it was needed)
        with tempfile.TemporaryDirectory() as d:
            try:
                torch.onnx.export(model, (example,), f"{d}/m.onnx", dynamo=False, input_names=["image"],
                                  output_names=names, opset_version=min(opset, 17),
                                  dynamic_axes={"image": {0: "batch"}, **{t: {0: "batch"} for t in names}})
            except Exception as second:  # noqa: BLE001
                raise ExportError(f"ONNX export failed: dynamo exporter: {type(first).__name__}: {first}; "
                                  f"legacy exporter: {type(second).__name__}: {second}") from None
            return onnx.load(f"{d}/m.onnx"), f"torch.onnx legacy (dynamo failed: {type(first).__name__})"


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = OPSET, parity_images=None,
                tolerance: float = 1e-3) -> tuple[Path, dict]:
    """Export a fashion, CIFAR or Siamese checkpoint to `out` (one file), after the parity gate on
    `parity_images` ((N, 3, H, W) uint8; default: the checkpoint's own test split). Returns (path, parity report)."""
    import onnx

    from vislab.product.parity import check_parity
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_meta(path)
    if meta.get("lab") not in EXPORTABLE:
        raise ExportError(f"{path} is a {meta.get('lab')!r} checkpoint: vislab export takes "
                          f"{', '.join(EXPORTABLE)} models")
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
        spec = SPECS[meta["lab"]](path, meta)
        h, w = spec.image_size
        proto, exporter = _export(spec.module, torch.zeros(2, 3, h, w, dtype=torch.uint8), spec.names, opset)
        info = onnx_metadata(spec, exporter, opset, meta.get("versions"))
        del proto.metadata_props[:]
        entry = proto.metadata_props.add()
        entry.key, entry.value = "vislab", json.dumps(info)
        proto.producer_name = "vislab"
        proto.doc_string = f"vislab {meta['lab']} model ({info['backbone']}): " + ", ".join(spec.names)
        onnx.save_model(proto, tmp, save_as_external_data=False)
        images = spec.test_images() if parity_images is None else parity_images
        report = check_parity(tmp, spec.module, images, spec.names, spec.labelled, tolerance)
        os.chmod(tmp, 0o666 & ~ckpt.current_umask())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out, report | {"exporter": exporter, "opset": opset, "bytes": out.stat().st_size}
