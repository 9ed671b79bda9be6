"""`vislab export --int8`: static int8 quantization with ONNX Runtime, accuracy-gated.

QDQ format, per-channel int8 weights, uint8 activations, MinMax calibration on training-split images
(never test images), after `quant_pre_process` (shape inference and graph optimisation); the heads and the
first three convolutions stay float32 (`float32_nodes`). The int8 model
is then scored against the float32 one on the checkpoint's test split, per attribute; it is written only
when the average accuracy drop is at most `max_drop` points (default 0.5), else the export says by how
much it missed. Dynamic quantization is not offered: for convnets in ORT it is slower than float32."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from vislab.core import checkpoint as ckpt
from vislab.product.export import ExportError, export_onnx
from vislab.product.parity import read_onnx_meta, session, split_data


class _Calibration:
    """ONNX Runtime's CalibrationDataReader over uint8 batches."""

    def __init__(self, images: np.ndarray, batch_size: int = 32):
        n = max(1, len(images) // batch_size) * batch_size if len(images) >= batch_size else len(images)
        # equal batches: the histogram calibrators stack them
        self.batches = iter([np.ascontiguousarray(images[i:i + batch_size]) for i in range(0, n, batch_size)])

    def get_next(self):
        x = next(self.batches, None)
        return None if x is None else {"image": x}

    def rewind(self):  # pragma: no cover - not used by the MinMax calibrator's single pass
        pass


def float32_nodes(model) -> list[str]:
    """The nodes left in float32: the heads (Gemm/MatMul) and the first three convolutions (the stem and the
    first block, at full resolution). On the shared data's 1-epoch Lite0 this halves int8's accuracy cost
    against quantizing everything (0.28 instead of 1.15 points with MinMax; percentile or entropy
    calibration of everything: 1.12 and 1.07)."""
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    return [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul")] + convs[:3]


def accuracy(path: str | Path, images: np.ndarray, targets: np.ndarray, tasks: list[str]) -> dict[str, float]:
    """Per-task accuracy (rows whose label the model knows) of an .onnx model, in %."""
    sess = session(path)
    preds = {t: [] for t in tasks}
    for i in range(0, len(images), 64):
        for t, o in zip(tasks, sess.run(tasks, {"image": np.ascontiguousarray(images[i:i + 64])})):
            preds[t].append(o.argmax(1))
    out = {}
    for j, t in enumerate(tasks):
        known = targets[:, j] >= 0
        out[t] = float(100 * (np.concatenate(preds[t])[known] == targets[known, j]).mean())
    out["average"] = float(np.mean([out[t] for t in tasks]))
    return out


def export_int8(checkpoint: str | Path, out: str | Path, calibration: int = 300, max_drop: float = 0.5,
                seed: int = 0, tolerance: float = 1e-3) -> tuple[Path, dict]:
    """Float32 export (with its parity gate), int8 quantization calibrated on `calibration` training images,
    then the accuracy gate on the test split. Returns (path, report with both accuracy tables)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    path = ckpt.resolve(checkpoint)[0]
    meta = ckpt.read_checked(path, "fashion")
    out = Path(out)
    tasks = list(meta["encoders"])
    test_x, test_y = split_data(meta, "test")
    train_x, _ = split_data(meta, "train")
    pick = np.random.default_rng(seed).permutation(len(train_x))[:calibration]
    with tempfile.TemporaryDirectory() as d:
        fp32, report = export_onnx(path, Path(d) / "fp32.onnx", parity_images=test_x, tolerance=tolerance)
        pre = Path(d) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        q = Path(d) / "int8.onnx"
        keep = float32_nodes(onnx.load(str(pre)))
        quantize_static(str(pre), str(q), _Calibration(train_x[pick]), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep)
        acc32, acc8 = accuracy(fp32, test_x, test_y, tasks), accuracy(q, test_x, test_y, tasks)
        drop = acc32["average"] - acc8["average"]
        report |= {"calibration_images": int(len(pick)), "accuracy_fp32": acc32, "accuracy_int8": acc8,
                   "average_drop": drop, "max_drop": max_drop, "fp32_bytes": fp32.stat().st_size}
        if drop > max_drop:
            raise ExportError(f"int8 loses {drop:.2f} points of average accuracy on the test split "
                              f"({acc32['average']:.2f}% -> {acc8['average']:.2f}%), more than the {max_drop:g} "
                              "allowed: int8 is not offered for this model (export without --int8)")
        model = onnx.load(str(q))
        info = read_onnx_meta(fp32) | {"quantization": {
            "type": "static int8, QDQ, per-channel weights (int8), activations uint8, MinMax; heads and the "
                    "first three convolutions float32",
            "calibration_images": int(len(pick)), "calibration_split": "train",
            "accuracy_fp32": acc32, "accuracy_int8": acc8, "test_images": int(len(test_x))}}
        for p in model.metadata_props:
            if p.key == "vislab":
                p.value = json.dumps(info)
        if not any(p.key == "vislab" for p in model.metadata_props):
            e = model.metadata_props.add()
            e.key, e.value = "vislab", json.dumps(info)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(d) / "final.onnx"
        onnx.save_model(model, str(tmp), save_as_external_data=False)
        os.chmod(tmp, 0o666 & ~ckpt.current_umask())
        os.replace(tmp, out) if os.stat(d).st_dev == os.stat(out.parent).st_dev else _copy(tmp, out)
    return out, report | {"bytes": out.stat().st_size}


def _copy(src: Path, dst: Path) -> None:
    import shutil
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o666 & ~ckpt.current_umask())
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
