"""Command line: `vislab fashion eda | train | evaluate | compare | predict`,
`vislab cifar models | preview | train | evaluate | compare`,
`vislab siamese train | search | evaluate | verify | gallery | margins | splits | baseline`,
`vislab vae eda | train | evaluate | sample | traverse | compare | classifier`, `vislab demo`.

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
cifar_app = typer.Typer(no_args_is_help=True, help="CIFAR-10: MLP, CNNs, block CNNs, transfer learning, fastnet.")
app.add_typer(cifar_app, name="cifar")
vae_app = typer.Typer(no_args_is_help=True, help="Generative lab: VAE, conv VAE, beta-VAE, conditional VAE on Fashion-MNIST.")
app.add_typer(vae_app, name="vae")
siamese_app = typer.Typer(no_args_is_help=True, help="Siamese faces: verification and retrieval, contrastive and triplet losses.")
app.add_typer(siamese_app, name="siamese")
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
# engine flags shared by every lab's train command
EpochsOpt = Annotated[Optional[int], typer.Option()]
MaxStepsOpt = Annotated[Optional[int], typer.Option(help="Total optimizer steps (budget).")]
BatchOpt = Annotated[Optional[int], typer.Option()]
LrOpt = Annotated[Optional[float], typer.Option()]
AccelOpt = Annotated[Optional[str], typer.Option(help="cpu, gpu, auto.")]
DevicesOpt = Annotated[Optional[str], typer.Option(help="Number of devices/processes.")]
StrategyOpt = Annotated[Optional[str], typer.Option(help="auto or ddp.")]
PrecisionOpt = Annotated[Optional[str], typer.Option(help="32-true, bf16-mixed, 16-mixed.")]
SeedOpt = Annotated[Optional[int], typer.Option()]
DeterministicOpt = Annotated[Optional[bool], typer.Option("--deterministic/--fast")]
ResumeOpt = Annotated[Optional[Path], typer.Option(help="Run folder to continue from its last checkpoint.")]
OutOpt = Annotated[Optional[str], typer.Option(help="Folder for runs (default runs/).")]
NameOpt = Annotated[Optional[str], typer.Option(help="Run name.")]


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


def _floats(text: str, option: str) -> list[float]:
    """A comma-separated list of numbers from an option ('' -> []), or one clear error naming the option."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        _fail(f"{option} takes comma-separated numbers, e.g. 0.8,0.6; got {text!r}")


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
              epochs: EpochsOpt = None,
              max_steps: MaxStepsOpt = None,
              batch_size: BatchOpt = None,
              lr: LrOpt = None,
              accelerator: AccelOpt = None,
              devices: DevicesOpt = None,
              strategy: StrategyOpt = None,
              precision: PrecisionOpt = None,
              seed: SeedOpt = None,
              deterministic: DeterministicOpt = None,
              resume: ResumeOpt = None,
              out: OutOpt = None,
              name: NameOpt = None,
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
                epochs: EpochsOpt = None,
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


# --------------------------------------------------------------------------- CIFAR-10 lab

CIFAR_FLAGS = {"data": "data.root", "source": "data.source", "augment": "data.augment", "limit": "data.limit_per_class",
               "model": "model.name", "pretrained": "model.pretrained", "separable": "model.separable",
               "freeze": "model.freeze", "recipe": "train.recipe", "epochs": "train.epochs",
               "max_steps": "train.max_steps", "batch_size": "train.batch_size", "lr": "train.lr",
               "accelerator": "train.accelerator", "devices": "train.devices", "strategy": "train.strategy",
               "precision": "train.precision", "seed": "train.seed", "deterministic": "train.deterministic",
               "out": "out_dir", "name": "name"}


