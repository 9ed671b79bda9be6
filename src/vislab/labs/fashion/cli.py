"""`vislab fashion eda | train | evaluate | compare | predict` and `vislab demo`."""
from __future__ import annotations

import json
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
    choice,
    console,
    engine_options,
    err,
    fail,
    friendly,
    words,
)

app = typer.Typer(no_args_is_help=True, help="Fashion attributes: one backbone, one head per attribute.")

FLAGS = {"data": "data.root", "csv": "data.csv", "image_dir": "data.image_dir", "image_col": "data.image_col",
         "label_cols": "data.label_cols", "image_size": "data.image_size", "limit": "data.limit",
         "backbone": "model.backbone", "pretrained": "model.pretrained", "freeze_backbone": "model.freeze_backbone",
         **ENGINE_FLAGS}

DataOpt = Annotated[Optional[str], typer.Option(
    "--data", help="Dataset folder (CSV + images). Default: synthetic demo data.")]
CsvOpt = Annotated[Optional[str], typer.Option("--csv", help="CSV file, relative to --data or absolute.")]
ImageDirOpt = Annotated[Optional[str], typer.Option(
    "--image-dir", help="Image folder, relative to --data or absolute.")]
ImageColOpt = Annotated[Optional[str], typer.Option("--image-col", help="CSV column with the image file name or id.")]
LabelColsOpt = Annotated[Optional[str], typer.Option(
    "--label-cols", help="Comma-separated label columns, one head each.")]
SizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="HEIGHTxWIDTH, e.g. 128x96.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only N rows of the CSV (quick runs).")]


def build_fashion_config(config, overrides, base: dict | None = None, label_cols: str | None = None,
                         image_size: str | None = None, **flags):
    """The fashion run config from --config, flags (--label-cols a,b; --image-size HxW) and overrides."""
    from vislab.labs.fashion.config import FashionRunConfig
    size = None
    if image_size is not None:
        try:
            h, w = (int(p) for p in image_size.lower().split("x"))
        except ValueError:
            fail(f"--image-size must look like 128x96 (height x width), got {image_size!r}")
        size = [h, w]
    return build_config(FashionRunConfig, FLAGS, config, overrides, base,
                        label_cols=None if label_cols is None else words(label_cols), image_size=size, **flags)


@app.command("eda")
@friendly
def eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
            image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
            image_size: SizeOpt = None, limit: LimitOpt = None,
            out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None, progress: ProgressOpt = True):
    """Clean the data, print counts per step, plot class distributions, write an EDA report."""
    from vislab.labs.fashion import lab as fashion
    cfg = build_fashion_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                       label_cols=label_cols, image_size=image_size, limit=limit)
    fashion.eda(cfg, out, progress)


@app.command("train")
@friendly
@engine_options
def train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
              image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
              image_size: SizeOpt = None, limit: LimitOpt = None,
              backbone: Annotated[Optional[str], typer.Option(help="timm model name.")] = None,
              pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained",
                                                                 help="ImageNet weights.")] = None,
              freeze_backbone: Annotated[Optional[bool], typer.Option("--freeze-backbone/--finetune",
                                                                      help="Linear probe on cached features.")] = None,
              recipe: Annotated[Optional[str], typer.Option(help="baseline or tuned.")] = None,
              resume: ResumeOpt = None,
              out: OutOpt = None,
              name: NameOpt = None,
              progress: ProgressOpt = True, engine: dict | None = None):
    """Train a multi-task model; writes checkpoints, logs, test metrics and report.html."""
    from vislab.labs.fashion import lab as fashion
    cfg = build_fashion_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                               label_cols=label_cols, image_size=image_size, limit=limit, backbone=backbone,
                               pretrained=pretrained, freeze_backbone=freeze_backbone, recipe=recipe, out=out,
                               name=name, **engine)
    run_dir = fashion.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}\n"
                      f"best checkpoint: {run_dir / 'checkpoints' / 'best.safetensors'}")


