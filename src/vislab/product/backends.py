"""Which predictor runs a model file, read without torch so that commands check their input first:
`model_meta` (the metadata of a checkpoint, an ensemble file or an exported .onnx file) and `load_predictor`
(torch for a checkpoint or an ensemble, ONNX Runtime for an .onnx file or `--backend onnx`)."""
from __future__ import annotations

from pathlib import Path

from vislab.labs.fashion.ensemble_file import is_ensemble

BACKENDS = ("torch", "onnx")
EXPORTABLE = ("fashion", "cifar", "siamese")
"""The labs whose checkpoints `vislab export` writes as ONNX (`vislab.product.onnx_specs.SPECS`)."""


def load_predictor(path: str | Path, backend: str | None = None, **kw):
    """The predictor for `path`: a .onnx file runs on ONNX Runtime, a checkpoint (or run folder) on torch;
    `backend="onnx"` with a checkpoint uses the .onnx file exported beside it (`vislab export` first)."""
    from vislab.core.errors import UsageError
    path = Path(path)
    if backend not in (None, *BACKENDS):
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if is_ensemble(path):
        _torch_only(path, backend)
        from vislab.labs.fashion.ensemble import EnsemblePredictor
        return EnsemblePredictor.load(path, **kw)
    if path.suffix.lower() == ".onnx":
        if backend == "torch":
            raise UsageError(f"{path} is an ONNX model: it runs with --backend onnx (or leave --backend out)")
        from vislab.product.onnx_predictor import OnnxPredictor
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
        from vislab.product.onnx_predictor import OnnxPredictor
        return OnnxPredictor.load(onnx_file, **kw)
    from vislab.labs.fashion.predict import Predictor
    return Predictor.load(ckpt, **kw)


def model_tta(meta: dict) -> bool:
    """The flip TTA a model's review thresholds and scores were computed with (what `predict`, `tag`, `index` and
    `serve` use when --tta/--no-tta is not given): an ensemble file's `tta`, a checkpoint's `train.tta` (its
    recipe's when unset); False for an exported .onnx file, whose metadata holds no config."""
    if "ensemble" in meta:
        return bool(meta["ensemble"].get("tta"))
    if not meta.get("config"):
        return False
    from vislab.labs.fashion.config import FashionRunConfig
    return bool(FashionRunConfig.model_validate(meta["config"]).train.filled().tta)


def _torch_only(path: Path, backend: str | None) -> None:
    if backend == "onnx":
        from vislab.core.errors import UsageError
        raise UsageError(f"{path} is an ensemble: it runs on the torch backend (its members' neighbour votes are "
                         f"not in an exported .onnx file)")


def model_meta(path: str | Path, backend: str | None = None) -> tuple[Path, dict]:
    """(model file, checkpoint-shaped metadata: encoders, image_size, review) without loading torch or a
    session, so that commands check their input first. A .onnx file gives its vislab metadata; an ensemble file its
    members' shared metadata (and `backend` onnx is refused for it here, before anything is written)."""
    from vislab.core.cli import checkpoint_arg
    path = Path(path)
    if is_ensemble(path):
        _torch_only(path, backend)
        from vislab.labs.fashion.ensemble_file import meta_of, read
        return path, meta_of(read(path)[0])
    if path.suffix.lower() == ".onnx":
        from vislab.product.parity import read_onnx_meta
        m = read_onnx_meta(path)
        if m["lab"] != "fashion":
            from vislab.core.errors import CheckpointError
            raise CheckpointError(f"{path} is a {m['lab']} model, not a fashion model")
        return path, {"lab": "fashion", "backbone": m.get("backbone"), "image_size": m["input"]["size"],
                      "encoders": {t: o["labels"] for t, o in m["outputs"].items()}, "review": m.get("review"),
                      "versions": m.get("versions", {}), "config": {}}
    return checkpoint_arg(path, "fashion")


def export_meta(path: str | Path) -> tuple[Path, dict]:
    """(checkpoint file, metadata) of a checkpoint `vislab export` takes, read without torch."""
    from vislab.core.checkpoint import CheckpointError, read_meta, resolve
    from vislab.labs.fashion.ensemble_file import refuse
    refuse(path, "vislab export")
    file = resolve(path)[0]
    meta = read_meta(file)
    if meta.get("lab") not in EXPORTABLE:
        raise CheckpointError(f"{file} is a {meta.get('lab')!r} checkpoint: vislab export takes "
                              f"{', '.join(EXPORTABLE)} models")
    return file, meta