def build_lab_config(model_cls, flag_map: dict[str, str], config: Path | None, overrides: list[str] | None,
                     base: dict | None = None, **flags):
    """Defaults < base (a checkpoint's config) < YAML < flags < overrides, for a lab's config class."""
    import yaml

    from .config import deep_merge, load_config, parse_overrides
    flat: dict = {}
    for k, v in flags.items():
        if v is None:
            continue
        if k == "devices" and isinstance(v, str) and v.isdigit():
            v = int(v)
        cur = flat
        parts = flag_map[k].split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    if config and not config.is_file():
        _fail(f"config file {config} does not exist")
    merged = deep_merge(base or {}, (yaml.safe_load(config.read_text()) or {}) if config else {})
    merged = deep_merge(deep_merge(merged, flat), parse_overrides(overrides))
    if model_cls.__name__ == "CifarRunConfig" and "model" in flat and "recipe" not in flat.get("train", {}) \
            and "train.recipe" not in " ".join(overrides or []):
        merged.setdefault("train", {})["recipe"] = None  # a model chosen on the command line brings its own recipe
    return load_config(None, merged, model=model_cls)


def build_cifar_config(config: Path | None, overrides: list[str] | None, base: dict | None = None, **flags):
    from .config import CifarRunConfig
    return build_lab_config(CifarRunConfig, CIFAR_FLAGS, config, overrides, base, **flags)


CifarData = Annotated[Optional[str], typer.Option("--data", help="Dataset folder (default ../shared/data/cifar10).")]
CifarModel = Annotated[Optional[str], typer.Option("--model", "-m", help="mlp, cnn, cnn-bn, blocks:ABCDEABC, transfer:vgg16, transfer:efficientnet_lite0, fastnet.")]
CifarRecipe = Annotated[Optional[str], typer.Option(help="mlp-sgd, cnn-adam, blocks-exp, transfer-sgd, fast (default: the model's own).")]
CifarAugment = Annotated[Optional[str], typer.Option(help="none, a (jitter+affine+flip) or b (crop+flip).")]
CifarLimit = Annotated[Optional[int], typer.Option("--limit", help="At most N training images per class (quick runs).")]


@cifar_app.command("models")
def cifar_models_cmd():
    """List the models with their trainable parameter counts."""
    from rich.table import Table as RTable

    from .cifar import models_table
    t = RTable(title="vislab cifar models")
    rows = models_table()
    for c in rows[0]:
        t.add_column(str(c), justify="right" if c in ("params", "trainable params") else "left")
    for r in rows:
        t.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in r.values()))
    console.print(t)


@cifar_app.command("preview")
@friendly
def cifar_preview_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      source: Annotated[Optional[str], typer.Option(help="folder, pickles or torchvision.")] = None,
                      augment: CifarAugment = None, limit: CifarLimit = None,
                      out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                      image_index: Annotated[int, typer.Option(help="Training image shown under 10 draws.")] = 0,
                      progress: ProgressOpt = True):
    """Augmentation preview, 50 preprocessed training images, validation class distribution."""
    from . import cifar
    cfg = build_cifar_config(config, overrides, data=data, source=source, augment=augment, limit=limit)
    d = cifar.preview(cfg, out, progress, image_index)
    console.print(f"preview report: {d / 'report.html'}")


@cifar_app.command("train")
@friendly
def cifar_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                    source: Annotated[Optional[str], typer.Option(help="folder, pickles or torchvision.")] = None,
                    model: CifarModel = None, recipe: CifarRecipe = None, augment: CifarAugment = None, limit: CifarLimit = None,
                    pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained", help="transfer:* ImageNet weights.")] = None,
                    separable: Annotated[Optional[bool], typer.Option("--separable/--no-separable", help="D blocks depthwise-separable.")] = None,
                    freeze: Annotated[Optional[int], typer.Option(help="transfer:* leading layers frozen.")] = None,
                    epochs: EpochsOpt = None,
                    max_steps: MaxStepsOpt = None,
                    batch_size: BatchOpt = None,
                    lr: LrOpt = None,
                    accelerator: AccelOpt = None,
                    devices: DevicesOpt = None,
                    strategy: StrategyOpt = None,
                    precision: PrecisionOpt = None,
                    seed: SeedOpt = None,
                    deterministic: DeterministicOpt = None,
                    resume: ResumeOpt = None,
                    out: OutOpt = None,
                    name: NameOpt = None,
                    progress: ProgressOpt = True):
    """Train one CIFAR-10 model; writes checkpoints, logs, test metrics and report.html."""
    from . import cifar
    cfg = build_cifar_config(config, overrides, data=data, source=source, model=model, recipe=recipe, augment=augment,
                             limit=limit, pretrained=pretrained, separable=separable, freeze=freeze, epochs=epochs,
                             max_steps=max_steps, batch_size=batch_size, lr=lr, accelerator=accelerator, devices=devices,
                             strategy=strategy, precision=precision, seed=seed, deterministic=deterministic, out=out, name=name)
    run_dir = cifar.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@cifar_app.command("evaluate")
