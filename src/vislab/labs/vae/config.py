"""Generative lab configuration (data, model, eval, train), the Fashion-MNIST classifier's, and their
recipes. Packaged YAMLs: `-c vae/conv`, `vae/fc`, `vae/cvae`, ... and `vae/classifier`."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from vislab.core.config import Strict, TrainConfig, register_config_dir, with_train_defaults
from vislab.core.recipes import register_recipe

LAB = "vae"
register_config_dir(LAB, Path(__file__).parent / "configs")
register_recipe("vae-adam", LAB, "Adam 1e-3, constant, 20 epochs, batch 128", epochs=20, batch_size=128)
register_recipe("fmnist-cnn", LAB, "the Fashion-MNIST classifier (FID features, controllability): AdamW one-cycle",
                optimizer="adamw", scheduler="onecycle", lr=3e-3, epochs=15, weight_decay=5e-4, batch_size=128)

class VaeDataConfig(Strict):
    source: Literal["idx", "torchvision"] = "idx"
    """idx: the four original IDX files in root (.gz or not); torchvision: FashionMNIST(root, download=...)."""
    root: str = "../shared/data/fashion-mnist"
    """Folder of the IDX files (or torchvision's root)."""
    download: bool = True
    """source=torchvision: download when missing (needs internet; a clear error otherwise)."""
    val_per_class: int = 500
    """Validation images per class, taken from train (picks the best epoch); test is reported."""
    limit_per_class: int | None = None
    """Use at most N training images per class (quick runs); test stays whole."""
    seed: int = 42
    """Seed of the validation split."""


class VaeModelConfig(Strict):
    name: Literal["vae", "conv-vae", "cvae"] = "conv-vae"
    """vae (fully connected) | conv-vae | cvae (conv VAE conditioned on the class)."""
    latent_dim: int | None = None
    """null: the model's own (vae 32, conv-vae/cvae 64)."""
    width: int = Field(64, ge=1)
    """conv-vae/cvae: channels of the first conv (the second has twice as many); ignored by vae. (docs: labs/vae.md
    compares widths)."""
    depth: int = Field(0, ge=0)
    """conv-vae/cvae: 3x3 conv layers after each decoder upsampling (and, for cvae, the class as channels at every
    decoder resolution); 0 = the plain two-layer transposed-conv decoder. (docs: labs/vae.md measures depth 1
    against 0)."""
    beta: float = 1.0
    """Weight of the KL term (beta-VAE); must be > 0."""
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    """Reconstruction term: Bernoulli (binary cross-entropy summed over pixels) or unit-variance Gaussian (MSE)."""

    @field_validator("beta")
    @classmethod
    def _positive_beta(cls, v):
        if not v > 0:
            raise ValueError(f"beta must be > 0, got {v}")
        return v


class VaeEvalConfig(Strict):
    classifier: str | None = None
    """Fashion-MNIST classifier weights for FID (a) and controllability. null: the ones shipped with vislab."""
    fid_n: int = Field(10000, ge=2)
    """Generated and test images per FID (10,000 each = the whole test set)."""
    inception: bool = False
    """Also FID (b) with Inception-v3 features (torchmetrics + torch-fidelity; slow on CPU)."""
    inception_weights: str | None = None
    """Path of torch-fidelity's Inception weights file (weights-inception-2015-12-05-6726825d.pth). null: download
    (online only)."""
    controllability_n: int = Field(1000, ge=1)
    """cVAE samples per class for controllability."""
    fitted_prior: bool = True
    """Also sample from a density per class fitted to the training images' latent codes (vae.FittedPrior, saved
    beside the checkpoint as <stem>.prior.safetensors): FID (a) and controllability for those samples."""
    prior_components: int = Field(10, ge=1)
    """Gaussian components per class of the fitted prior (1: one Gaussian moment-matched to the aggregated posterior;
    K > 1: a K-component mixture fitted by EM)."""
    temperatures: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [0.8, 0.6, 0.4])
    """Fitted-prior sampling temperatures measured beside 1 (code = component mean + T x its spread; T < 1 trades
    diversity for typical samples, like truncation; T > 1 the reverse): FID (a) and controllability at each, plus
    plots/temperature_sweep.png. []: none."""
    iwae_k: int = Field(0, ge=0)
    """k > 0: also the importance-weighted log-likelihood bound with k samples per test image."""
    detail_classes: list[str] | None = None
    """Three cVAE classes shown in detail. null: the three least controllable."""
    tsne: bool = True
    """t-SNE of the test posterior means (~20 s)."""


class VaeRunConfig(Strict):
    lab: ClassVar[str] = LAB
    name: str = "vae"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: VaeDataConfig = Field(default_factory=VaeDataConfig)
    model: VaeModelConfig = Field(default_factory=VaeModelConfig)
    eval: VaeEvalConfig = Field(default_factory=VaeEvalConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(recipe="vae-adam", augment=False,
                                                                   channels_last=False))

    @model_validator(mode="before")
    @classmethod
    def _vae_defaults(cls, raw):
        """A train section without recipe gets vae-adam, no augmentation (a VAE models the images as they are)
        and no channels_last (1-channel 28x28 images and fully connected layers gain nothing from it)."""
        return with_train_defaults(raw, recipe="vae-adam", augment=False, channels_last=False)


class ClassifierRunConfig(Strict):
    """The generative lab's Fashion-MNIST classifier (`vislab vae classifier`): its penultimate layer is the
    offline FID feature space, its predictions measure the cVAE's controllability."""
    lab: ClassVar[str] = LAB
    name: str = "fmnist-classifier"
    """Run folder name."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: VaeDataConfig = Field(default_factory=VaeDataConfig)
    dropout: float = 0.3
    """Dropout before the last layer."""
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(recipe="fmnist-cnn"))

    @model_validator(mode="before")
    @classmethod
    def _classifier_defaults(cls, raw):
        """A train section without recipe gets fmnist-cnn; augmentation (random 2-pixel shifts + flips) stays on."""
        return with_train_defaults(raw, recipe="fmnist-cnn")
