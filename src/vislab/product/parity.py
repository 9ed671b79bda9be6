"""The parity gate: an exported graph must give the checkpoint's answers on real images.

ONNX Runtime and eager PyTorch run the same uint8 images; per output the largest absolute logit
difference must stay under the tolerance and the predicted labels must agree on every image. Known
exporter bugs produce graphs that load and run but compute something else: this is what catches them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vislab.core.errors import CheckpointError, DataError


def read_onnx_meta(path: str | Path) -> dict:
    """vislab's metadata of an .onnx file; CheckpointError when the file is not one vislab can use."""
    import onnx
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # noqa: BLE001  (protobuf raises several types on a broken file)
        raise CheckpointError(f"{path} is not a readable ONNX model (truncated or tampered with?): "
                              f"{type(e).__name__}: {str(e)[:160]}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "vislab" not in props:
        raise CheckpointError(f"{path} is an ONNX model without vislab's metadata (metadata_props['vislab']: "
                              "labels, input size, normalisation); export it with `vislab export`")
    try:
        meta = json.loads(props["vislab"])
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: vislab metadata is not valid JSON ({e})") from None
    missing = [k for k in ("format", "lab", "input", "outputs") if k not in meta]
    if missing:
        raise CheckpointError(f"{path}: vislab metadata lacks {', '.join(missing)}")
    return meta


def session(path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session with `threads` intra-op threads and no spinning (it would starve a server)."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {str(e)[:200]})") from None


def split_data(meta: dict, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """A split of the checkpoint's own data (its data config, cleaning and split), decoded: images
    (N, 3, H, W) uint8 and targets (N, tasks) in the checkpoint's label order (-1: label unknown to it).
    "test" falls back to "val" for data without a test part."""
    from vislab.labs.fashion.config import FashionRunConfig
    from vislab.labs.fashion.data import encode, prepare
    cfg = FashionRunConfig.model_validate(meta["config"])
    try:
        prepared = prepare(cfg.data.model_copy(update={"image_size": tuple(meta["image_size"])}), progress=False)
    except DataError as e:
        raise DataError(f"this needs the checkpoint's data ({e}); pass images with --parity-images") from None
    if split == "test" and not len(prepared.splits["test"]):
        split = "val"
    rows = prepared.splits[split]
    targets, _ = encode(prepared.df, meta["encoders"])
    return np.asarray(prepared.images[rows]), targets[rows]


def test_split_images(meta: dict) -> np.ndarray:
    """The checkpoint's own test split, decoded: (N, 3, H, W) uint8."""
    return split_data(meta, "test")[0]


def check_parity(onnx_path, model, images: np.ndarray, names: list[str], labelled: list[str],
                 tolerance: float = 1e-3, batch_size: int = 64) -> dict:
    """Run both on `images`: every output in `names` within `tolerance`, and the argmax of every `labelled`
    one (logits) the same on each image; else ExportError."""
    import torch

    from vislab.product.export import ExportError
    if len(images) == 0:
        raise ExportError("the parity gate has no images to compare on")
    sess = session(onnx_path)
    graph_names = [o.name for o in sess.get_outputs()]
    if graph_names != list(names):
        raise ExportError(f"the exported graph's outputs are {graph_names}, expected {list(names)}")
    diff = dict.fromkeys(names, 0.0)
    agree = dict.fromkeys(labelled, 0)
    flips = dict.fromkeys(labelled, 0)
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = np.array(images[i:i + batch_size])  # a writable copy (a decode cache is a read-only memmap)
            got = dict(zip(names, sess.run(None, {"image": x})))
            want = dict(zip(names, (o.numpy() for o in model(torch.from_numpy(x)))))
            for t in names:
                diff[t] = max(diff[t], float(np.abs(got[t] - want[t]).max()))
            for t in labelled:
                g, w = got[t], want[t]
                ga, wa = g.argmax(1), w.argmax(1)
                agree[t] += int((ga == wa).sum())
                rows = np.flatnonzero(ga != wa)  # a flip is a failure unless eager itself had a near tie
                margin = w[rows, wa[rows]] - w[rows, ga[rows]]
                flips[t] += int((margin > 2 * tolerance).sum())
    n = len(images)
    report = {"images": n, "max_abs_diff": diff, "max_abs_logit_diff": {t: diff[t] for t in labelled},
              "label_agreement": {t: agree[t] / n for t in labelled},
              "max_abs_embedding_diff": diff.get("embedding", 0.0), "tolerance": tolerance}
    bad = [t for t in names if diff[t] > tolerance or flips.get(t)]
    if bad:
        raise ExportError(f"parity gate failed for {', '.join(bad)}: max |difference| "
                          + ", ".join(f"{t} {diff[t]:.2g}" for t in bad) + f" (tolerance {tolerance:g})"
                          + "".join(f"; labels {t} {agree[t]}/{n}" for t in bad if t in agree)
                          + ". The exported graph does not compute what the checkpoint does; nothing was written")
    return report
