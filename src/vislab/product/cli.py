"""`vislab serve CHECKPOINT`: the tagging service (FastAPI + uvicorn) with its web page."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vislab.core.cli import console, fail, friendly
from vislab.core.clihelp import documented
from vislab.product.serve.settings import ServeSettings

FLAGS = {"max_body_mb": "max_body_mb", "max_batch": "max_batch", "max_pixels": "max_pixels",
         "micro_batch": "micro_batch", "batch_wait_ms": "batch_wait_ms", "batch_size": "batch_size",
         "threads": "threads", "top_k": "top_k", "precision": "precision", "backend": "backend", "index": "index",
         "tta": "tta"}


@friendly
@documented(ServeSettings, FLAGS, "vislab serve runs/fashion",
            "vislab serve runs/fashion --host 0.0.0.0 --port 8080 --index catalog.index",
            none={"threads": "one per CPU core", "threshold": "the checkpoint's (chosen on validation)",
                  "index": "no similar-product search",
                  "tta": "the model's own: what its review thresholds were chosen with"})
def serve_cmd(checkpoint: Annotated[Path, typer.Argument(
                  metavar="MODEL",
                  help="A fashion run folder (its best checkpoint), .safetensors, ensemble (.json) or .onnx file.")],
              host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")
                              ] = "127.0.0.1",
              port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
              max_body_mb: Annotated[Optional[float], typer.Option(metavar="MB", help="Largest request body.")
                                     ] = None,
              max_batch: Annotated[Optional[int], typer.Option(help="Most images per /v1/tag/batch.")] = None,
              max_pixels: Annotated[Optional[int], typer.Option(help="Largest image decoded (width x height).")
                                    ] = None,
              micro_batch: Annotated[Optional[bool], typer.Option(
                  "--micro-batch/--no-micro-batch", help="Run concurrent requests as one batch.")] = None,
              batch_wait_ms: Annotated[Optional[float], typer.Option(
                  metavar="MS", help="How long a micro-batch waits for more requests.")] = None,
              batch_size: Annotated[Optional[int], typer.Option(help="Most images per forward pass.")] = None,
              threads: Annotated[Optional[int], typer.Option(help="Threads for inference.")] = None,
              backend: Annotated[Optional[str], typer.Option(
                  metavar="torch|onnx", help="Inference backend. [default: onnx for an .onnx file, else torch]")
              ] = None,
              precision: Annotated[Optional[str], typer.Option(
                  metavar="32|bf16", help="Inference precision (bf16: ~2x faster on CPUs with native bfloat16).")
              ] = None,
              top_k: Annotated[Optional[int], typer.Option("--top-k", help="Labels returned per attribute.")
                               ] = None,
              tta: Annotated[Optional[bool], typer.Option(
                  "--tta/--no-tta", help="Flip test-time augmentation (two forward passes per image).")] = None,
              threshold: Annotated[Optional[str], typer.Option(
                  metavar="T|TASK=T,...", help="Review thresholds replacing the checkpoint's.")] = None,
              index: Annotated[Optional[Path], typer.Option(
                  metavar="FILE", help="A catalog index built with this model: POST /v1/similar and the page's "
                                       "similar-products strip.")] = None,
              log_level: Annotated[str, typer.Option(metavar="LEVEL", help="uvicorn's log level.")] = "info"):
    """Serve a fashion model: HTTP API (/v1/tag, /v1/tag/batch, /v1/model, /docs) and a web page at /."""
    from vislab.core.cli import build_config
    from vislab.labs.fashion.review import parse_threshold
    from vislab.product.backends import model_meta
    path, meta = model_meta(checkpoint, backend)
    settings = build_config(ServeSettings, FLAGS, None, None, max_body_mb=max_body_mb, max_batch=max_batch,
                            max_pixels=max_pixels, micro_batch=micro_batch, batch_wait_ms=batch_wait_ms,
                            batch_size=batch_size, threads=threads, top_k=top_k, precision=precision,
                            backend=backend, tta=tta, index=str(index) if index is not None else None)
    if index is not None:
        from vislab.product.index import read_index
        built = read_index(index)["model"]
        if built.get("image_size") != list(meta["image_size"]) or built.get("backbone") != meta.get("backbone"):
            fail(f"{index} was built by a {built.get('backbone')} model at {built.get('image_size')}; this one is "
                 f"{meta.get('backbone')} at {list(meta['image_size'])}: build the index with the served model")
        from vislab.product.backends import model_tta
        if bool(built.get("tta", False)) != (model_tta(meta) if settings.tta is None else settings.tta):
            fail(f"{index} was built {'with' if built.get('tta') else 'without'} --tta: serve "
                 f"{'with' if built.get('tta') else 'without'} it too, so that queries are embedded the same way",
                 code=2)
    if threshold is not None:
        settings.thresholds = parse_threshold(threshold, list(meta["encoders"]))
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - a dependency
        fail("vislab serve needs uvicorn: pip install uvicorn")
    from vislab.product.serve.app import create_app
    app = create_app(path, settings)
    console.print(f"serving {path} at http://{host}:{port}/ (API docs: /docs); Ctrl+C stops")
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)


@friendly
@documented(None, None, "vislab export runs/fashion --out fashion.onnx",
            "vislab export runs/fashion --int8 --out fashion.int8.onnx",
            none={"parity_images": "the checkpoint's own test split"})
def export_cmd(checkpoint: Annotated[Path, typer.Argument(
                   metavar="CHECKPOINT",
                   help="A fashion, CIFAR or Siamese run folder (its best checkpoint) or .safetensors file.")],
               out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The .onnx file to write.")
                              ] = Path("model.onnx"),
               fmt: Annotated[str, typer.Option("--format", metavar="onnx", help="Export format.")] = "onnx",
               opset: Annotated[int, typer.Option(min=17, max=23, help="ONNX opset.")] = 18,
               tolerance: Annotated[float, typer.Option(
                   min=0.0, help="Largest |logit difference| the parity gate accepts.")] = 1e-3,
               parity_images: Annotated[Optional[str], typer.Option(
                   metavar="FOLDER|GLOB", help="Images the parity gate compares on.")] = None,
               int8: Annotated[bool, typer.Option(
                   "--int8", help="Static int8 quantization (ONNX Runtime, QDQ, per-channel), accuracy-gated.")
               ] = False,
               calibration: Annotated[int, typer.Option(
                   min=1, help="Training-split images int8 is calibrated on.")] = 300,
               max_drop: Annotated[float, typer.Option(
                   metavar="POINTS", help="Largest average test accuracy drop int8 may cost.")] = 0.5):
    """Export a model to one self-contained ONNX file (labels and preprocessing in its metadata), after a
    parity gate against PyTorch on real images."""
    from vislab.core.cli import choice
    choice(fmt, ["onnx"], "--format")
    from vislab.product.backends import export_meta
    path, meta = export_meta(checkpoint)
    if int8 and meta["lab"] != "fashion":
        fail(f"--int8 is offered for fashion models (its gate scores every attribute); {path} is a "
             f"{meta['lab']} model: export it without --int8", code=2)
    images = None
    if parity_images is not None:
        import numpy as np

        from vislab.core.data.images import load_image
        from vislab.core.data.paths import expand_images
        files = expand_images([parity_images])
        images = np.stack([load_image(f, tuple(meta["image_size"])).transpose(2, 0, 1) for f in files])
    if int8:
        if parity_images is not None:
            fail("--int8 scores on the checkpoint's own test split: leave out --parity-images", code=2)
        from vislab.product.quantize import export_int8
        out, report = export_int8(path, out, calibration, max_drop, tolerance=tolerance)
        a32, a8 = report["accuracy_fp32"], report["accuracy_int8"]
        console.print("test accuracy fp32 -> int8: " + ", ".join(f"{t} {a32[t]:.1f} -> {a8[t]:.1f}" for t in a32))
        console.print(f"wrote {out} ({report['bytes'] / 2**20:.1f} MB, int8; float32 "
                      f"{report['fp32_bytes'] / 2**20:.1f} MB): average drop {report['average_drop']:.2f} points "
                      f"(allowed {max_drop:g}), calibrated on {report['calibration_images']} training images")
        return report
    from vislab.product.export import export_onnx
    out, report = export_onnx(path, out, opset, images, tolerance)
    worst = max(report["max_abs_diff"].values())
    agree = (f", labels agree {min(report['label_agreement'].values()):.2%}" if report["label_agreement"] else "")
    console.print(f"wrote {out} ({report['bytes'] / 2**20:.1f} MB, {report['exporter']}, opset {report['opset']}); "
                  f"parity on {report['images']} images: max |output difference| {worst:.1e}{agree}")
    return report
