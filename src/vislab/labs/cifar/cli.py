"""`vislab cifar models | preview | train | evaluate | compare | explain`.

Flags and config (model specs included) are checked before the lab module (torch) is imported."""
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
    checkpoint_arg,
    console,
    engine_options,
    friendly,
    require_path,
    words,
)
from vislab.core.clihelp import documented
from vislab.labs.cifar.config import CifarRunConfig

app = typer.Typer(no_args_is_help=True, help="CIFAR-10: MLP, CNNs, block CNNs, transfer learning, fastnet.")

FLAGS = {"data": "data.root", "source": "data.source", "augment": "data.augment", "limit": "data.limit_per_class",
         "model": "model.name", "pretrained": "model.pretrained", "separable": "model.separable",
         "freeze": "model.freeze", **ENGINE_FLAGS}


NONE = {"out": "runs", "name": "cifar", "resume": "a new run", "limit": "every image", "freeze": "the model's own"}


def build_cifar_config(config, overrides: list[str] | None, base: dict | None = None, **flags):
    """The CIFAR run config; a --model given without --recipe (or train.recipe=) brings the model's own recipe."""
    own_recipe = flags.get("model") and not flags.get("recipe") and "train.recipe" not in " ".join(overrides or [])
    return build_config(CifarRunConfig, FLAGS, config, overrides, base,
                        implied={"train": {"recipe": None}} if own_recipe else None, **flags)


def check_data(cfg) -> None:
    """The data folders exist (torchvision may download them), before torch is imported."""
    d = cfg.data
    if d.source == "folder":
        root = require_path(d.root, "--data (data.root)")
        for sub, field in ((d.train_dir, "data.train_dir"), (d.test_dir, "data.test_dir")):
            require_path(root / sub, field)
    elif d.source == "pickles":
        require_path(d.root, "--data (data.root)")


CifarData = Annotated[Optional[str], typer.Option("--data", metavar="FOLDER", help="Dataset folder.")]
CifarModel = Annotated[Optional[str], typer.Option(
    "--model", "-m", metavar="SPEC",
    help="mlp, cnn, cnn-bn, blocks:ABCDEABC, transfer:vgg16, transfer:efficientnet_lite0, fastnet.")]
CifarRecipe = Annotated[Optional[str], typer.Option(
    metavar="NAME", help="mlp-sgd, cnn-adam, blocks-exp, transfer-sgd or fast. [default: the model's own]")]
CifarAugment = Annotated[Optional[str], typer.Option(metavar="none|a|b",
                                                     help="none, a (jitter+affine+flip) or b (crop+flip).")]
SourceOpt = Annotated[Optional[str], typer.Option(metavar="folder|pickles|torchvision", help="Where images come from.")]
CifarLimit = Annotated[Optional[int], typer.Option("--limit", help="At most N training images per class (quick runs).")]


@app.command("models")
@friendly
@documented(None, None, "vislab cifar models")
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
@documented(CifarRunConfig, FLAGS, "vislab cifar preview --augment a", "vislab cifar preview -c cifar/fast",
            none=NONE | {"out": "runs/NAME-preview"})
def cifar_preview_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      source: SourceOpt = None, augment: CifarAugment = None, limit: CifarLimit = None,
                      out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                      image_index: Annotated[int, typer.Option(help="Training image shown under 10 draws.")] = 0,
                      progress: ProgressOpt = True):
    """Augmentation preview, 50 preprocessed training images, validation class distribution."""
    cfg = build_cifar_config(config, overrides, data=data, source=source, augment=augment, limit=limit)
    check_data(cfg)
    from vislab.labs.cifar import lab as cifar
    d = cifar.preview(cfg, out, progress, image_index)
    console.print(f"preview report: {d / 'report.html'}")


@app.command("train")
@friendly
@documented(CifarRunConfig, FLAGS, "vislab cifar train -c cifar/fast",
            "vislab cifar train -m cnn-bn --epochs 3 --limit 500", none=NONE)
@engine_options
def cifar_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                    source: SourceOpt = None,
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
    cfg = build_cifar_config(config, overrides, data=data, source=source, model=model, recipe=recipe, augment=augment,
                             limit=limit, pretrained=pretrained, separable=separable, freeze=freeze, out=out,
                             name=name, **engine)
    if resume is None:
        check_data(cfg)
    from vislab.labs.cifar import lab as cifar
    run_dir = cifar.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@app.command("evaluate")
@friendly
@documented(CifarRunConfig, FLAGS, "vislab cifar evaluate runs/cifar-fast",
            "vislab cifar evaluate runs/cifar/checkpoints/best.safetensors --image-index 7",
            none={"data": "the checkpoint's own data"})
