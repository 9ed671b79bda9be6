"""`vislab serve CHECKPOINT`: the tagging service (FastAPI + uvicorn) with its web page."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vislab.core.cli import checkpoint_arg, console, fail, friendly
from vislab.core.clihelp import documented
from vislab.product.serve.settings import ServeSettings

FLAGS = {"max_body_mb": "max_body_mb", "max_batch": "max_batch", "max_pixels": "max_pixels",
         "micro_batch": "micro_batch", "batch_wait_ms": "batch_wait_ms", "batch_size": "batch_size",
         "threads": "threads", "top_k": "top_k", "precision": "precision"}


@friendly
@documented(ServeSettings, FLAGS, "vislab serve runs/fashion",
            "vislab serve runs/fashion --host 0.0.0.0 --port 8080 --threshold season=0.5",
            none={"threads": "one per CPU core", "threshold": "the checkpoint's (chosen on validation)"})
def serve_cmd(checkpoint: Annotated[Path, typer.Argument(
                  metavar="CHECKPOINT", help="A fashion run folder (its best checkpoint) or .safetensors file.")],
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
              threads: Annotated[Optional[int], typer.Option(help="Torch threads for inference.")] = None,
              precision: Annotated[Optional[str], typer.Option(
                  metavar="32|bf16", help="Inference precision (bf16: ~2x faster on CPUs with native bfloat16).")
              ] = None,
              top_k: Annotated[Optional[int], typer.Option("--top-k", help="Labels returned per attribute.")
                               ] = None,
              threshold: Annotated[Optional[str], typer.Option(
                  metavar="T|TASK=T,...", help="Review thresholds replacing the checkpoint's.")] = None,
              log_level: Annotated[str, typer.Option(metavar="LEVEL", help="uvicorn's log level.")] = "info"):
    """Serve a fashion model: HTTP API (/v1/tag, /v1/tag/batch, /v1/model, /docs) and a web page at /."""
    from vislab.core.cli import build_config
    from vislab.labs.fashion.review import parse_threshold
    path, meta = checkpoint_arg(checkpoint, "fashion")
    settings = build_config(ServeSettings, FLAGS, None, None, max_body_mb=max_body_mb, max_batch=max_batch,
                            max_pixels=max_pixels, micro_batch=micro_batch, batch_wait_ms=batch_wait_ms,
                            batch_size=batch_size, threads=threads, top_k=top_k, precision=precision)
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
