"""`vislab fashion eda | train | refit | evaluate | compare | predict | tag | calibrate | knn | ensemble | explain`
and `vislab demo`.

Every command checks its flags and config before it imports torch or reads data; the lab module (torch,
timm, Fabric) is imported only once the input is known to be good."""
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
    checkpoint_arg,
    choice,
    console,
    engine_options,
    err,
    fail,
    friendly,
    require_path,
    words,
)
from vislab.core.clihelp import documented
from vislab.labs.fashion.cli_search import index_cmd, similar_cmd
from vislab.labs.fashion.cli_types import (
    TTA_DEFAULT,
    BackendOpt,
    CatalogColOpt,
    CatalogDirOpt,
    CatalogExtOpt,
    CheckpointArg,
    InputsArg,
    ModelArg,
    OverwriteOpt,
    TtaOpt,
)
from vislab.labs.fashion.config import FashionRunConfig

app = typer.Typer(no_args_is_help=True, help="Fashion attributes: one backbone, one head per attribute.")

FLAGS = {"data": "data.root", "csv": "data.csv", "image_dir": "data.image_dir", "image_col": "data.image_col",
         "label_cols": "data.label_cols", "image_size": "data.image_size", "limit": "data.limit",
         "backbone": "model.backbone", "pretrained": "model.pretrained", "freeze_backbone": "model.freeze_backbone",
         **ENGINE_FLAGS}
NONE = {"data": "the synthetic demo data", "limit": "every row", "out": "runs", "name": "fashion",
        "resume": "a new run"}
EVAL_NONE = {"data": "the checkpoint's own data", "csv": "the checkpoint's", "image_dir": "the checkpoint's",
             "image_col": "the checkpoint's", "limit": "the checkpoint's (every row)"}

DataOpt = Annotated[Optional[str], typer.Option(
    "--data", metavar="FOLDER", help="Dataset folder (a CSV + an image folder).")]
CsvOpt = Annotated[Optional[str], typer.Option("--csv", metavar="FILE",
                                               help="CSV file, relative to --data or absolute.")]
ImageDirOpt = Annotated[Optional[str], typer.Option(
    "--image-dir", metavar="FOLDER", help="Image folder, relative to --data or absolute.")]
ImageColOpt = Annotated[Optional[str], typer.Option(
    "--image-col", metavar="COLUMN", help="CSV column with the image file name or id.")]
LabelColsOpt = Annotated[Optional[str], typer.Option(
    "--label-cols", metavar="A,B,...", help="Comma-separated label columns, one head each.")]
SizeOpt = Annotated[Optional[str], typer.Option("--image-size", metavar="HxW",
                                                help="Height x width images are resized to, e.g. 128x96.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use only N rows of the CSV (quick runs).")]


def build_fashion_config(config, overrides, base: dict | None = None, label_cols: str | None = None,
                         image_size: str | None = None, **flags) -> FashionRunConfig:
    """The fashion run config from --config, flags (--label-cols a,b; --image-size HxW) and overrides."""
    size = None
    if image_size is not None:
        try:
            h, w = (int(p) for p in image_size.lower().split("x"))
        except ValueError:
            fail(f"--image-size must look like 128x96 (height x width), got {image_size!r}", code=2)
        size = [h, w]
    return build_config(FashionRunConfig, FLAGS, config, overrides, base,
                        label_cols=None if label_cols is None else words(label_cols), image_size=size, **flags)


def check_data(cfg: FashionRunConfig) -> None:
    """The data folder, CSV and image folder exist (the synthetic data needs none), before torch is imported."""
    d = cfg.data
    if d.root is None:
        return
    root = require_path(d.root, "--data (data.root)")
    require_path(d.csv if Path(d.csv).is_absolute() else root / d.csv, "--csv (data.csv)", "file")
    require_path(d.image_dir if Path(d.image_dir).is_absolute() else root / d.image_dir,
                 "--image-dir (data.image_dir)")


@app.command("eda")
@friendly
@documented(FashionRunConfig, FLAGS, "vislab fashion eda --data ../shared/data/fashion-products",
            "vislab fashion eda -c fashion/default --out runs/eda", none=NONE | {"out": "runs/fashion-eda"})
def eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
            image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
            image_size: SizeOpt = None, limit: LimitOpt = None,
            out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None, progress: ProgressOpt = True):
    """Clean the data, print counts per step, plot class distributions, write an EDA report."""
    cfg = build_fashion_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                               label_cols=label_cols, image_size=image_size, limit=limit)
    check_data(cfg)
    from vislab.labs.fashion import lab as fashion
    fashion.eda(cfg, out, progress)


@app.command("train")
@friendly
@documented(FashionRunConfig, FLAGS, "vislab fashion train -c fashion/default",
            "vislab fashion train --data shop/ --label-cols gender,baseColour --epochs 3 --image-size 128x96",
            none=NONE)
@engine_options
def train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
              image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, label_cols: LabelColsOpt = None,
              image_size: SizeOpt = None, limit: LimitOpt = None,
              backbone: Annotated[Optional[str], typer.Option(metavar="NAME", help="timm model name.")] = None,
              pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained",
                                                                 help="ImageNet weights.")] = None,
              freeze_backbone: Annotated[Optional[bool], typer.Option(
                  "--freeze-backbone/--finetune", help="Linear probe on cached features, or fine-tune it all.")] = None,
              recipe: Annotated[Optional[str], typer.Option(metavar="baseline|tuned",
                                                            help="Preset of the train.* fields left unset.")] = None,
              resume: ResumeOpt = None,
              out: OutOpt = None,
              name: NameOpt = None,
              progress: ProgressOpt = True, engine: dict | None = None):
    """Train a multi-task model; writes checkpoints, logs, test metrics and report.html."""
    cfg = build_fashion_config(config, overrides, data=data, csv=csv, image_dir=image_dir, image_col=image_col,
                               label_cols=label_cols, image_size=image_size, limit=limit, backbone=backbone,
                               pretrained=pretrained, freeze_backbone=freeze_backbone, recipe=recipe, out=out,
                               name=name, **engine)
    if resume is None:
        check_data(cfg)
    from vislab.labs.fashion import lab as fashion
    run_dir = fashion.train(cfg, resume=resume, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}\n"
                      f"best checkpoint: {run_dir / 'checkpoints' / 'best.safetensors'}")


@app.command("evaluate")
@friendly
@documented(FashionRunConfig, FLAGS, "vislab fashion evaluate runs/fashion",
            "vislab fashion evaluate runs/fashion --data other-shop/ --csv products.csv", none=EVAL_NONE)
def evaluate_cmd(checkpoint: CheckpointArg,
                 overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None, csv: CsvOpt = None,
                 image_dir: ImageDirOpt = None, image_col: ImageColOpt = None, limit: LimitOpt = None,
                 split: Annotated[Optional[str], typer.Option(
                     metavar="test|val|train|all",
                     help="Rows to score: a split of the training data, or all (every row of --data). "
                          "[default: test; all when --data is other data]")] = None,
                 partial: Annotated[bool, typer.Option(
                     "--partial/--complete-rows",
                     help="Also score rows with a label unseen in training, on the tasks whose labels are known.")
                 ] = False,
                 out: Annotated[Optional[Path], typer.Option(
                     help="Output folder. [default: eval-SPLIT beside the checkpoint's run]")] = None,
                 progress: ProgressOpt = True):
    """Evaluate a checkpoint: per-task metrics, per-class tables, confusion matrices, ROC, errors, report."""
    if split is not None:
        choice(split, ["test", "val", "train", "all"], "--split")
    path, meta = checkpoint_arg(checkpoint, "fashion")  # another lab's checkpoint: one line, before any config
    cfg = build_fashion_config(config, overrides, base=meta.get("config"), data=data, csv=csv, image_dir=image_dir,
                               image_col=image_col, limit=limit)
    check_data(cfg)
    from vislab.labs.fashion import lab as fashion
    res = fashion.evaluate(path, cfg, split=split, out=out, progress=progress, partial=partial)
    console.print(f"report: {Path(res['report'])}")
    return res


@app.command("compare")
@friendly
@documented(FashionRunConfig, FLAGS, "vislab fashion compare --recipes baseline,tuned --epochs 2 --limit 600",
            "vislab fashion compare -c fashion/default --backbones tf_efficientnet_lite0,tf_efficientnet_lite1",
            none=NONE | {"out": "runs (folder NAME-compare)"})
