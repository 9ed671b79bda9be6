"""`vislab vae eda | train | evaluate | sample | traverse | compare | classifier`."""
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
    console,
    engine_options,
    floats,
    friendly,
)

app = typer.Typer(no_args_is_help=True,
                  help="Generative lab: VAE, conv VAE, beta-VAE, conditional VAE on Fashion-MNIST.")

FLAGS = {"data": "data.root", "model": "model.name", "beta": "model.beta", "latent_dim": "model.latent_dim",
         "likelihood": "model.likelihood", "classifier": "eval.classifier", "fid_n": "eval.fid_n",
         "inception": "eval.inception", "inception_weights": "eval.inception_weights", "iwae_k": "eval.iwae_k",
         "limit_per_class": "data.limit_per_class", **ENGINE_FLAGS}
FmnistData = Annotated[Optional[str], typer.Option("--data", help="Folder of the four Fashion-MNIST IDX files.")]
ClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", help="Classifier weights for FID (a) and controllability (default: shipped).")]
FidNOpt = Annotated[Optional[int], typer.Option("--fid-n", help="Generated and test images per FID (default 10000).")]
InceptionOpt = Annotated[Optional[bool], typer.Option(
    "--inception/--no-inception", help="Also FID (b) with Inception-v3 (slow on CPU).")]
InceptionWeightsOpt = Annotated[Optional[str], typer.Option(
    "--inception-weights", help="torch-fidelity's Inception weights file (offline).")]
IwaeOpt = Annotated[Optional[int], typer.Option(
    "--iwae-k", help="k > 0: importance-weighted log p(x) bound with k samples.")]
CheckpointArg = Annotated[Path, typer.Argument(help="A VAE run folder or its .safetensors checkpoint.")]


def build_vae_config(config, overrides, **flags):
    from vislab.labs.vae.config import VaeRunConfig
    return build_config(VaeRunConfig, FLAGS, config, overrides, None, **flags)


@app.command("eda")
@friendly
def vae_eda_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                out: Annotated[Optional[Path], typer.Option(
                    help="Output folder (default runs/fashion-mnist-eda).")] = None):
    """Class distribution (train, test), pixel intensities, non-zero pixels, examples per class."""
    from vislab.labs.vae import lab as vae
    folder = vae.eda(build_vae_config(config, overrides, data=data), out)
    console.print(f"EDA report: {folder / 'report.html'}")


@app.command("train")
@friendly
@engine_options
def vae_train_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                  model: Annotated[Optional[str], typer.Option("--model", "-m", help="vae, conv-vae or cvae.")] = None,
                  beta: Annotated[Optional[float], typer.Option(help="KL weight (> 0).")] = None,
                  latent_dim: Annotated[Optional[int], typer.Option(help="Latent size.")] = None,
                  likelihood: Annotated[Optional[str], typer.Option(help="bernoulli or gaussian.")] = None,
                  limit_per_class: Annotated[Optional[int], typer.Option(
                      help="Train on N images per class (quick runs).")] = None,
                  classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                  inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None, iwae_k: IwaeOpt = None,
                  resume: ResumeOpt = None, out: OutOpt = None, name: NameOpt = None, progress: ProgressOpt = True,
                  engine: dict | None = None):
    """Train a VAE, then evaluate it: test nats per image, FID, controllability (cvae), grids, report.html."""
    from vislab.labs.vae import lab as vae
    cfg = build_vae_config(config, overrides, data=data, model=model, beta=beta, latent_dim=latent_dim,
                           likelihood=likelihood, limit_per_class=limit_per_class, classifier=classifier, fid_n=fid_n,
                           inception=inception, inception_weights=inception_weights, iwae_k=iwae_k, out=out,
                           name=name, **engine)
    run_dir = vae.train(cfg, resume=resume, progress=progress)
    console.print(f"run folder: {run_dir}\nreport: {run_dir / 'report.html'}")


