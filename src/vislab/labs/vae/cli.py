"""`vislab vae eda | train | evaluate | sample | traverse | compare | classifier`.

Flags, config and checkpoints are checked before the lab module (torch) is imported."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from vislab.core.cli import (
    ENGINE_FLAGS,
    ConfigOpt,
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
    floats,
    friendly,
    require_path,
)
from vislab.core.clihelp import documented
from vislab.labs.vae.config import ClassifierRunConfig, VaeRunConfig

app = typer.Typer(no_args_is_help=True,
                  help="Generative lab: VAE, conv VAE, beta-VAE, conditional VAE on Fashion-MNIST.")

FLAGS = {"data": "data.root", "model": "model.name", "beta": "model.beta", "latent_dim": "model.latent_dim",
         "likelihood": "model.likelihood", "classifier": "eval.classifier", "fid_n": "eval.fid_n",
         "inception": "eval.inception", "inception_weights": "eval.inception_weights", "iwae_k": "eval.iwae_k",
         "limit_per_class": "data.limit_per_class", **ENGINE_FLAGS}
FmnistData = Annotated[Optional[str], typer.Option("--data", metavar="FOLDER",
                                                   help="Folder of the four Fashion-MNIST IDX files.")]
ClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", metavar="FILE", help="Classifier weights for FID (a) and controllability.")]
FidNOpt = Annotated[Optional[int], typer.Option("--fid-n", help="Generated and test images per FID.")]
InceptionOpt = Annotated[Optional[bool], typer.Option(
    "--inception/--no-inception", help="Also FID (b) with Inception-v3 (slow on CPU).")]
InceptionWeightsOpt = Annotated[Optional[str], typer.Option(
    "--inception-weights", metavar="FILE", help="torch-fidelity's Inception weights file (offline).")]
IwaeOpt = Annotated[Optional[int], typer.Option(
    "--iwae-k", help="k > 0: importance-weighted log p(x) bound with k samples (0: off).")]
CheckpointArg = Annotated[Path, typer.Argument(
    metavar="CHECKPOINT", help="A VAE run folder (its best checkpoint) or a .safetensors checkpoint.")]
NONE = {"out": "runs", "name": "vae", "resume": "a new run", "classifier": "the one shipped with vislab",
        "latent_dim": "the model's own: vae 32, conv-vae and cvae 64",
        "inception_weights": "torch-fidelity's download", "limit_per_class": "every image"}
EVAL_NONE = {k: f"{v}, or the run's eval section" for k, v in NONE.items()} | {
    "fid_n": "the run's eval.fid_n", "iwae_k": "the run's eval.iwae_k", "inception": "the run's eval.inception"}


def build_vae_config(config, overrides, **flags):
    return build_config(VaeRunConfig, FLAGS, config, overrides, None, **flags)


def check_data(cfg) -> None:
    """The IDX folder exists (torchvision may download), before torch is imported."""
    if cfg.data.source == "idx":
        require_path(cfg.data.root, "--data (data.root)")


def _vae_checkpoint(path: Path) -> None:
    """A VAE run folder or checkpoint, checked (exists, vislab's, the VAE lab's) before torch is imported; the lab
    takes either (a run folder keeps its evaluation files together)."""
    checkpoint_arg(path, "vae", "VAE")


@app.command("eda")
@friendly
@documented(VaeRunConfig, FLAGS, "vislab vae eda", "vislab vae eda --data ../shared/data/fashion-mnist --out runs/eda",
            none=NONE)
def vae_eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                out: Annotated[Optional[Path], typer.Option(
                    help="Output folder. [default: runs/fashion-mnist-eda]")] = None):
    """Class distribution (train, test), pixel intensities, non-zero pixels, examples per class."""
    cfg = build_vae_config(config, overrides, data=data)
    check_data(cfg)
    from vislab.labs.vae import lab as vae
    folder = vae.eda(cfg, out)
    console.print(f"EDA report: {folder / 'report.html'}")


@app.command("train")
@friendly
@documented(VaeRunConfig, FLAGS, "vislab vae train -c vae/cvae-w128-beta0.5",
            "vislab vae train -m conv-vae --beta 4 --epochs 5 --limit-per-class 500", none=NONE)
@engine_options
def vae_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                  model: Annotated[Optional[str], typer.Option("--model", "-m", metavar="vae|conv-vae|cvae",
                                                               help="The VAE.")] = None,
                  beta: Annotated[Optional[float], typer.Option(help="KL weight (> 0).")] = None,
                  latent_dim: Annotated[Optional[int], typer.Option(help="Latent size.")] = None,
                  likelihood: Annotated[Optional[str], typer.Option(metavar="bernoulli|gaussian",
                                                                    help="Decoder likelihood.")] = None,
                  limit_per_class: Annotated[Optional[int], typer.Option(
                      help="Train on N images per class (quick runs).")] = None,
                  classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                  inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None, iwae_k: IwaeOpt = None,
                  resume: ResumeOpt = None, out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = True,
                  engine: dict | None = None):
    """Train a VAE, then evaluate it: test nats per image, FID, controllability (cvae), grids, report.html."""
    cfg = build_vae_config(config, overrides, data=data, model=model, beta=beta, latent_dim=latent_dim,
                           likelihood=likelihood, limit_per_class=limit_per_class, classifier=classifier, fid_n=fid_n,
                           inception=inception, inception_weights=inception_weights, iwae_k=iwae_k, out=out,
                           name=name, **engine)
    if resume is None:
        check_data(cfg)
    from vislab.labs.vae import lab as vae
    run_dir = vae.train(cfg, resume=resume, progress=progress)
    console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@app.command("evaluate")
@friendly
@documented(VaeRunConfig, FLAGS, "vislab vae evaluate runs/vae-cvae",
            "vislab vae evaluate runs/vae --fid-n 2000 --iwae-k 100",
            none=EVAL_NONE | {"fitted_prior": "the run's eval.fitted_prior", "detail": "the three least controllable",
                              "temperatures": "the run's eval.temperatures"})
def vae_evaluate_cmd(checkpoint: CheckpointArg, classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                     inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None,
                     iwae_k: IwaeOpt = None,
                     fitted_prior: Annotated[Optional[bool], typer.Option(
                         "--fitted-prior/--no-fitted-prior",
                         help="Also FID (a) and controllability of samples from the fitted prior.")] = None,
                     detail: Annotated[Optional[str], typer.Option(
                         metavar="A,B,C", help="Comma-separated cVAE classes to show in detail.")] = None,
                     temperatures: Annotated[Optional[str], typer.Option(
                         metavar="T1,T2,...", help="Comma-separated fitted-prior sampling temperatures measured "
                                                   "beside 1 ('' for none).")] = None):
    """Test nats per image, FID (a) and optionally (b), controllability (cvae), grids, traversal, t-SNE, report.html."""
    _vae_checkpoint(checkpoint)
    ov = {k: v for k, v in dict(classifier=classifier, fid_n=fid_n, inception=inception,
                                inception_weights=inception_weights, iwae_k=iwae_k,
                                fitted_prior=fitted_prior).items() if v is not None}
    if inception_weights:
        ov["inception"] = True
    if detail:
        ov["detail_classes"] = [c.strip() for c in detail.split(",") if c.strip()]
    if temperatures is not None:
        ov["temperatures"] = floats(temperatures, "--temperatures")
    from vislab.labs.vae import lab as vae
    vae.evaluate(checkpoint, ov)


@app.command("sample")
@friendly
@documented(None, None, "vislab vae sample runs/vae-cvae --class Coat --n 32",
            "vislab vae sample runs/vae-cvae --prior fitted --temperature 0.8 --out coats.png")
def vae_sample_cmd(checkpoint: CheckpointArg,
                   class_name: Annotated[Optional[str], typer.Option(
                       "--class", metavar="NAME", help="Class name (cvae), e.g. Coat. [default: each in turn]")] = None,
                   n: Annotated[int, typer.Option("--n", min=1, help="Number of samples.")] = 16,
                   seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
                   temperature: Annotated[float, typer.Option(help="Prior scale (1 = the prior).")] = 1.0,
                   prior: Annotated[str, typer.Option(
                       metavar="standard|fitted",
                       help="standard: z ~ N(0, I); fitted: the Gaussian mixture per class fitted to the "
                            "training codes (saved by evaluate, else fitted now).")] = "standard",
                   out: Annotated[Optional[Path], typer.Option(help="PNG path. [default: the run's plots/]")] = None):
    """A PNG grid of samples from the prior (of one class with --class for the cVAE)."""
    choice(prior, ["standard", "fitted"], "--prior")
    _vae_checkpoint(checkpoint)
    from vislab.labs.vae import lab as vae
    console.print(f"samples: {vae.sample(checkpoint, n, class_name, out, seed, temperature, prior=prior)}")


@app.command("traverse")
@friendly
@documented(None, None, "vislab vae traverse runs/vae-conv", "vislab vae traverse runs/vae-conv --k 4 --order first")
def vae_traverse_cmd(checkpoint: CheckpointArg,
                     k: Annotated[int, typer.Option(min=1, help="Latent dimensions shown.")] = 8,
                     steps: Annotated[int, typer.Option(min=2, help="Values per dimension.")] = 9,
                     span: Annotated[float, typer.Option(help="Values from -span to span.")] = 3.0,
                     image: Annotated[int, typer.Option(help="Test image whose posterior mean is the centre.")] = 0,
                     order: Annotated[str, typer.Option(
                         metavar="kl|first",
                         help="kl: the k most used dimensions (highest mean KL); first: dimensions 0..k-1.")] = "kl",
                     out: Annotated[Optional[Path], typer.Option(help="PNG path. [default: the run's plots/]")] = None):
    """Latent traversal: k dimensions, each from -span to span, the others fixed at a test image's mean."""
    choice(order, ["kl", "first"], "--order")
    _vae_checkpoint(checkpoint)
    from vislab.labs.vae import lab as vae
    console.print(f"traversal: {vae.traverse(checkpoint, k, steps, span, image, out, order=order)}")