def compare_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: DataOpt = None,
                backbones: Annotated[str, typer.Option(metavar="A,B,...", help="Comma-separated timm names.")
                                     ] = "tf_efficientnet_lite0",
                recipes: Annotated[str, typer.Option(metavar="A,B,...", help="Comma-separated recipes.")
                                   ] = "baseline,tuned",
                epochs: EpochsOpt = None,
                max_steps: Annotated[Optional[int], typer.Option(help="Same step budget for every run.")] = None,
                limit: LimitOpt = None, image_size: SizeOpt = None,
                pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained",
                                                                   help="ImageNet weights.")] = None,
                freeze_backbone: Annotated[Optional[bool], typer.Option(
                    "--freeze-backbone/--finetune", help="Linear probe, or fine-tune it all.")] = None,
                out: Annotated[Optional[str], typer.Option(metavar="FOLDER", help="Folder for the runs.")] = None,
                progress: ProgressOpt = True):
    """Train backbones x recipes with the same budget; write a comparison report."""
    cfg = build_fashion_config(config, overrides, data=data, epochs=epochs, max_steps=max_steps, limit=limit,
                               image_size=image_size, pretrained=pretrained, freeze_backbone=freeze_backbone, out=out)
    check_data(cfg)
    names, recipe_names = words(backbones), words(recipes)
    for b in names:  # every run's config is checked before the first one trains
        build_fashion_config(None, None, base=cfg.model_dump(mode="json"), backbone=b)
    for r in recipe_names:
        build_fashion_config(None, None, base=cfg.model_dump(mode="json"), recipe=r)
    from vislab.labs.fashion import lab as fashion
    out_dir = fashion.compare(cfg, names, recipe_names, progress)
    console.print(f"comparison report: {out_dir / 'report.html'}")


@app.command("predict")
@friendly
@documented(None, None, "vislab fashion predict runs/fashion shirt.jpg",
            "vislab fashion predict runs/fashion/checkpoints/best.safetensors 'photos/*.jpg' --json",
            none={"tta": TTA_DEFAULT})
def predict_cmd(checkpoint: ModelArg,
                images: Annotated[list[str], typer.Argument(
                    metavar="IMAGES...", help="Image files, folders (searched recursively) or glob patterns.")],
                as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
                tta: TtaOpt = None,
                backend: BackendOpt = None):
    """Print each attribute with its confidence and a one-line caption, per image."""
    from vislab.core.data.paths import expand_images
    from vislab.product.backends import load_predictor, model_meta, model_tta
    if backend is not None:
        choice(backend, ["torch", "onnx"], "--backend")
    path, meta = model_meta(checkpoint, backend)
    files = expand_images(images)  # every argument names something, before the model is loaded
    from vislab.core.data.images import ImageError
    pred = load_predictor(path, backend, tta=model_tta(meta) if tta is None else tta)
    results, failed = [], 0
    for img in files:
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
                console.print(f"{t}: {v['label']} ({v['confidence']:.2f})"
                              + ("  [yellow]needs review[/yellow]" if v["needs_review"] else ""))
            console.print(f"[bold]{r['caption']}[/bold]")
    if failed:
        raise typer.Exit(1)


@app.command("tag")
@friendly
@documented(None, None, "vislab fashion tag runs/fashion photos/ --out tags.csv",
            "vislab fashion tag runs/fashion catalog.csv --image-col id --image-dir images --out tags.jsonl",
            none={"image_dir": "the CSV's folder", "image_col": "image",
                  "threshold": "the checkpoint's (chosen on validation)",
                  "workers": "one per CPU core", "fmt": "from --out's extension (csv; .jsonl: jsonl)",
                  "tta": TTA_DEFAULT})
