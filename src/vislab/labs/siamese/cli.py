"""`vislab siamese train | search | evaluate | verify | gallery | margins | splits | cv | baseline`.

Flags, config, checkpoints and image paths are checked before the lab module (torch, timm) is imported."""
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
    console,
    engine_options,
    floats,
    friendly,
    require_path,
)
from vislab.core.clihelp import documented
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.verification import folder_eval_dir, stored_verification

app = typer.Typer(no_args_is_help=True,
                  help="Siamese faces: verification and retrieval, contrastive and triplet losses.")

FLAGS = {"data": "data.root", "loss": "loss.loss", "form": "loss.form", "margin": "loss.margin",
         "miner": "loss.miner", "distance": "loss.distance", "embedding_dim": "model.embedding_dim",
         "backbone": "model.backbone", "pretrained": "model.pretrained", "trials": "search.trials",
         "sampler": "search.sampler", "objective": "search.objective", "storage": "search.storage",
         "retrain": "search.retrain", **ENGINE_FLAGS}


NONE = {"out": "runs", "name": "siamese", "resume": "a new run", "storage": "sqlite in the search folder"}


def build_siamese_config(config, overrides: list[str] | None, base: dict | None = None, **flags):
    return build_config(SiameseRunConfig, FLAGS, config, overrides, base, **flags)


SiameseData = Annotated[Optional[str], typer.Option(
    "--data", metavar="FOLDER", help="Folder of person subfolders.")]
LossOpt = Annotated[Optional[str], typer.Option(metavar="contrastive|triplet", help="Loss.")]
FormOpt = Annotated[Optional[str], typer.Option(metavar="original|hadsell", help="Contrastive loss form.")]
MarginOpt = Annotated[Optional[float], typer.Option(help="Loss margin.")]
MinerOpt = Annotated[Optional[str], typer.Option(metavar="none|batch-hard|semi-hard", help="Triplet mining.")]
RunOpt = Annotated[Path, typer.Option(
    "--run", "-r", metavar="RUN", help="Run folder (its best checkpoint) or a checkpoint file of a Siamese model.")]
ImageArg = Annotated[Path, typer.Argument(metavar="IMAGE", help="A face image.")]
SeedsOpt = Annotated[str, typer.Option(metavar="A,B,...", help="Comma-separated person-split seeds (data.seed).")]


def _seeds(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _needs_fine_tuning(cfg, why: str) -> None:
    if not cfg.model.fine_tune:
        raise typer.BadParameter(f"{why}, and this config has model.fine_tune=false (no gradient step); use "
                                 "-c siamese/multisim or siamese/contrastive, or model.fine_tune=true", param_hint="-c")


def _image(path: Path) -> Path:
    """An image argument that must exist, checked before the model is loaded."""
    from vislab.core.errors import DataError
    if not path.is_file():
        raise DataError(f"{path}: image file does not exist")
    return path


@app.command("train")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese train -c siamese/default",
            "vislab siamese train --loss triplet --miner batch-hard --epochs 5", none=NONE)
@engine_options
def siamese_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                      loss: LossOpt = None, form: FormOpt = None, margin: MarginOpt = None, miner: MinerOpt = None,
                      distance: Annotated[Optional[str], typer.Option(
                          metavar="euclidean|cosine", help="Triplet distance.")] = None,
                      embedding_dim: Annotated[Optional[int], typer.Option(help="Embedding size.")] = None,
                      backbone: Annotated[Optional[str], typer.Option(metavar="NAME", help="timm backbone.")] = None,
                      pretrained: Annotated[Optional[bool], typer.Option("--pretrained/--no-pretrained",
                                                                         help="ImageNet weights.")] = None,
                      resume: ResumeOpt = None, out: OutOpt = None, name: NameOpt = None,
                      progress: ProgressOpt = True, engine: dict | None = None):
    """Train an embedding network; writes checkpoints, logs, test verification/retrieval metrics and report.html."""
    cfg = build_siamese_config(config, overrides, data=data, loss=loss, form=form, margin=margin, miner=miner,
                               distance=distance, embedding_dim=embedding_dim, backbone=backbone,
                               pretrained=pretrained, out=out, name=name, **engine)
    training = {"--loss": loss, "--form": form, "--margin": margin, "--miner": miner, "--distance": distance,
                "--embedding-dim": embedding_dim, **{f"--{k.replace('_', '-')}": engine.get(k)
                                                     for k in ("epochs", "max_steps", "batch_size", "lr")}}
    given = [k for k, v in training.items() if v is not None]
    if given:
        _needs_fine_tuning(cfg, f"{', '.join(given)} set how the network trains")
    if resume is None:
        require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import lab as siamese
    run_dir = siamese.train(cfg, resume=resume, progress=progress)
    console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@app.command("search")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese search --trials 20 --sampler tpe",
            "vislab siamese search -c siamese/cv --trials 10", none=NONE)
