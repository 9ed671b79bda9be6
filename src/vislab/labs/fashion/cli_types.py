"""Argument and option types the fashion commands share (`cli.py`, `cli_search.py`)."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

CheckpointArg = Annotated[Path, typer.Argument(
    metavar="CHECKPOINT", help="A run folder (its best checkpoint) or a .safetensors checkpoint.")]
ModelArg = Annotated[Path, typer.Argument(
    metavar="MODEL", help="A run folder (its best checkpoint), a .safetensors checkpoint or an exported .onnx file.")]
BackendOpt = Annotated[Optional[str], typer.Option(
    metavar="torch|onnx", help="Inference backend; onnx runs the .onnx file `vislab export` wrote beside the "
                               "checkpoint. [default: onnx for an .onnx file, else torch]")]