def tag_cmd(checkpoint: ModelArg,
            inputs: InputsArg,
            out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="Tag file to write.")
                           ] = Path("tags.csv"),
            fmt: Annotated[Optional[str], typer.Option("--format", metavar="csv|jsonl",
                                                       help="Output format.")] = None,
            image_col: CatalogColOpt = None,
            image_dir: CatalogDirOpt = None,
            image_ext: CatalogExtOpt = ".jpg",
            top_k: Annotated[int, typer.Option("--top-k", min=1, help="Labels kept per attribute.")] = 3,
            threshold: Annotated[Optional[str], typer.Option(
                metavar="T|TASK=T,...", help="Confidence under which an attribute needs review.")] = None,
            batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 32,
            workers: Annotated[Optional[int], typer.Option(
                min=0, help="Processes that decode and predict (0: this process, all its threads).")] = None,
            precision: Annotated[str, typer.Option(
                metavar="32|bf16", help="Inference precision: bf16 is ~2x faster on CPUs with native bfloat16 "
                                        "(AVX512-BF16, AMX), labels agree ~98% with 32.")] = "32",
            resume: Annotated[bool, typer.Option("--resume", help="Continue --out: skip the images it has.")
                              ] = False,
            overwrite: OverwriteOpt = False,
            ray: Annotated[bool, typer.Option("--ray", help="Run the predictor as a Ray Data stage "
                                                            "(pip install 'vislab[ray]'; RAY_ADDRESS for a cluster).")
                           ] = False,
            tta: TtaOpt = None,
            backend: BackendOpt = None,
            progress: ProgressOpt = True):
    """Tag a catalog: every attribute with confidence, top-k, caption and a needs-review flag, to CSV or JSON
    Lines. Unreadable images get a row with the error; a killed run continues with --resume."""
    from vislab.labs.fashion.review import parse_threshold
    from vislab.product.inputs import resolve_inputs
    from vislab.product.outputs import TagWriter, format_of
    if resume and overwrite:
        fail("--resume and --overwrite contradict each other: pick one", code=2)
    choice(precision, ["32", "bf16"], "--precision")
    if fmt is not None:
        format_of(out, fmt)
    if backend is not None:
        choice(backend, ["torch", "onnx"], "--backend")
    from vislab.product.backends import load_predictor, model_meta, model_tta
    path, meta = model_meta(checkpoint, backend)
    tta = model_tta(meta) if tta is None else tta
    override = parse_threshold(threshold, list(meta["encoders"])) if threshold is not None else None
    items = resolve_inputs(inputs, image_col, image_dir, image_ext)  # every input checked before the model loads
    if ray:
        from vislab.product.ray_stage import require_ray
        require_ray()
    with TagWriter(out, list(meta["encoders"]), fmt, resume=resume, overwrite=overwrite) as writer:
        if not (meta.get("review") or {}).get("thresholds") and override is None:
            err.print("[yellow]this checkpoint has no review thresholds (trained before they existed): "
                      "attributes under 0.6 confidence need review; `vislab fashion calibrate` chooses them[/yellow]")
        if ray:
            from vislab.product.ray_stage import tag_with_ray
            summary = tag_with_ray(path, items, writer, batch_size=batch_size, thresholds=override, top_k=top_k,
                                   precision=precision, backend=backend, tta=tta, progress=progress,
                                   console=err)
        else:
            from vislab.product.tag import tag
            predictor = load_predictor(path, backend, thresholds=override, top_k=top_k, precision=precision,
                                       tta=tta)
            summary = tag(predictor, items, writer, batch_size=batch_size, workers=workers, progress=progress,
                          console=err)
    skipped = f", {summary.skipped} already in {out}" if summary.skipped else ""
    console.print(f"{summary.tagged} images tagged, {summary.needs_review} need review, {summary.errors} "
                  f"unreadable{skipped} ({summary.images_per_s:.0f} images/s) -> {out}")
    return summary


@app.command("calibrate")
@friendly
@documented(None, None, "vislab fashion calibrate runs/fashion",
            "vislab fashion calibrate runs/fashion --precision 0.95")
def calibrate_cmd(checkpoint: CheckpointArg,
                  precision: Annotated[Optional[float], typer.Option(
                      min=0.01, max=1.0, help="Precision the auto-accepted predictions must reach. "
                                              "[default: the run's review.precision, 0.98]")] = None,
                  progress: ProgressOpt = True):
    """Choose the review thresholds again on the checkpoint's validation split and store them in it."""
    path, meta = checkpoint_arg(checkpoint, "fashion")
    from vislab.labs.fashion import lab as fashion
    fashion.calibrate(path, precision, progress)
    console.print(f"thresholds stored in {path}")


