"""Command line: `vislab fashion eda | train | evaluate | compare | predict`, `vislab demo`.

Every config field can be set as a trailing `section.field=value` override; the common ones
also have flags. Precedence: defaults < --config YAML < flags < overrides.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
fashion_app = typer.Typer(no_args_is_help=True, help="Fashion attributes: one backbone, one head per attribute.")
app.add_typer(fashion_app, name="fashion")
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (e.g. configs/fashion.yaml).")]
DataOpt = Annotated[Optional[str], typer.Option("--data", help="Dataset folder (CSV + images). Default: synthetic demo data.")]
CsvOpt = Annotated[Optional[str], typer.Option("--csv", help="CSV file, relative to --data or absolute.")]
ImageDirOpt = Annotated[Optional[str], typer.Option("--image-dir", help="Image folder, relative to --data or absolute.")]
ImageColOpt = Annotated[Optional[str], typer.Option("--image-col", help="CSV column with the image file name or id.")]
LabelColsOpt = Annotated[Optional[str], typer.Option("--label-cols", help="Comma-separated label columns, one head each.")]
SizeOpt = Annotated[Optional[str], typer.Option("--image-size", help="HEIGHTxWIDTH, e.g. 128x96.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only N rows of the CSV (quick runs).")]
Overrides = Annotated[Optional[list[str]], typer.Argument(help="section.field=value overrides, e.g. train.lr=3e-4")]
ProgressOpt = Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bars.")]


def _fail(msg: str, code: int = 1):
    err.print(f"[bold red]error:[/bold red] {msg}")
    raise typer.Exit(code)


def friendly(fn):
    """Known input errors become one clear line and exit code 1, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*a, **k):
        from pydantic import ValidationError

        from .checkpoint import CheckpointError
        from .data import DataError
        from .engine import NonFiniteLoss
        from .models import PretrainedUnavailable
        try:
            return fn(*a, **k)
        except ValidationError as e:
            _fail("invalid configuration:\n" + "\n".join(f"  {'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()))
        except (DataError, CheckpointError, PretrainedUnavailable, NonFiniteLoss, FileNotFoundError, ValueError) as e:
            _fail(str(e))
    return wrapper


def build_config(config: Path | None, overrides: list[str] | None, base: dict | None = None, **flags):
    """Defaults < base (a checkpoint's config) < YAML < flags < overrides."""
    from .config import load_config, parse_overrides, deep_merge
    mapping = {"data": "data.root", "csv": "data.csv", "image_dir": "data.image_dir", "image_col": "data.image_col",
               "label_cols": "data.label_cols", "image_size": "data.image_size", "limit": "data.limit",
               "backbone": "model.backbone", "pretrained": "model.pretrained", "freeze_backbone": "model.freeze_backbone",
               "recipe": "train.recipe", "epochs": "train.epochs", "max_steps": "train.max_steps",
               "batch_size": "train.batch_size", "lr": "train.lr", "accelerator": "train.accelerator",
               "devices": "train.devices", "strategy": "train.strategy", "precision": "train.precision",
               "seed": "train.seed", "deterministic": "train.deterministic", "out": "out_dir", "name": "name"}
    flat: dict = {}
    for k, v in flags.items():
        if v is None or k not in mapping:
            continue
        if k == "label_cols":
            v = [c.strip() for c in v.split(",") if c.strip()]
        elif k == "image_size":
            try:
                h, w = (int(p) for p in v.lower().split("x"))
            except ValueError:
                _fail(f"--image-size must look like 128x96 (height x width), got {v!r}")
            v = [h, w]
        elif k == "devices" and isinstance(v, str) and v.isdigit():
            v = int(v)
        cur = flat
        parts = mapping[k].split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    import yaml
    if config and not config.is_file():
        _fail(f"config file {config} does not exist")
    merged = deep_merge(base or {}, (yaml.safe_load(config.read_text()) or {}) if config else {})
    return load_config(None, deep_merge(deep_merge(merged, flat), parse_overrides(overrides)))


@fashion_app.command("eda")
@friendly
def eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
            image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
            image_size: SizeOpt = None, limit: LimitOpt = None,
            out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None, progress: ProgressOpt = True):
    """Clean the data, print counts per step, plot class distributions, write an EDA report."""
    from . import fashion
    cfg = build_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                       label_cols=label_cols, image_size=image_size, limit=limit)
    fashion.eda(cfg, out, progress)