def siamese_search_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                       trials: Annotated[Optional[int], typer.Option(
                           help="Number of trials (in total, with resumed ones).")] = None,
                       sampler: Annotated[Optional[str], typer.Option(metavar="random|tpe",
                                                                      help="Optuna sampler.")] = None,
                       objective: Annotated[Optional[str], typer.Option(metavar="val_auc|val_loss",
                                                                        help="What the search optimises.")] = None,
                       storage: Annotated[Optional[str], typer.Option(metavar="URL",
                                                                      help="Optuna storage URL.")] = None,
                       retrain: Annotated[Optional[bool], typer.Option(
                           "--retrain/--keep",
                           help="Retrain the best parameters, or keep the best trial's run.")] = None,
                       out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = False):
    """Optuna search over lr, margin, step_size, gamma, epochs, embedding_dim and loss; resumable."""
    cfg = build_siamese_config(config, overrides, data=data, trials=trials, sampler=sampler, objective=objective,
                               storage=storage, retrain=retrain, out=out, name=name)
    _needs_fine_tuning(cfg, "search varies training settings")
    require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import studies

    folder = studies.search(cfg, progress=progress, console=console)
    console.print(f"search report: {folder / 'report.html'}\nbest parameters: {folder / 'best.yaml'}")


@app.command("evaluate")
@friendly
@documented(None, None, "vislab siamese evaluate runs/siamese",
            "vislab siamese evaluate runs/siamese --data staff-faces/")
def siamese_evaluate_cmd(checkpoint: Annotated[Path, typer.Argument(
                             metavar="CHECKPOINT", help="A run folder (its best checkpoint) or a checkpoint file.")],
                         data: Annotated[Optional[str], typer.Option(
                             "--data", metavar="FOLDER",
                             help="Another folder of person subfolders: every person in it is a test person, at the "
                                  "threshold chosen on the checkpoint's own validation people. "
                                  "[default: the run's own person split]")] = None,
                         split: Annotated[bool, typer.Option(
                             "--split", help="Split --data FOLDER by person like the training data (data.split, "
                                             "data.seed) and choose the threshold on its validation people.")] = False,
                         out: Annotated[Optional[Path], typer.Option(
                             help="Output folder. [default: the run folder; with --data: RUN/eval-FOLDERNAME]")] = None,
                         progress: ProgressOpt = True):
    """Verification (ROC, AUC, EER, accuracy at the validation threshold), retrieval (P@1, MAP@R), plots, report."""
    from vislab.core.errors import UsageError
    path, meta = checkpoint_arg(checkpoint, "siamese", "Siamese")
    if split and not data:
        raise UsageError("--split needs --data FOLDER (without --data the run's own split is used)")
    if data:
        require_path(data, "--data")
        if not split and "threshold" not in stored_verification(meta, path.parent.parent):
            raise UsageError(f"{path} holds no validation threshold: run `vislab siamese evaluate {checkpoint}` once "
                             "on its own split to store it, or pass --split")
    from vislab.labs.siamese import lab as siamese
    siamese.evaluate(path, out=out, root=data, progress=progress, split=split)
    folder = out or (folder_eval_dir(path.parent.parent, data) if data and not split else path.parent.parent)
    console.print(f"report: {Path(folder) / 'report.html'}")


@app.command("baseline")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese baseline",
            "vislab siamese baseline --backbone tf_efficientnet_lite2", none=NONE | {"out": "runs/NAME-pretrained"})
def siamese_baseline_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                         backbone: Annotated[Optional[str], typer.Option(metavar="NAME", help="timm backbone.")] = None,
                         out: Annotated[Optional[Path], typer.Option(help="Output folder.")] = None,
                         progress: ProgressOpt = True):
    """The starting point: pretrained backbone features without training, evaluated like a trained model."""
    cfg = build_siamese_config(config, overrides, data=data, backbone=backbone)
    require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import lab as siamese
    siamese.evaluate_pretrained(cfg, out, progress)


@app.command("verify")
@friendly
@documented(None, None, "vislab siamese verify a.pgm b.pgm --run runs/siamese",
            "vislab siamese verify a.jpg b.jpg --threshold 0.8 --json")