@app.command("knn")
@friendly
@documented(None, None, "vislab fashion knn runs/fashion", "vislab fashion knn runs/fashion -k 20 --bank train")
def knn_cmd(checkpoint: CheckpointArg,
            k: Annotated[int, typer.Option("-k", "--k", min=1, help="Neighbours that vote.")] = 10,
            temperature: Annotated[float, typer.Option(min=1e-6, help="Softmax temperature over their cosine "
                                                                       "similarities.")] = 0.05,
            bank: Annotated[str, typer.Option(metavar="train|train+val", help="Which labelled images vote in "
                                                                              "predictions.")] = "train+val",
            progress: ProgressOpt = True):
    """Add a neighbour vote to a trained checkpoint: its predictions blend in the labels of the k most similar
    labelled images, with a weight per attribute chosen on the validation split (see knn.k)."""
    bank = choice(bank, ("train", "train+val"), "--bank")
    path, meta = checkpoint_arg(checkpoint, "fashion")
    from vislab.labs.fashion import lab as fashion
    info = fashion.add_vote(path, k, temperature, bank, progress)
    console.print(f"neighbour vote of {info['bank_size']} images ({info['bank']}) stored in {path}")


@app.command("refit")
@friendly
@documented(None, None, "vislab fashion refit runs/fashion-quality",
            "vislab fashion refit runs/fashion-quality --name shop-final train.eval_batch_size=64",
            none={"out": "the source's out_dir", "name": "the source's folder name + -refit"})
def refit_cmd(run: Annotated[Path, typer.Argument(
                  metavar="RUN", help="The source: a fashion run folder (its best checkpoint) or checkpoint, trained "
                                      "on the training split alone.")],
              overrides: Overrides = None, out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = True):
    """Train the final model on the training + validation images with RUN's settings and the choices RUN made on
    the validation split (its best epoch, neighbour-vote weights and review thresholds); score it once on test.
    A killed refit continues with `vislab fashion train --resume FOLDER`."""
    path, meta = checkpoint_arg(run, "fashion")
    folder = path.parent.parent.name if path.parent.name == "checkpoints" else path.stem
    cfg = build_fashion_config(None, overrides, base={**meta["config"], "refit": {"source": str(path.resolve())}},
                               out=out, name=name or f"{folder}-refit")
    check_data(cfg)
    from vislab.labs.fashion import lab as fashion
    from vislab.labs.fashion.refit import source_of
    source_of(cfg)  # settings, data and split checked before any image is decoded
    run_dir = fashion.train(cfg, progress=progress)
    if (run_dir / "report.html").exists():
        console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}\n"
                      f"refit checkpoint: {run_dir / 'checkpoints' / 'best.safetensors'}")


@app.command("ensemble")
@friendly
@documented(None, None, "vislab fashion ensemble runs/a runs/b --out shop.ensemble.json",
            "vislab fashion ensemble runs/a runs/b --out shop.ensemble.json --test",
            none={"precision": "the first member's review.precision",
                  "review_from": "chosen on the validation split (members trained without it)"})
def ensemble_cmd(checkpoints: Annotated[list[Path], typer.Argument(
                     metavar="CHECKPOINTS...", help="Two or more fashion run folders or .safetensors checkpoints "
                                                    "of the same data, split and classes.")],
                 out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE",
                                                   help="The ensemble file to write (.json).")
                                ] = Path("ensemble.json"),
                 precision: Annotated[Optional[float], typer.Option(
                     min=0.01, max=1.0, help="Precision the auto-accepted predictions must reach.")] = None,
                 tta: Annotated[bool, typer.Option(
                     "--tta/--no-tta", help="Score with flip test-time augmentation (use --tta with the file "
                                            "then too).")] = True,
                 test: Annotated[bool, typer.Option(
                     "--test", help="Also score the test split once (accuracy and macro F1 with 95% intervals, "
                                    "stored in the file).")] = False,
                 batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 64,
                 review_from: Annotated[Optional[Path], typer.Option(
                     "--review-from", metavar="FILE",
                     help="For refits (vislab fashion refit): the ensemble file of their sources, in the same "
                          "order, whose review thresholds they take (their validation split is training data).")
                 ] = None,
                 overwrite: OverwriteOpt = False,
                 progress: ProgressOpt = True):
    """Make one model of several checkpoints: the mean of their probabilities, each member with its own image size
    and neighbour vote. Scores the validation split, chooses the review thresholds on it and writes a file that
    predict, tag, serve and search take in place of a checkpoint."""
    from vislab.labs.fashion.ensemble_file import check_members
    if out.suffix.lower() != ".json":
        fail(f"--out {out}: an ensemble file ends in .json", code=2)
    if out.exists() and not overwrite:
        fail(f"{out} exists: pass --overwrite to replace it", code=2)
    if review_from is not None and precision is not None:
        fail("--precision with --review-from: the thresholds come from that file, chosen at its precision", code=2)
    check_members(checkpoints, review_from)  # every member checked before any image is decoded
    from vislab.labs.fashion.ensemble import build
    doc = build(checkpoints, out, precision, tta, test, batch_size, progress, console, review_from)
    console.print(f"wrote {out}: {len(doc['members'])} members, decoded at {doc['image_size'][0]}x"
                  f"{doc['image_size'][1]}, review thresholds: " + ", ".join(
                      f"{t} {'none' if v is None else f'{v:.2f}'}" for t, v in doc["review"]["thresholds"].items()))
    return doc