@friendly
def cifar_evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint.")],
                       overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                       model: Annotated[Optional[str], typer.Option("--model", "-m", help="Check the checkpoint holds this model.")] = None,
                       image_index: Annotated[int, typer.Option(help="Test image whose feature maps are drawn.")] = 0,
                       out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None, progress: ProgressOpt = True):
    """Evaluate a checkpoint: accuracy, per-class table, confusion, t-SNE, feature maps, report."""
    from . import cifar
    from .checkpoint import read_meta
    from .checkpoint import CheckpointError
    meta = read_meta(checkpoint)
    if meta.get("lab") != "cifar":
        raise CheckpointError(f"{checkpoint} is a {meta.get('lab')!r} checkpoint, not a CIFAR one")
    cfg = build_cifar_config(config, overrides, base=meta.get("config"), data=data)
    cifar.evaluate(checkpoint, cfg, model=model, out=out, progress=progress, image_index=image_index)
    console.print(f"report: {Path(out or Path(checkpoint).parent.parent / 'eval') / 'report.html'}")


@cifar_app.command("compare")
@friendly
def cifar_compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: CifarData = None,
                      models: Annotated[str, typer.Option(help="Comma-separated model specs.")] = "mlp,cnn,cnn-bn",
                      recipe: Annotated[Optional[str], typer.Option(help="One recipe for all (default: each model's own).")] = None,
                      epochs: EpochsOpt = None,
                      max_steps: Annotated[Optional[int], typer.Option(help="Same step budget for every model.")] = None,
                      limit: CifarLimit = None, augment: CifarAugment = None,
                      out: Annotated[Optional[str], typer.Option()] = None, progress: ProgressOpt = True):
    """Train several models and write one report: params, time, accuracy, macro-F1, plots side by side."""
    from . import cifar
    cfg = build_cifar_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                             augment=augment, out=out)
    out_dir = cifar.compare(cfg, [m.strip() for m in models.split(",") if m.strip()], recipe, progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")


# --------------------------------------------------------------------------- Siamese lab

SIAMESE_FLAGS = {"data": "data.root", "loss": "loss.loss", "form": "loss.form", "margin": "loss.margin",
                 "miner": "loss.miner", "distance": "loss.distance", "embedding_dim": "model.embedding_dim",
                 "backbone": "model.backbone", "pretrained": "model.pretrained", "recipe": "train.recipe",
                 "epochs": "train.epochs", "max_steps": "train.max_steps", "batch_size": "train.batch_size",
                 "lr": "train.lr", "accelerator": "train.accelerator", "devices": "train.devices",
                 "strategy": "train.strategy", "precision": "train.precision", "seed": "train.seed",
                 "deterministic": "train.deterministic", "out": "out_dir", "name": "name", "trials": "search.trials",
                 "sampler": "search.sampler", "objective": "search.objective", "storage": "search.storage",
                 "retrain": "search.retrain"}


def build_siamese_config(config: Path | None, overrides: list[str] | None, base: dict | None = None, **flags):
    from .config import SiameseRunConfig
    return build_lab_config(SiameseRunConfig, SIAMESE_FLAGS, config, overrides, base, **flags)


SiameseData = Annotated[Optional[str], typer.Option("--data", help="Folder of person subfolders (default ../shared/data/faces).")]
LossOpt = Annotated[Optional[str], typer.Option(help="contrastive or triplet.")]
FormOpt = Annotated[Optional[str], typer.Option(help="Contrastive form: original or hadsell.")]
MarginOpt = Annotated[Optional[float], typer.Option(help="Loss margin.")]
MinerOpt = Annotated[Optional[str], typer.Option(help="Triplet mining: none, batch-hard, semi-hard.")]
RunOpt = Annotated[Path, typer.Option("--run", "-r", help="Run folder (or a checkpoint file) of a trained Siamese model.")]


@siamese_app.command("train")
@friendly
def siamese_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                      loss: LossOpt = None, form: FormOpt = None, margin: MarginOpt = None, miner: MinerOpt = None,
                      distance: Annotated[Optional[str], typer.Option(help="Triplet distance: euclidean or cosine.")] = None,
                      embedding_dim: Annotated[Optional[int], typer.Option(help="Embedding size.")] = None,
                      backbone: Annotated[Optional[str], typer.Option(help="timm backbone.")] = None,
                      pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained")] = None,
                      epochs: EpochsOpt = None, max_steps: MaxStepsOpt = None, batch_size: BatchOpt = None,
                      lr: LrOpt = None, accelerator: AccelOpt = None, devices: DevicesOpt = None,
                      precision: PrecisionOpt = None, seed: SeedOpt = None, deterministic: DeterministicOpt = None,
                      resume: ResumeOpt = None, out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = True):
    """Train an embedding network; writes checkpoints, logs, test verification/retrieval metrics and report.html."""
    from . import siamese
    cfg = build_siamese_config(config, overrides, data=data, loss=loss, form=form, margin=margin, miner=miner,
                               distance=distance, embedding_dim=embedding_dim, backbone=backbone, pretrained=pretrained,
                               epochs=epochs, max_steps=max_steps, batch_size=batch_size, lr=lr, accelerator=accelerator,
                               devices=devices, precision=precision, seed=seed, deterministic=deterministic, out=out,
                               name=name)
    run_dir = siamese.train(cfg, resume=resume, progress=progress)
    console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@siamese_app.command("search")