@app.command("evaluate")
@friendly
def evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                 overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
                 image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, limit: LimitOpt = None,
                 split: Annotated[str, typer.Option(help="test, val, train, or all (every row of --data).")] = "test",
                 out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                 progress: ProgressOpt = True):
    """Evaluate a checkpoint: per-task metrics, confusion matrices, ROC, errors, report."""
    choice(split, ["test", "val", "train", "all"], "--split")
    from vislab.core.checkpoint import read_checked
    from vislab.labs.fashion import lab as fashion
    meta = read_checked(checkpoint, "fashion")  # another lab's checkpoint: one line, before its config is read
    cfg = build_fashion_config(config, overrides, base=meta.get("config"), data=data, csv=csv, image_dir=image_dir,
                       image_col=image_col, limit=limit)
    res = fashion.evaluate(checkpoint, cfg, split=split, out=out, progress=progress)
    console.print(f"report: {Path(out or Path(checkpoint).parent.parent / f'eval-{split}') / 'report.html'}")
    return res


@app.command("compare")
@friendly
def compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None,
                backbones: Annotated[str, typer.Option(help="Comma-separated timm names.")] = "tf_efficientnet_lite0",
                recipes: Annotated[str, typer.Option(help="Comma-separated recipes.")] = "baseline,tuned",
                epochs: EpochsOpt = None,
                max_steps: Annotated[Optional[int], typer.Option(help="Same step budget for every run.")] = None,
                limit: LimitOpt = None, image_size: SizeOpt = None,
                pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained")] = None,
                freeze_backbone: Annotated[Optional[bool], typer.Option("--freeze-backbone/--finetune")] = None,
                out: Annotated[Optional[str], typer.Option()] = None, progress: ProgressOpt = True):
    """Train backbones x recipes with the same budget; write a comparison report."""
    from vislab.labs.fashion import lab as fashion
    cfg = build_fashion_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                       image_size=image_size, pretrained=pretrained, freeze_backbone=freeze_backbone, out=out)
    out_dir = fashion.compare(cfg, [b.strip() for b in backbones.split(",") if b.strip()],
                              [r.strip() for r in recipes.split(",") if r.strip()], progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")


@app.command("predict")
@friendly
def predict_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                images: Annotated[list[Path], typer.Argument(help="Image files.")],
                as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False):
    """Print each attribute with its confidence and a one-line caption, per image."""
    from vislab.core.data.images import ImageError
    from vislab.labs.fashion.predict import Predictor
    pred = Predictor.load(checkpoint)
    results, failed = [], 0
    for img in images:
        try:
            results.append(pred.predict(img).as_dict() | {"image": str(img)})
        except ImageError as e:
            failed += 1
            results.append({"image": str(img), "error": str(e)})
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            console.rule(r["image"])
            if "error" in r:
                err.print(f"[red]error:[/red] {r['error']}")
                continue
            for t, v in r["attributes"].items():
                console.print(f"{t}: {v['label']} ({v['confidence']:.2f})")
            console.print(f"[bold]{r['caption']}[/bold]")
    if failed:
        raise typer.Exit(1)


@friendly
def demo_cmd(out: Annotated[str, typer.Option(help="Folder for runs.")] = "runs",
             config: ConfigOpt = None, progress: ProgressOpt = True):
    """Synthetic products: train -> evaluate -> report -> predict, in a few minutes on 2 CPU cores."""
    from vislab.labs.fashion import lab as fashion
    from vislab.labs.fashion.predict import Predictor
    cfg = build_fashion_config(config or "fashion/demo", None, out=out, name="demo")
    run_dir = fashion.train(cfg, progress=progress)
    pred = Predictor.load(run_dir / "checkpoints" / "best.safetensors")
    import pandas as pd

    from vislab.labs.fashion.data import resolve_root
    root = resolve_root(cfg.data)
    df = pd.read_csv(root / "styles.csv").head(3)
    for _, row in df.iterrows():
        p = pred.predict(root / "images" / f"{row['id']}.jpg")
        console.rule(f"images/{row['id']}.jpg  (true: {row['gender']}, {row['baseColour']}, "
                     f"{row['articleType']}, {row['season']})")
        console.print(str(p))
    console.print(f"\n[bold green]demo done.[/bold green] report: {run_dir / 'report.html'}")