@app.command("compare")
@friendly
@documented(None, None, "vislab vae compare runs/vae-fc runs/vae-conv runs/vae-cvae",
            "vislab vae compare runs/vae-* --out runs/vae-table")
def vae_compare_cmd(runs: Annotated[list[Path], typer.Argument(metavar="RUNS...", help="Evaluated VAE run folders.")],
                    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/vae-compare")):
    """The results table over runs (nats, FID, controllability), traversals side by side, per-class grids."""
    from vislab.labs.vae import lab as vae
    folder = vae.compare(runs, out)
    console.print(f"comparison report: {folder / 'report.html'}")
    console.print((folder / "report.md").read_text().split("## Results", 1)[-1].strip()[:4000])


@app.command("classifier")
@friendly
@documented(ClassifierRunConfig, {"data": "data.root", **ENGINE_FLAGS}, "vislab vae classifier -c vae/classifier",
            "vislab vae classifier --epochs 3 --ship", none=NONE | {"name": "fmnist-classifier"})
@engine_options
def vae_classifier_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                       out: OutOpt = None, name: NameOpt = None,
                       resume: ResumeOpt = None,
                       ship: Annotated[bool, typer.Option(
                           "--ship", help="Copy the weights into the package (what FID uses by default).")] = False,
                       progress: ProgressOpt = True, engine: dict | None = None):
    """Train the Fashion-MNIST classifier behind FID (a) and controllability; prints its test accuracy."""
    cfg = build_config(ClassifierRunConfig, {"data": "data.root", **ENGINE_FLAGS}, config, overrides, None, data=data,
                       out=out, name=name, **engine)
    if resume is None:
        check_data(cfg)
    from vislab.labs.vae import classifier as vae_classifier
    run_dir = vae_classifier.train_classifier(cfg, resume=resume, progress=progress)
    m = json.loads((run_dir / "metrics.json").read_text())
    console.print(f"test accuracy {100 * m['test_accuracy']:.2f}%; weights {run_dir / 'classifier.safetensors'}")
    if ship:
        console.print(f"shipped: {vae_classifier.ship(run_dir)}")
