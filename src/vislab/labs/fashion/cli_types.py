"""Argument and option types the fashion commands share (`cli.py`, `cli_search.py`): the model, the
backend, and how a catalog of images or a CSV is named."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

CheckpointArg = Annotated[Path, typer.Argument(
    metavar="CHECKPOINT", help="A run folder (its best checkpoint) or a .safetensors checkpoint.")]
ModelArg = Annotated[Path, typer.Argument(
    metavar="MODEL", help="A run folder (its best checkpoint), a .safetensors checkpoint, an ensemble file "
                          "(`vislab fashion ensemble`) or an exported .onnx file.")]
BackendOpt = Annotated[Optional[str], typer.Option(
    metavar="torch|onnx", help="Inference backend; onnx runs the .onnx file `vislab export` wrote beside the "
                               "checkpoint. [default: onnx for an .onnx file, else torch]")]
TTA_DEFAULT = "the model's own: what its review thresholds were chosen with"
TtaOpt = Annotated[Optional[bool], typer.Option(
    "--tta/--no-tta", help="Flip test-time augmentation: average the photo and its mirror (two forward passes; "
                           "what `evaluate` scores for a run trained with train.tta).")]
InputsArg = Annotated[list[str], typer.Argument(
    metavar="INPUT...", help="Image files, folders (recursive), glob patterns, or one CSV catalog.")]
CatalogColOpt = Annotated[Optional[str], typer.Option(
    "--image-col", metavar="COLUMN", help="The CSV column naming each image (its id).")]
CatalogDirOpt = Annotated[Optional[str], typer.Option(
    "--image-dir", metavar="FOLDER", help="Folder the CSV's image names are relative to.")]
CatalogExtOpt = Annotated[str, typer.Option(metavar="EXT", help="Appended to CSV image names without an extension.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")]