@friendly
def siamese_search_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                       trials: Annotated[Optional[int], typer.Option(help="Number of trials (in total, with resumed ones).")] = None,
                       sampler: Annotated[Optional[str], typer.Option(help="random or tpe.")] = None,
                       objective: Annotated[Optional[str], typer.Option(help="val_auc or val_loss.")] = None,
                       storage: Annotated[Optional[str], typer.Option(help="Optuna storage URL (default: sqlite in the search folder).")] = None,
                       retrain: Annotated[Optional[bool], typer.Option("--retrain/--keep", help="Retrain the best parameters, or keep the best trial's run.")] = None,
                       out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = False):
    """Optuna search over lr, margin, step_size, gamma, epochs, embedding_dim and loss; resumable."""
    from . import siamese
    cfg = build_siamese_config(config, overrides, data=data, trials=trials, sampler=sampler, objective=objective,
                               storage=storage, retrain=retrain, out=out, name=name)
    folder = siamese.search(cfg, progress=progress, console=console)
    console.print(f"search report: {folder / 'report.html'}\nbest parameters: {folder / 'best.yaml'}")


@siamese_app.command("evaluate")
@friendly
def siamese_evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(help="A Siamese .safetensors checkpoint.")],
                         data: Annotated[Optional[str], typer.Option("--data", help="Another folder of people (default: the run's own split).")] = None,
                         out: Annotated[Optional[Path], typer.Option(help="Output folder (default: the run folder).")] = None,
                         progress: ProgressOpt = True):
    """Verification (ROC, AUC, EER, accuracy at the validation threshold), retrieval (P@1, MAP@R), plots, report."""
    from . import siamese
    siamese.evaluate(checkpoint, out=out, root=data, progress=progress)
    console.print(f"report: {Path(out or Path(checkpoint).parent.parent) / 'report.html'}")


@siamese_app.command("baseline")
@friendly
def siamese_baseline_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                         backbone: Annotated[Optional[str], typer.Option(help="timm backbone.")] = None,
                         out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                         progress: ProgressOpt = True):
    """The starting point: pretrained backbone features without training, evaluated like a trained model."""
    from . import siamese
    cfg = build_siamese_config(config, overrides, data=data, backbone=backbone)
    siamese.evaluate_pretrained(cfg, out, progress)