@app.command("evaluate")
@friendly
def vae_evaluate_cmd(checkpoint: CheckpointArg, classifier: ClassifierOpt = None, fid_n: FidNOpt = None,
                     inception: InceptionOpt = None, inception_weights: InceptionWeightsOpt = None,
                     iwae_k: IwaeOpt = None,
                     fitted_prior: Annotated[Optional[bool], typer.Option(
                         "--fitted-prior/--no-fitted-prior",
                         help="Also FID (a) and controllability of samples from the fitted prior "
                              "(default: on).")] = None,
                     detail: Annotated[Optional[str], typer.Option(
                         help="Comma-separated cVAE classes to show in detail.")] = None,
                     temperatures: Annotated[Optional[str], typer.Option(
                         help="Comma-separated fitted-prior sampling temperatures measured beside 1 "
                              "(default 0.8,0.6,0.4; '' for none).")] = None):
    """Test nats per image, FID (a) and optionally (b), controllability (cvae), grids, traversal, t-SNE, report.html."""
    from vislab.labs.vae import lab as vae
    ov = {k: v for k, v in dict(classifier=classifier, fid_n=fid_n, inception=inception,
                                inception_weights=inception_weights, iwae_k=iwae_k,
                                fitted_prior=fitted_prior).items() if v is not None}
    if inception_weights:
        ov["inception"] = True
    if detail:
        ov["detail_classes"] = [c.strip() for c in detail.split(",") if c.strip()]
    if temperatures is not None:
        ov["temperatures"] = floats(temperatures, "--temperatures")
    vae.evaluate(checkpoint, ov)


@app.command("sample")
@friendly
def vae_sample_cmd(checkpoint: CheckpointArg,
                   class_name: Annotated[Optional[str], typer.Option(
                       "--class", help="Class name (cvae), e.g. Coat.")] = None,
                   n: Annotated[int, typer.Option("--n", help="Number of samples.")] = 16,
                   seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
                   temperature: Annotated[float, typer.Option(help="Prior scale (1 = the prior).")] = 1.0,
                   prior: Annotated[str, typer.Option(
                       help="standard: z ~ N(0, I); fitted: the Gaussian mixture per class fitted to the "
                            "training codes (saved by evaluate, else fitted now).")] = "standard",
                   out: Annotated[Optional[Path], typer.Option(help="PNG path (default: the run's plots/).")] = None):
    """A PNG grid of samples from the prior (of one class with --class for the cVAE)."""
    from vislab.labs.vae import lab as vae
    console.print(f"samples: {vae.sample(checkpoint, n, class_name, out, seed, temperature, prior=prior)}")


@app.command("traverse")
@friendly
def vae_traverse_cmd(checkpoint: CheckpointArg,
                     k: Annotated[int, typer.Option(help="First k latent dimensions.")] = 8,
                     steps: Annotated[int, typer.Option(help="Values per dimension.")] = 9,
                     span: Annotated[float, typer.Option(help="Values from -span to span.")] = 3.0,
                     image: Annotated[int, typer.Option(help="Test image whose posterior mean is the centre.")] = 0,
                     order: Annotated[str, typer.Option(
                         help="kl: the k most used dimensions (highest mean KL); first: dimensions 0..k-1.")] = "kl",
                     out: Annotated[Optional[Path], typer.Option(help="PNG path.")] = None):
    """Latent traversal: k dimensions, each from -span to span, the others fixed at a test image's mean."""
    from vislab.labs.vae import lab as vae
    console.print(f"traversal: {vae.traverse(checkpoint, k, steps, span, image, out, order=order)}")


@app.command("compare")
@friendly
def vae_compare_cmd(runs: Annotated[list[Path], typer.Argument(help="Evaluated VAE run folders.")],
                    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("runs/vae-compare")):
    """The results table over runs (nats, FID, controllability), traversals side by side, per-class grids."""
    from vislab.labs.vae import lab as vae
    folder = vae.compare(runs, out)
    console.print(f"comparison report: {folder / 'report.html'}")
    console.print((folder / "report.md").read_text().split("## Results", 1)[-1].strip()[:4000])


@app.command("classifier")
@friendly
@engine_options
def vae_classifier_cmd(overrides: Overrides = None, config: ConfigOpt = None, data: FmnistData = None,
                       out: OutOpt = None, name: NameOpt = None,
                       resume: ResumeOpt = None,
                       ship: Annotated[bool, typer.Option(
                           "--ship", help="Copy the weights into the package (what FID uses by default).")] = False,
                       progress: ProgressOpt = True, engine: dict | None = None):
    """Train the Fashion-MNIST classifier behind FID (a) and controllability; prints its test accuracy."""
    from vislab.labs.vae import classifier as vae_classifier
    from vislab.labs.vae.config import ClassifierRunConfig
    cfg = build_config(ClassifierRunConfig, {"data": "data.root", **ENGINE_FLAGS}, config, overrides, None, data=data,
                       out=out, name=name, **engine)
    run_dir = vae_classifier.train_classifier(cfg, resume=resume, progress=progress)
    m = json.loads((run_dir / "metrics.json").read_text())
    console.print(f"test accuracy {100 * m['test_accuracy']:.2f}%; weights {run_dir / 'classifier.safetensors'}")
    if ship:
        console.print(f"shipped: {vae_classifier.ship(run_dir)}")