@fashion_app.command("train")
@friendly
def train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
              image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
              image_size: SizeOpt = None, limit: LimitOpt = None,
              backbone: Annotated[Optional[str], typer.Option(help="timm model name.")] = None,
              pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained", help="ImageNet weights.")] = None,
              freeze_backbone: Annotated[Optional[bool], typer.Option("--freeze-backbone/--finetune", help="Linear probe on cached features.")] = None,
              recipe: Annotated[Optional[str], typer.Option(help="baseline or tuned.")] = None,
              epochs: Annotated[Optional[int], typer.Option()] = None,
              max_steps: Annotated[Optional[int], typer.Option(help="Total optimizer steps (budget).")] = None,
              batch_size: Annotated[Optional[int], typer.Option()] = None,
              lr: Annotated[Optional[float], typer.Option()] = None,
              accelerator: Annotated[Optional[str], typer.Option(help="cpu, gpu, auto.")] = None,
              devices: Annotated[Optional[str], typer.Option(help="Number of devices/processes.")] = None,
              strategy: Annotated[Optional[str], typer.Option(help="auto or ddp.")] = None,
              precision: Annotated[Optional[str], typer.Option(help="32-true, bf16-mixed, 16-mixed.")] = None,
              seed: Annotated[Optional[int], typer.Option()] = None,
              deterministic: Annotated[Optional[bool], typer.Option("--deterministic/--fast")] = None,
              resume: Annotated[Optional[Path], typer.Option(help="Run folder to continue from its last checkpoint.")] = None,
              out: Annotated[Optional[str], typer.Option(help="Folder for runs (default runs/).")] = None,
              name: Annotated[Optional[str], typer.Option(help="Run name.")] = None,
              progress: ProgressOpt = True):
    """Train a multi-task model; writes checkpoints, logs, test metrics and report.html."""
    from . import fashion
    cfg = build_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                       label_cols=label_cols, image_size=image_size, limit=limit, backbone=backbone, pretrained=pretrained,
                       freeze_backbone=freeze_backbone, recipe=recipe, epochs=epochs, max_steps=max_steps,
                       batch_size=batch_size, lr=lr, accelerator=accelerator, devices=devices, strategy=strategy,
                       precision=precision, seed=seed, deterministic=deterministic, out=out, name=name)
    run_dir = fashion.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}\n"
                      f"best checkpoint: {run_dir / 'checkpoints' / 'best.safetensors'}")


@fashion_app.command("evaluate")
@friendly
def evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                 overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
                 image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, limit: LimitOpt = None,
                 split: Annotated[str, typer.Option(help="test, val, train, or all (every row of --data).")] = "test",
                 out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None, progress: ProgressOpt = True):
    """Evaluate a checkpoint: per-task metrics, confusion matrices, ROC, errors, report."""
    from . import fashion
    from .checkpoint import read_meta
    meta = read_meta(checkpoint)
    cfg = build_config(config, overrides, base=meta.get("config"), data=data, csv=csv, image_dir=image_dir,
                       image_col=image_col, limit=limit)
    res = fashion.evaluate(checkpoint, cfg, split=split, out=out, progress=progress)
    console.print(f"report: {Path(out or Path(checkpoint).parent.parent / f'eval-{split}') / 'report.html'}")
    return res


@fashion_app.command("compare")
@friendly
def compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None,
                backbones: Annotated[str, typer.Option(help="Comma-separated timm names.")] = "tf_efficientnet_lite0",
                recipes: Annotated[str, typer.Option(help="Comma-separated recipes.")] = "baseline,tuned",
                epochs: Annotated[Optional[int], typer.Option()] = None,
                max_steps: Annotated[Optional[int], typer.Option(help="Same step budget for every run.")] = None,
                limit: LimitOpt = None, image_size: SizeOpt = None,
                pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained")] = None,
                freeze_backbone: Annotated[Optional[bool], typer.Option("--freeze-backbone/--finetune")] = None,
                out: Annotated[Optional[str], typer.Option()] = None, progress: ProgressOpt = True):
    """Train backbones x recipes with the same budget; write a comparison report."""
    from . import fashion
    cfg = build_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                       image_size=image_size, pretrained=pretrained, freeze_backbone=freeze_backbone, out=out)
    out_dir = fashion.compare(cfg, [b.strip() for b in backbones.split(",") if b.strip()],
                              [r.strip() for r in recipes.split(",") if r.strip()], progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")


@fashion_app.command("predict")
@friendly
def predict_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                images: Annotated[list[Path], typer.Argument(help="Image files.")],
                as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False):
    """Print each attribute with its confidence and a one-line caption, per image."""
    from .data import ImageError
    from .serve import Predictor
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


REPO_DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"
# the same settings as configs/demo.yaml, for an installed package without the repository
DEMO_DEFAULTS = ["data.root=null", "data.synthetic_n=3000", "data.image_size=[64,48]", "train.epochs=3",
                 "train.batch_size=64", "train.lr=0.003", "train.recipe=tuned"]


@app.command("demo")
@friendly
def demo_cmd(out: Annotated[str, typer.Option(help="Folder for runs.")] = "runs",
             config: ConfigOpt = None, progress: ProgressOpt = True):
    """Synthetic products: train -> evaluate -> report -> predict, in a few minutes on 2 CPU cores."""
    from . import fashion
    from .serve import Predictor
    config = config or (REPO_DEMO if REPO_DEMO.is_file() else None)
    cfg = build_config(config, None if config else DEMO_DEFAULTS, out=out, name="demo")
    run_dir = fashion.train(cfg, progress=progress)
    pred = Predictor.load(run_dir / "checkpoints" / "best.safetensors")
    import pandas as pd
    from .data import resolve_root
    root = resolve_root(cfg.data)
    df = pd.read_csv(root / "styles.csv").head(3)
    for _, row in df.iterrows():
        p = pred.predict(root / "images" / f"{row['id']}.jpg")
        console.rule(f"images/{row['id']}.jpg  (true: {row['gender']}, {row['baseColour']}, {row['articleType']}, {row['season']})")
        console.print(str(p))
    console.print(f"\n[bold green]demo done.[/bold green] report: {run_dir / 'report.html'}")


def main():
    app()


if __name__ == "__main__":
    main()