@siamese_app.command("verify")
@friendly
def siamese_verify_cmd(img1: Annotated[Path, typer.Argument(help="First face image.")],
                       img2: Annotated[Path, typer.Argument(help="Second face image.")],
                       run: RunOpt = Path("runs/siamese"),
                       threshold: Annotated[Optional[float], typer.Option(help="Distance threshold (default: the one chosen on validation).")] = None,
                       as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Are two photos the same person? Prints the distance, the threshold and same/different with a confidence."""
    from . import siamese
    r = siamese.verify(run, img1, img2, threshold)
    if as_json:
        console.print_json(json.dumps(r))
        return
    verdict = "[bold green]same person[/bold green]" if r["same"] else "[bold red]different people[/bold red]"
    conf = "" if r["confidence"] is None else f" (confidence {100 * r['confidence']:.1f}%)"
    console.print(f"distance {r['distance']:.4f}, threshold {r['threshold']:.4f}: {verdict}{conf}")


@siamese_app.command("gallery")
@friendly
def siamese_gallery_cmd(query: Annotated[Path, typer.Argument(help="Query face image.")],
                        run: RunOpt = Path("runs/siamese"),
                        gallery: Annotated[Optional[Path], typer.Option("--gallery", "-g", help="Folder of images or person subfolders (default: the run's data.root).")] = None,
                        top: Annotated[int, typer.Option(help="Number of matches.")] = 10,
                        out: Annotated[Optional[Path], typer.Option(help="PNG of the query and its matches.")] = None,
                        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """The --top gallery images nearest to a query face, closest first."""
    from . import siamese
    if gallery is None:
        _, meta, cfg = siamese.load_model(siamese._resolve(run)[0])
        gallery = Path(cfg.data.root)
    r = siamese.gallery(run, query, gallery, top, out)
    if as_json:
        console.print_json(json.dumps(r))
        return
    from rich.table import Table as RTable
    t = RTable(title=f"{top} nearest of {query} in {gallery} ({r['gallery_images']} images)")
    for c in ("rank", "distance", "person", "file"):
        t.add_column(c)
    for m in r["matches"]:
        t.add_row(str(m["rank"]), f"{m['distance']:.4f}", str(m["person"] or ""), m["file"])
    console.print(t)
    if out:
        console.print(f"grid: {out}")


@siamese_app.command("splits")
@friendly
def siamese_splits_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                       seeds: Annotated[str, typer.Option(help="Comma-separated person-split seeds (data.seed).")] = "42,1,2,3,4",
                       baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also the untrained pretrained features on each split.")] = True,
                       out: OutOpt = None, progress: ProgressOpt = False):
    """Train and evaluate one setup on several person splits: mean ± sd of AUC, EER, P@1, MAP@R."""
    from . import siamese
    cfg = build_siamese_config(config, overrides, data=data, out=out)
    folder = siamese.repeat_splits(cfg, [int(x) for x in seeds.split(",") if x.strip()], baseline, progress, console)
    console.print(f"splits report: {folder / 'report.html'}")


@siamese_app.command("margins")
@friendly
def siamese_margins_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                        margins: Annotated[str, typer.Option(help="Comma-separated margins.")] = "1,2",
                        loss: LossOpt = None, form: FormOpt = None, miner: MinerOpt = None, epochs: EpochsOpt = None,
                        out: OutOpt = None, progress: ProgressOpt = False):
    """Train the same setup at each margin; compare distance distributions, ROC and AUC in one report."""
    from . import siamese
    cfg = build_siamese_config(config, overrides, data=data, loss=loss, form=form, miner=miner, epochs=epochs, out=out)
    folder = siamese.compare_margins(cfg, _floats(margins, "--margins"), progress)
    console.print(f"margin report: {folder / 'report.html'}")


# --------------------------------------------------------------------------- generative lab

VAE_FLAGS = {"data": "data.root", "model": "model.name", "beta": "model.beta", "latent_dim": "model.latent_dim",
             "likelihood": "model.likelihood", "epochs": "train.epochs", "batch_size": "train.batch_size",
             "lr": "train.lr", "accelerator": "train.accelerator", "seed": "train.seed", "out": "out_dir", "name": "name",
             "classifier": "eval.classifier", "fid_n": "eval.fid_n", "inception": "eval.inception",
             "inception_weights": "eval.inception_weights", "iwae_k": "eval.iwae_k", "limit_per_class": "data.limit_per_class"}
FmnistData = Annotated[Optional[str], typer.Option("--data", help="Folder of the four Fashion-MNIST IDX files.")]
ClassifierOpt = Annotated[Optional[str], typer.Option("--classifier", help="Classifier weights for FID (a) and controllability (default: shipped).")]
FidNOpt = Annotated[Optional[int], typer.Option("--fid-n", help="Generated and test images per FID (default 10000).")]
InceptionOpt = Annotated[Optional[bool], typer.Option("--inception/--no-inception", help="Also FID (b) with Inception-v3 (slow on CPU).")]
InceptionWeightsOpt = Annotated[Optional[str], typer.Option("--inception-weights", help="torch-fidelity's Inception weights file (offline).")]
IwaeOpt = Annotated[Optional[int], typer.Option("--iwae-k", help="k > 0: importance-weighted log p(x) bound with k samples.")]
CheckpointArg = Annotated[Path, typer.Argument(help="A VAE run folder or its .safetensors checkpoint.")]


def build_vae_config(config, overrides, **flags):
    from .config import VaeRunConfig
    return build_lab_config(VaeRunConfig, VAE_FLAGS, config, overrides, None, **flags)


def _print_vae_metrics(m: dict) -> None:
    from .vae import _summary_text
    console.print(_summary_text(m))


@vae_app.command("eda")
@friendly
def vae_eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/fashion-mnist-eda).")] = None):
    """Class distribution (train, test), pixel intensities, non-zero pixels, examples per class."""
    from . import vae
    folder = vae.eda(build_vae_config(config, overrides, data=data), out)
    console.print(f"EDA report: {folder / 'report.html'}")


@vae_app.command("train")
@friendly
def vae_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                  model: Annotated[Optional[str], typer.Option("--model", "-m", help="vae, conv-vae or cvae.")] = None,
                  beta: Annotated[Optional[float], typer.Option(help="KL weight (> 0).")] = None,
                  latent_dim: Annotated[Optional[int], typer.Option(help="Latent size.")] = None,
                  likelihood: Annotated[Optional[str], typer.Option(help="bernoulli or gaussian.")] = None,
                  limit_per_class: Annotated[Optional[int], typer.Option(help="Train on N images per class (quick runs).")] = None,
                  epochs: EpochsOpt = None, batch_size: BatchOpt = None, lr: LrOpt = None, accelerator: AccelOpt = None,
                  seed: SeedOpt = None, classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                  inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None, iwae_k: IwaeOpt = None,
                  resume: ResumeOpt = None, out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = True):
    """Train a VAE, then evaluate it: test nats per image, FID, controllability (cvae), grids, report.html."""
    from . import vae
    cfg = build_vae_config(config, overrides, data=data, model=model, beta=beta, latent_dim=latent_dim,
                           likelihood=likelihood, limit_per_class=limit_per_class, epochs=epochs, batch_size=batch_size,
                           lr=lr, accelerator=accelerator, seed=seed, classifier=classifier, fid_n=fid_n,
                           inception=inception, inception_weights=inception_weights, iwae_k=iwae_k, out=out, name=name)
    run_dir = vae.train(cfg, resume=resume, progress=progress)
    console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@vae_app.command("evaluate")
@friendly
def vae_evaluate_cmd(checkpoint: CheckpointArg, classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                     inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None,
                     iwae_k: IwaeOpt = None,
                     fitted_prior: Annotated[Optional[bool], typer.Option("--fitted-prior/--no-fitted-prior", help="Also FID (a) and controllability of samples from the fitted prior (default: on).")] = None,
                     detail: Annotated[Optional[str], typer.Option(help="Comma-separated cVAE classes to show in detail.")] = None,
                     temperatures: Annotated[Optional[str], typer.Option(help="Comma-separated fitted-prior sampling temperatures measured beside 1 (default 0.8,0.6,0.4; '' for none).")] = None):
    """Test nats per image, FID (a) and optionally (b), controllability (cvae), grids, traversal, t-SNE, report.html."""
    from . import vae
    ov = {k: v for k, v in dict(classifier=classifier, fid_n=fid_n, inception=inception,
                                inception_weights=inception_weights, iwae_k=iwae_k,
                                fitted_prior=fitted_prior).items() if v is not None}
    if inception_weights:
        ov["inception"] = True
    if detail:
        ov["detail_classes"] = [c.strip() for c in detail.split(",") if c.strip()]
    if temperatures is not None:
        ov["temperatures"] = _floats(temperatures, "--temperatures")
    vae.evaluate(checkpoint, ov)


@vae_app.command("sample")
@friendly
def vae_sample_cmd(checkpoint: CheckpointArg,
                   class_name: Annotated[Optional[str], typer.Option("--class", help="Class name (cvae), e.g. Coat.")] = None,
                   n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 16,
                   seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
                   temperature: Annotated[float, typer.Option(help="Prior scale (1 = the prior).")] = 1.0,
                   prior: Annotated[str, typer.Option(help="standard: z ~ N(0, I); fitted: the Gaussian mixture per class fitted to the training codes (saved by evaluate, else fitted now).")] = "standard",
                   out: Annotated[Optional[Path], typer.Option(help="PNG path (default: the run's plots/).")] = None):
    """A PNG grid of samples from the prior (of one class with --class for the cVAE)."""
    from . import vae
    console.print(f"samples: {vae.sample(checkpoint, n, class_name, out, seed, temperature, prior=prior)}")


@vae_app.command("traverse")
@friendly
def vae_traverse_cmd(checkpoint: CheckpointArg,
                     k: Annotated[int, typer.Option(help="First k latent dimensions.")] = 8,
                     steps: Annotated[int, typer.Option(help="Values per dimension.")] = 9,
                     span: Annotated[float, typer.Option(help="Values from -span to span.")] = 3.0,
                     image: Annotated[int, typer.Option(help="Test image whose posterior mean is the centre.")] = 0,
                     order: Annotated[str, typer.Option(help="kl: the k most used dimensions (highest mean KL); first: dimensions 0..k-1.")] = "kl",
                     out: Annotated[Optional[Path], typer.Option(help="PNG path.")] = None):
    """Latent traversal: k dimensions, each from -span to span, the others fixed at a test image's mean."""
    from . import vae
    console.print(f"traversal: {vae.traverse(checkpoint, k, steps, span, image, out, order=order)}")


@vae_app.command("compare")
@friendly
def vae_compare_cmd(runs: Annotated[list[Path], typer.Argument(help="Evaluated VAE run folders.")],
                    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/vae-compare")):
    """The results table over runs (nats, FID, controllability), traversals side by side, per-class grids."""
    from . import vae
    folder = vae.compare(runs, out)
    console.print(f"comparison report: {folder / 'report.html'}")
    console.print((folder / "report.md").read_text().split("## Results", 1)[-1].strip()[:4000])


@vae_app.command("classifier")
@friendly
def vae_classifier_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                       epochs: EpochsOpt = None, seed: SeedOpt = None, out: OutOpt = None, name: NameOpt = None,
                       resume: ResumeOpt = None,
                       ship: Annotated[bool, typer.Option("--ship", help="Copy the weights into the package (what FID uses by default).")] = False,
                       progress: ProgressOpt = True):
    """Train the Fashion-MNIST classifier behind FID (a) and controllability; prints its test accuracy."""
    from . import vae_classifier
    from .config import ClassifierRunConfig
    flags = {"data": "data.root", "epochs": "train.epochs", "seed": "train.seed", "out": "out_dir", "name": "name"}
    cfg = build_lab_config(ClassifierRunConfig, flags, config, overrides, None, data=data, epochs=epochs, seed=seed,
                           out=out, name=name)
    run_dir = vae_classifier.train_classifier(cfg, resume=resume, progress=progress)
    m = json.loads((run_dir / "metrics.json").read_text())
    console.print(f"test accuracy {100 * m['test_accuracy']:.2f}%; weights {run_dir / 'classifier.safetensors'}")
    if ship:
        console.print(f"shipped: {vae_classifier.ship(run_dir)}")


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