def cifar_evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(
                           metavar="CHECKPOINT", help="A run folder (its best checkpoint) or a checkpoint file.")],
                       overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                       model: Annotated[Optional[str], typer.Option(
                           "--model", "-m", metavar="SPEC",
                           help="Check the checkpoint holds this model. [default: no check]")] = None,
                       image_index: Annotated[int, typer.Option(help="Test image whose feature maps are drawn.")] = 0,
                       out: Annotated[Optional[Path], typer.Option(
                           help="Output folder. [default: eval beside the checkpoint's run]")] = None,
                       progress: ProgressOpt = True):
    """Evaluate a checkpoint: accuracy, per-class table, confusion, t-SNE, feature maps, report."""
    path, meta = checkpoint_arg(checkpoint, "cifar", "CIFAR")
    cfg = build_cifar_config(config, overrides, base=meta.get("config"), data=data)
    check_data(cfg)
    from vislab.labs.cifar import lab as cifar
    cifar.evaluate(path, cfg, model=model, out=out, progress=progress, image_index=image_index)
    console.print(f"report: {Path(out or path.parent.parent / 'eval') / 'report.html'}")


@app.command("compare")
@friendly
@documented(CifarRunConfig, FLAGS, "vislab cifar compare --models mlp,cnn,cnn-bn --epochs 3",
            "vislab cifar compare --models blocks:AAAAAAAA,blocks:EEEEEEEE --max-steps 500",
            none=NONE | {"out": "runs (folder NAME-compare)"})
def cifar_compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      models: Annotated[str, typer.Option(metavar="A,B,...", help="Comma-separated model specs.")
                                        ] = "mlp,cnn,cnn-bn",
                      recipe: Annotated[Optional[str], typer.Option(
                          metavar="NAME", help="One recipe for all. [default: each model's own]")] = None,
                      epochs: EpochsOpt = None,
                      max_steps: Annotated[Optional[int], typer.Option(
                          help="Same step budget for every model.")] = None,
                      limit: CifarLimit = None, augment: CifarAugment = None,
                      out: Annotated[Optional[str], typer.Option(metavar="FOLDER", help="Folder for the runs.")
                                     ] = None, progress: ProgressOpt = True):
    """Train several models and write one report: params, time, accuracy, macro-F1, plots side by side."""
    cfg = build_cifar_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                             augment=augment, out=out)
    check_data(cfg)
    specs = words(models)
    for m in specs:  # every model (and the recipe) is checked before the first one trains
        build_cifar_config(None, None, base=cfg.model_dump(mode="json"), model=m, recipe=recipe)
    from vislab.labs.cifar import lab as cifar
    out_dir = cifar.compare(cfg, specs, recipe, progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")


@app.command("explain")
@friendly
@documented(None, None, "vislab cifar explain runs/cifar-fast cat.png --out why.png",
            "vislab cifar explain runs/cifar-fast cat.png --class dog --method gradcam++",
            none={"label": "the predicted class", "out": "IMAGE's name + .explain.png"})
def cifar_explain_cmd(checkpoint: Annotated[Path, typer.Argument(
                          metavar="CHECKPOINT", help="A run folder (its best checkpoint) or a checkpoint file.")],
                      image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The image to explain.")],
                      label: Annotated[Optional[str], typer.Option(
                          "--class", metavar="CLASS", help="Explain this class instead of the predicted one.")] = None,
                      out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="FILE",
                                                                  help="The PNG to write.")] = None,
                      layer: Annotated[str, typer.Option(
                          metavar="NAME", help="Target layer (a module name); auto: the deepest stage at least 5 "
                                               "pixels on its short side.")] = "auto",
                      method: Annotated[str, typer.Option(metavar="gradcam|gradcam++", help="Weighting.")
                                        ] = "gradcam"):
    """Grad-CAM heat map of one image for its predicted (or a chosen) class."""
    from vislab.core.cli import choice
    from vislab.core.explain import resolve_targets
    choice(method, ["gradcam", "gradcam++"], "--method")
    path, meta = checkpoint_arg(checkpoint, "cifar", "CIFAR")
    require_path(image, "IMAGE", "file")
    resolve_targets({"class": meta.get("classes", [])}, "class", label)
    from vislab.labs.cifar.explain import explain
    info = explain(path, image, label, out or image.with_name(image.stem + ".explain.png"), layer, method)
    v = info["attributes"]["class"]
    console.print(f"{v['label']} ({v['confidence']:.2f})" + ("" if v["predicted"] else "  (asked for)")
                  + f"; {method} at {info['layer']}: wrote {info['grid']}")
