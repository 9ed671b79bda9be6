"""`vislab cifar models | preview | train | evaluate | compare`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vislab.core.cli import (
    ENGINE_FLAGS,
    ConfigOpt,
    EpochsOpt,
    NameOpt,
    OutOpt,
    Overrides,
    ProgressOpt,
    ResumeOpt,
    build_config,
    console,
    engine_options,
    friendly,
)

app = typer.Typer(no_args_is_help=True, help="CIFAR-10: MLP, CNNs, block CNNs, transfer learning, fastnet.")

FLAGS = {"data": "data.root", "source": "data.source", "augment": "data.augment", "limit": "data.limit_per_class",
         "model": "model.name", "pretrained": "model.pretrained", "separable": "model.separable",
         "freeze": "model.freeze", **ENGINE_FLAGS}


def build_cifar_config(config, overrides: list[str] | None, base: dict | None = None, **flags):
    """The CIFAR run config; a --model given without --recipe (or train.recipe=) brings the model's own recipe."""
    from vislab.labs.cifar.config import CifarRunConfig
    own_recipe = flags.get("model") and not flags.get("recipe") and "train.recipe" not in " ".join(overrides or [])
    return build_config(CifarRunConfig, FLAGS, config, overrides, base,
                        implied={"train": {"recipe": None}} if own_recipe else None, **flags)


CifarData = Annotated[Optional[str], typer.Option("--data", help="Dataset folder (default ../shared/data/cifar10).")]
CifarModel = Annotated[Optional[str], typer.Option(
    "--model", "-m", help="mlp, cnn, cnn-bn, blocks:ABCDEABC, transfer:vgg16, transfer:efficientnet_lite0, fastnet.")]
CifarRecipe = Annotated[Optional[str], typer.Option(
    help="mlp-sgd, cnn-adam, blocks-exp, transfer-sgd, fast (default: the model's own).")]
CifarAugment = Annotated[Optional[str], typer.Option(help="none, a (jitter+affine+flip) or b (crop+flip).")]
CifarLimit = Annotated[Optional[int], typer.Option("--limit", help="At most N training images per class (quick runs).")]


@app.command("models")
def cifar_models_cmd():
    """List the models with their trainable parameter counts."""
    from rich.table import Table as RTable

    from vislab.labs.cifar.lab import models_table
    t = RTable(title="vislab cifar models")
    rows = models_table()
    for c in rows[0]:
        t.add_column(str(c), justify="right" if c in ("params", "trainable params") else "left")
    for r in rows:
        t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()))
    console.print(t)


@app.command("preview")
@friendly
def cifar_preview_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      source: Annotated[Optional[str], typer.Option(help="folder, pickles or torchvision.")] = None,
                      augment: CifarAugment = None, limit: CifarLimit = None,
                      out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                      image_index: Annotated[int, typer.Option(help="Training image shown under 10 draws.")] = 0,
                      progress: ProgressOpt = True):
    """Augmentation preview, 50 preprocessed training images, validation class distribution."""
    from vislab.labs.cifar import lab as cifar
    cfg = build_cifar_config(config, overrides, data=data, source=source, augment=augment, limit=limit)
    d = cifar.preview(cfg, out, progress, image_index)
    console.print(f"preview report: {d / 'report.html'}")


@app.command("train")
@friendly
@engine_options
def cifar_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                    source: Annotated[Optional[str], typer.Option(help="folder, pickles or torchvision.")] = None,
                    model: CifarModel = None, recipe: CifarRecipe = None, augment: CifarAugment = None,
                    limit: CifarLimit = None,
                    pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained",
                                                                       help="transfer:* ImageNet weights.")] = None,
                    separable: Annotated[Optional[bool], typer.Option("--separable/--no-separable",
                                                                      help="D blocks depthwise-separable.")] = None,
                    freeze: Annotated[Optional[int], typer.Option(help="transfer:* leading layers frozen.")] = None,
                    resume: ResumeOpt = None,
                    out: OutOpt = None,
                    name: NameOpt = None,
                    progress: ProgressOpt = True, engine: dict | None = None):
    """Train one CIFAR-10 model; writes checkpoints, logs, test metrics and report.html."""
    from vislab.labs.cifar import lab as cifar
    cfg = build_cifar_config(config, overrides, data=data, source=source, model=model, recipe=recipe, augment=augment,
                             limit=limit, pretrained=pretrained, separable=separable, freeze=freeze, out=out,
                             name=name, **engine)
    run_dir = cifar.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@app.command("evaluate")
@friendly
def cifar_evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                       overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                       model: Annotated[Optional[str], typer.Option(
                           "--model", "-m", help="Check the checkpoint holds this model.")] = None,
                       image_index: Annotated[int, typer.Option(help="Test image whose feature maps are drawn.")] = 0,
                       out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                       progress: ProgressOpt = True):
    """Evaluate a checkpoint: accuracy, per-class table, confusion, t-SNE, feature maps, report."""
    from vislab.core.checkpoint import read_checked
    from vislab.labs.cifar import lab as cifar
    meta = read_checked(checkpoint, "cifar", "CIFAR")
    cfg = build_cifar_config(config, overrides, base=meta.get("config"), data=data)
    cifar.evaluate(checkpoint, cfg, model=model, out=out, progress=progress, image_index=image_index)
    console.print(f"report: {Path(out or Path(checkpoint).parent.parent / 'eval') / 'report.html'}")


@app.command("compare")
@friendly
def cifar_compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      models: Annotated[str, typer.Option(help="Comma-separated model specs.")] = "mlp,cnn,cnn-bn",
                      recipe: Annotated[Optional[str], typer.Option(
                          help="One recipe for all (default: each model's own).")] = None,
                      epochs: EpochsOpt = None,
                      max_steps: Annotated[Optional[int], typer.Option(
                          help="Same step budget for every model.")] = None,
                      limit: CifarLimit = None, augment: CifarAugment = None,
                      out: Annotated[Optional[str], typer.Option()] = None, progress: ProgressOpt = True):
    """Train several models and write one report: params, time, accuracy, macro-F1, plots side by side."""
    from vislab.labs.cifar import lab as cifar
    cfg = build_cifar_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                             augment=augment, out=out)
    out_dir = cifar.compare(cfg, [m.strip() for m in models.split(",") if m.strip()], recipe, progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")