@app.command("explain")
@friendly
@documented(None, None, "vislab fashion explain runs/fashion shirt.jpg --out why.png",
            "vislab fashion explain runs/fashion shirt.jpg --task baseColour --class 'Navy Blue' --method gradcam++",
            none={"task": "every attribute", "label": "the predicted label", "out": "IMAGE's name + .explain.png"})
def explain_cmd(checkpoint: CheckpointArg,
                image: Annotated[Path, typer.Argument(metavar="IMAGE", help="The photo to explain.")],
                task: Annotated[Optional[str], typer.Option(metavar="TASK", help="Only this attribute.")] = None,
                label: Annotated[Optional[str], typer.Option(
                    "--class", metavar="LABEL", help="Explain this label of --task instead of the predicted one.")
                ] = None,
                out: Annotated[Optional[Path], typer.Option("--out", "-o", metavar="FILE",
                                                            help="The PNG grid to write.")] = None,
                layer: Annotated[str, typer.Option(
                    metavar="NAME", help="Target layer (a module name, e.g. backbone.blocks.4); auto: the deepest "
                                         "stage at least 5 pixels on its short side.")] = "auto",
                method: Annotated[str, typer.Option(metavar="gradcam|gradcam++", help="Weighting.")] = "gradcam",
                as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False):
    """Grad-CAM heat maps of one photo, one per attribute, for the predicted (or a chosen) label."""
    choice(method, ["gradcam", "gradcam++"], "--method")
    from vislab.labs.fashion.ensemble_file import refuse
    refuse(checkpoint, "vislab fashion explain")
    path, meta = checkpoint_arg(checkpoint, "fashion")
    require_path(image, "IMAGE", "file")
    from vislab.labs.fashion.explain import explain, resolve_targets
    resolve_targets(meta.get("encoders", {}), task, label)  # a wrong --task/--class fails before the model loads
    out = out or image.with_name(image.stem + ".explain.png")
    info = explain(path, image, task, label, out, layer, method)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for t, v in info["attributes"].items():
        console.print(f"{t}: {v['label']} ({v['confidence']:.2f})" + ("" if v["predicted"] else "  (asked for)"))
    console.print(f"{method} at {info['layer']}: wrote {info['grid']}")


@friendly
@documented(None, None, "vislab demo", "vislab demo --out /tmp/runs --no-progress")
def demo_cmd(out: Annotated[str, typer.Option(metavar="FOLDER", help="Folder for runs.")] = "runs",
             config: ConfigOpt = None, progress: ProgressOpt = True):
    """Synthetic products: train -> evaluate -> report -> predict -> tag, in a few minutes on 2 CPU cores."""
    cfg = build_fashion_config(config or "fashion/demo", None, out=out, name="demo")
    from vislab.labs.fashion import lab as fashion
    from vislab.labs.fashion.predict import Predictor
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
    from vislab.product.inputs import resolve_inputs
    from vislab.product.outputs import TagWriter
    from vislab.product.tag import tag
    with TagWriter(run_dir / "tags.csv", pred.tasks, overwrite=True) as writer:
        s = tag(pred, resolve_inputs([str(root / "images")]), writer, progress=progress, console=err)
    console.print(f"tagged {s.tagged} images ({s.needs_review} need review) at {s.images_per_s:.0f} images/s: "
                  f"{run_dir / 'tags.csv'}")
    console.print(f"\n[bold green]demo done.[/bold green] report: {run_dir / 'report.html'}\n"
                  f"next: vislab serve {run_dir}   (API and web page at http://127.0.0.1:8000/)")


app.command("index")(index_cmd)
app.command("similar")(similar_cmd)