def siamese_verify_cmd(img1: Annotated[Path, typer.Argument(metavar="IMAGE1", help="First face image.")],
                       img2: Annotated[Path, typer.Argument(metavar="IMAGE2", help="Second face image.")],
                       run: RunOpt = Path("runs/siamese"),
                       threshold: Annotated[Optional[float], typer.Option(
                           help="Distance threshold. [default: the one chosen on validation]")] = None,
                       as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """Are two photos the same person? Prints the distance, the threshold and same/different with a confidence."""
    checkpoint_arg(run, "siamese", "Siamese")
    _image(img1), _image(img2)
    from vislab.labs.siamese import lab as siamese
    r = siamese.verify(run, img1, img2, threshold)
    if as_json:
        console.print_json(json.dumps(r))
        return
    verdict = "[bold green]same person[/bold green]" if r["same"] else "[bold red]different people[/bold red]"
    conf = "" if r["confidence"] is None else f" (confidence {100 * r['confidence']:.1f}%)"
    console.print(f"distance {r['distance']:.4f}, threshold {r['threshold']:.4f}: {verdict}{conf}")


@app.command("gallery")
@friendly
@documented(None, None, "vislab siamese gallery face.pgm --run runs/siamese --top 5",
            "vislab siamese gallery face.jpg --gallery staff/ --out matches.png")
def siamese_gallery_cmd(query: Annotated[Path, typer.Argument(metavar="IMAGE", help="Query face image.")],
                        run: RunOpt = Path("runs/siamese"),
                        gallery: Annotated[Optional[Path], typer.Option(
                            "--gallery", "-g",
                            help="Folder of images or person subfolders. [default: the run's data.root]")] = None,
                        top: Annotated[int, typer.Option(min=1, help="Number of matches.")] = 10,
                        out: Annotated[Optional[Path], typer.Option(
                            help="PNG of the query and its matches. [default: none]")] = None,
                        as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """The --top gallery images (any people) nearest to a query face, closest first, each within the
    checkpoint's validation threshold or not."""
    from vislab.core.errors import DataError
    _, meta = checkpoint_arg(run, "siamese", "Siamese")
    _image(query)
    gallery = Path(gallery or meta["config"]["data"]["root"])
    if not gallery.is_dir():
        raise DataError(f"{gallery}: gallery folder does not exist")
    from vislab.labs.siamese import lab as siamese
    r = siamese.gallery(run, query, gallery, top, out)
    if as_json:
        console.print_json(json.dumps(r))
        return
    from rich.table import Table as RTable
    t = RTable(title=f"{top} nearest of {query} in {gallery} ({r['gallery_images']} images)")
    for c in ("rank", "distance", "same person?", "person", "file"):
        t.add_column(c)
    for m in r["matches"]:
        same = "" if m["same"] is None else ("yes" if m["same"] else "no")
        t.add_row(str(m["rank"]), f"{m['distance']:.4f}", same, str(m["person"] or ""), m["file"])
    console.print(t)
    if out:
        console.print(f"grid: {out}")


@app.command("splits")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese splits -c siamese/default",
            "vislab siamese splits --seeds 42,1,2 --no-baseline", none=NONE)
def siamese_splits_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                       seeds: SeedsOpt = "42,1,2,3,4",
                       baseline: Annotated[bool, typer.Option(
                           "--baseline/--no-baseline",
                           help="Also the untrained pretrained features on each split.")] = True,
                       out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = False):
    """Train and evaluate one setup on several person splits: mean ± sd of AUC, EER, P@1, MAP@R."""
    cfg = build_siamese_config(config, overrides, data=data, out=out, name=name)
    require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import studies

    folder = studies.repeat_splits(cfg, _seeds(seeds), baseline, progress, console)
    console.print(f"splits report: {folder / 'report.html'}")


@app.command("cv")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese cv -c siamese/default",
            "vislab siamese cv --folds 3 --seeds 42,1 data.rotate=10 train.tta=true", none=NONE)
def siamese_cv_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                   seeds: SeedsOpt = "42,1,2,3,4",
                   folds: Annotated[int, typer.Option(
                       min=2, metavar="K", help="Folds of each split's training + validation people.")] = 3,
                   baseline: Annotated[bool, typer.Option(
                       "--baseline/--no-baseline",
                       help="Also the untrained pretrained features on the same held-out people.")] = True,
                   out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = False):
    """Score one setup by K-fold cross-validation by person, never reading the test people: the number to
    choose a setup by (K runs per split)."""
    cfg = build_siamese_config(config, overrides, data=data, out=out, name=name)
    require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import crossval

    folder = crossval.repeat_cv(cfg, _seeds(seeds), folds, baseline, progress, console)
    console.print(f"cross-validation report: {folder / 'report.html'}")


@app.command("margins")
@friendly
@documented(SiameseRunConfig, FLAGS, "vislab siamese margins --margins 0.5,1,2",
            "vislab siamese margins --loss triplet --margins 0.2,0.5 --epochs 5", none=NONE)
def siamese_margins_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: SiameseData = None,
                        margins: Annotated[str, typer.Option(metavar="A,B,...", help="Comma-separated margins.")
                                           ] = "1,2",
                        loss: LossOpt = None, form: FormOpt = None, miner: MinerOpt = None, epochs: EpochsOpt = None,
                        out: OutOpt = None, progress: ProgressOpt = False):
    """Train the same setup at each margin; compare distance distributions, ROC and AUC in one report."""
    cfg = build_siamese_config(config, overrides, data=data, loss=loss, form=form, miner=miner, epochs=epochs, out=out)
    if cfg.loss.loss not in ("contrastive", "triplet"):
        raise typer.BadParameter(f"loss {cfg.loss.loss} has no margin to study; use --loss contrastive|triplet "
                                 "or -c siamese/contrastive", param_hint="--loss")
    _needs_fine_tuning(cfg, "the margin is a training setting")
    require_path(cfg.data.root, "--data (data.root)")
    from vislab.labs.siamese import studies

    folder = studies.compare_margins(cfg, floats(margins, "--margins"), progress)
    console.print(f"margin report: {folder / 'report.html'}")
