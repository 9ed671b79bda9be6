"""Experiment configuration: pydantic models, YAML files and `a.b=value` overrides.

One YAML file per experiment (configs/*.yaml). Any field can be overridden from the command
line as a dotted key, nanoGPT-style: `vislab fashion train train.epochs=3 data.image_size=[96,72]`.
Values are parsed as YAML, so lists, numbers, booleans and `null` work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FASHION_TASKS = ["gender", "masterCategory", "subCategory", "baseColour", "season", "articleType"]


def _check_split(v):
    """train/val/test fractions: each >= 0, train > 0, summing to 1."""
    if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6 or v[0] <= 0:
        raise ValueError(f"split fractions must be >= 0, train > 0, and sum to 1, got {v}")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


class DataConfig(_Strict):
    root: str | None = None
    """Dataset folder. None = the built-in synthetic product images (generated once, cached)."""
    csv: str = "styles.csv"
    """CSV file, relative to root (or absolute)."""
    image_dir: str = "images"
    """Image folder, relative to root (or absolute)."""
    image_col: str = "id"
    """Column naming the image file; `image_ext` is appended when the value has no extension."""
    image_ext: str = ".jpg"
    """Extension appended to `image_col` values that have none (Kaggle: id 15970 -> 15970.jpg)."""
    label_cols: list[str] = Field(default_factory=lambda: list(FASHION_TASKS))
    """One classification head per column."""
    min_samples: int = 50
    """Drop classes with fewer samples than this in any task (repeated until stable)."""
    merge_colours: bool = True
    """Map the 46 raw baseColour values onto at most 20 standard colours (README table)."""
    colour_col: str = "baseColour"
    """The label column that `merge_colours` applies to."""
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)
    """train/val/test fractions (sum 1). Val picks the best epoch; test is reported."""
    stratify_col: str | None = "articleType"
    """Column the train/val/test split is stratified on (None or missing: first label column)."""
    seed: int = 42
    """Seed of the split (independent from the training seed)."""
    image_size: tuple[int, int] = (96, 72)
    """(height, width) every image is resized to (white padding keeps the aspect ratio)."""
    limit: int | None = None
    """Use only the first N rows of the CSV (after shuffling with `seed`): quick experiments."""
    synthetic_n: int = 3000
    """Number of synthetic products when root is None."""
    cache_dir: str | None = None
    """Decoded-image cache; default $VISLAB_CACHE or ~/.cache/vislab."""
    workers: int = 0
    """Processes that decode images (0 = one per CPU core)."""

    _split_sums_to_one = field_validator("split")(classmethod(lambda cls, v: _check_split(v)))

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v):
        if min(v) < 16:
            raise ValueError(f"image_size (height, width) must be at least 16x16, got {v}")
        return v


class ModelConfig(_Strict):
    backbone: str = "tf_efficientnet_lite0"
    """Any timm model name; see README for the documented set."""
    pretrained: bool = True
    """ImageNet weights: offline package for tf_efficientnet_lite0/1/2, timm hub for others (--no-pretrained: random init)."""
    drop_rate: float = 0.2
    """Dropout before each head."""
    freeze_backbone: bool = False
    """Linear probe: backbone features computed once (cached), only the heads train."""


# A recipe presets every TrainConfig field below that is left as null. Labs pick one per model
# (e.g. the CIFAR lab: mlp -> mlp-sgd); any field set explicitly wins over the preset.
_COMMON = dict(lr=1e-3, epochs=5, batch_size=64, label_smoothing=0.0, momentum=0.9, nesterov=True,
               gamma=0.1, step_size=10, tta=False)
RECIPES: dict[str, dict[str, Any]] = {
    # Adam, constant learning rate, no weight decay, no clipping, same lr everywhere.
    "baseline": _COMMON | dict(optimizer="adam", scheduler="constant", weight_decay=0.0, backbone_lr_mult=1.0, grad_clip=None),
    # AdamW, lower lr for the pretrained backbone than for the new heads, OneCycle, clipping.
    "tuned": _COMMON | dict(optimizer="adamw", scheduler="onecycle", weight_decay=1e-4, backbone_lr_mult=0.1, grad_clip=1.0),
    # CIFAR-10 lab, the original experiments' recipes:
    # MLP: plain SGD (wd 5e-4) at lr 1e-1, 1e-2, 1e-3, 1e-4 for 10 epochs each, one after the other.
    "mlp-sgd": _COMMON | dict(optimizer="sgd", momentum=0.0, nesterov=False, scheduler="step", step_size=10, gamma=0.1,
                              lr=0.1, epochs=40, weight_decay=5e-4, backbone_lr_mult=1.0, grad_clip=None, batch_size=128),
    # plain CNNs: Adam 1e-3, constant, 10 epochs.
    "cnn-adam": _COMMON | dict(optimizer="adam", scheduler="constant", lr=1e-3, epochs=10, weight_decay=0.0,
                               backbone_lr_mult=1.0, grad_clip=None, batch_size=128),
    # block CNNs: Adam 1e-3 with ExponentialLR (x0.9 per epoch).
    "blocks-exp": _COMMON | dict(optimizer="adam", scheduler="exponential", gamma=0.9, lr=1e-3, epochs=10,
                                 weight_decay=0.0, backbone_lr_mult=1.0, grad_clip=None, batch_size=128),
    # transfer learning: SGD momentum 0.9, wd 1e-3, unfrozen backbone layers at lr x0.1.
    "transfer-sgd": _COMMON | dict(optimizer="sgd", momentum=0.9, nesterov=False, scheduler="constant", lr=1e-2,
                                   epochs=10, weight_decay=1e-3, backbone_lr_mult=0.1, grad_clip=None, batch_size=128),
    # vislab's own: least time to the best accuracy (one-cycle SGD-Nesterov, label smoothing, big batches,
    # flip test-time augmentation; add train.precision=bf16-mixed on a GPU).
    "fast": _COMMON | dict(optimizer="sgd", momentum=0.9, nesterov=True, scheduler="onecycle", lr=0.2, epochs=16,
                           weight_decay=5e-4, backbone_lr_mult=1.0, grad_clip=None, batch_size=256,
                           label_smoothing=0.2, tta=True),
    # Siamese lab: Adam with StepLR (the original experiment's schedule); the pretrained backbone at a tenth
    # of the head's lr (the most robust setting over five person splits, README).
    "siamese-step": _COMMON | dict(optimizer="adam", scheduler="step", step_size=5, gamma=0.5, lr=1e-4, epochs=10,
                                   weight_decay=0.0, backbone_lr_mult=0.1, grad_clip=None, batch_size=32),
    # Generative lab: Adam 1e-3, constant, 20 epochs, batch 128.
    "vae-adam": _COMMON | dict(optimizer="adam", scheduler="constant", lr=1e-3, epochs=20, weight_decay=0.0,
                               backbone_lr_mult=1.0, grad_clip=None, batch_size=128),
    # The generative lab's Fashion-MNIST classifier (FID features, controllability): AdamW one-cycle.
    "fmnist-cnn": _COMMON | dict(optimizer="adamw", scheduler="onecycle", lr=3e-3, epochs=15, weight_decay=5e-4,
                                 backbone_lr_mult=1.0, grad_clip=None, batch_size=128, label_smoothing=0.0),
}



def _with_train_defaults(raw, **defaults):
    """A lab config's `train` section with the lab's defaults for the keys it leaves out."""
    if isinstance(raw, dict):
        raw = {**raw, "train": {**defaults, **dict(raw.get("train") or {})}}
    return raw

class TrainConfig(_Strict):
    recipe: str = "tuned"
    """Preset for every field below that is left as null: baseline, tuned (fashion); mlp-sgd, cnn-adam, blocks-exp, transfer-sgd, fast (CIFAR); siamese-step; vae-adam, fmnist-cnn (generative). README lists each."""
    optimizer: Literal["adam", "adamw", "sgd"] | None = None
    """adam | adamw | sgd. null: from the recipe."""
    scheduler: Literal["constant", "onecycle", "cosine", "exponential", "step"] | None = None
    """constant | onecycle (per step, 25% warm-up) | cosine (per step) | exponential (x gamma per epoch) | step (x gamma every step_size epochs). null: from the recipe."""
    weight_decay: float | None = None
    """null: from the recipe (baseline 0, tuned 1e-4)."""
    backbone_lr_mult: float | None = None
    """Backbone (pretrained part) lr = lr x this. null: from the recipe (baseline 1.0, tuned 0.1)."""
    grad_clip: float | None = None
    """Max global gradient norm. null: from the recipe (baseline none, tuned 1.0); 0 disables."""
    momentum: float | None = None
    """SGD momentum. null: from the recipe (0.9; mlp-sgd 0)."""
    nesterov: bool | None = None
    """SGD Nesterov momentum. null: from the recipe."""
    gamma: float | None = None
    """lr factor of the exponential (per epoch) and step schedulers. null: from the recipe."""
    step_size: int | None = None
    """Epochs between lr drops of the step scheduler. null: from the recipe (10)."""
    lr: float | None = None
    """Learning rate of the heads (peak lr for OneCycle); backbone gets lr * backbone_lr_mult. null: from the recipe."""
    epochs: int | None = None
    """Passes over the training split (validation + checkpoints after each). null: from the recipe."""
    max_steps: int | None = None
    """Stop after this many optimizer steps in total (a fixed budget for comparisons)."""
    batch_size: int | None = None
    """Training batch size per device. null: from the recipe (64; CIFAR recipes 128-256)."""
    eval_batch_size: int = 256
    """Batch size for validation, test and feature extraction."""
    label_smoothing: float | None = None
    """Cross-entropy label smoothing, all tasks. null: from the recipe (0; fast 0.2)."""
    tta: bool | None = None
    """Test-time augmentation in the final evaluation: average the logits of the image and its mirror. null: from the recipe (fast: true)."""
    task_weights: dict[str, float] = Field(default_factory=dict)
    """Loss weight per task (default 1.0)."""
    augment: bool = True
    """Training augmentation on (the lab defines which; fashion: flip, small shift, brightness/contrast, never hue)."""
    seed: int = 0
    """Seeds initialisation, shuffling, dropout and augmentation (per epoch, so --resume is exact)."""
    deterministic: bool = False
    """torch.use_deterministic_algorithms (slower on GPU); CPU runs are reproducible without it."""
    accelerator: str = "auto"
    """Lightning Fabric accelerator: auto, cpu, gpu/cuda, mps."""
    devices: int | str = 1
    """Devices (processes with strategy ddp; e.g. 2 CPU processes)."""
    strategy: str = "auto"
    """Fabric strategy: auto, ddp, ..."""
    precision: str = "32-true"
    """e.g. 32-true, bf16-mixed, 16-mixed (GPU)."""
    channels_last: bool = True
    """NHWC memory format for 4-D image inputs: ~1.4x faster convolutions on CPU here, and on GPU tensor cores."""
    num_workers: int = 0
    """DataLoader workers; batches are slices of an in-memory uint8 tensor, so 0 is usually fastest."""
    monitor: str = "val_loss"
    """History column that picks the best checkpoint (e.g. val_loss, val_accuracy, val_auc)."""
    monitor_mode: Literal["min", "max"] | None = None
    """min or max of `monitor`. null: min for a column with 'loss' in its name, else max."""

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, v):
        if v not in RECIPES:
            raise ValueError(f"unknown recipe {v!r}; recipes are {sorted(RECIPES)}")
        return v

    def resolved(self) -> dict[str, Any]:
        """The recipe with explicit fields applied on top."""
        out = dict(RECIPES[self.recipe])
        for k in out:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out

    def filled(self) -> "TrainConfig":
        """A copy with every null field taken from the recipe (what the engine runs with)."""
        return self.model_copy(update=self.resolved())


class RunConfig(_Strict):
    name: str = "fashion"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _weights_name_tasks(self):
        unknown = set(self.train.task_weights) - set(self.data.label_cols)
        if unknown:
            raise ValueError(f"train.task_weights names unknown tasks {sorted(unknown)}; tasks are {self.data.label_cols}")
        return self


# --------------------------------------------------------------------------- CIFAR-10 lab

CIFAR_DEFAULT_RECIPES = {"mlp": "mlp-sgd", "cnn": "cnn-adam", "cnn-bn": "cnn-adam", "blocks": "blocks-exp",
                         "transfer": "transfer-sgd", "fastnet": "fast"}


def default_cifar_recipe(model: str) -> str:
    """The original experiment's recipe of a CIFAR model spec (blocks:AAAAAAAA -> blocks-exp)."""
    return CIFAR_DEFAULT_RECIPES.get(model.split(":")[0], "cnn-adam")


class CifarDataConfig(_Strict):
    source: Literal["folder", "pickles", "torchvision"] = "folder"
    """folder: root/train_dir/<class>/*.jpg and root/test_dir/... (ImageFolder layout); pickles: the original cifar-10-batches-py; torchvision: CIFAR10(root, download=...)."""
    root: str = "../shared/data/cifar10"
    """Dataset folder."""
    train_dir: str = "train"
    """Training class folders, relative to root (source=folder)."""
    test_dir: str = "test"
    """Test class folders, relative to root (source=folder)."""
    download: bool = True
    """source=torchvision: download when missing (needs internet; a clear error otherwise)."""
    image_size: tuple[int, int] = (32, 32)
    """(height, width) images are resized to once, when decoded (source=folder)."""
    val_mode: Literal["per_class", "fraction"] = "per_class"
    """How validation is split off train: a fixed number per class, or a random fraction."""
    val_per_class: int = 200
    """Validation images per class (val_mode=per_class; the original used 1,000 of 5,000; 200 of the shared 2,000)."""
    val_fraction: float = 0.1
    """Fraction of train used for validation (val_mode=fraction)."""
    augment: Literal["none", "a", "b"] = "b"
    """none | a: ColorJitter 0.25/0.25/0.25 + RandomAffine(10 deg, translate 0.1, scale 0.9-1.1) + flip | b: RandomCrop(32, pad 4) + flip."""
    limit_per_class: int | None = None
    """Use at most N training images per class (quick runs); test stays whole."""
    seed: int = 42
    """Seed of the validation split."""
    cache_dir: str | None = None
    """Decoded-image cache; default $VISLAB_CACHE or ~/.cache/vislab."""
    workers: int = 0
    """Processes that decode images (0 = one per CPU core)."""


class CifarModelConfig(_Strict):
    name: str = "cnn"
    """mlp | cnn | cnn-bn | blocks:<8 letters A-E> | transfer:vgg16 | transfer:efficientnet_lite0 | fastnet (`vislab cifar models`)."""
    pretrained: bool = True
    """transfer:* models: ImageNet weights (vgg16 from torchvision's hub when online; lite0 offline)."""
    separable: bool = False
    """blocks: D blocks use a depthwise-separable 3x3 conv."""
    freeze: int | None = None
    """transfer:* models: leading layers/stages kept frozen (null: the model's default, vgg16 19 feature layers)."""
    input_size: int | None = None
    """transfer:efficientnet_lite0: side the 32x32 images are upsampled to inside the model (null: 64; larger is more accurate and slower)."""


class CifarRunConfig(_Strict):
    name: str = "cifar"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: CifarDataConfig = Field(default_factory=CifarDataConfig)
    model: CifarModelConfig = Field(default_factory=CifarModelConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(recipe="cnn-adam"))

    @model_validator(mode="before")
    @classmethod
    def _recipe_of_model(cls, raw):
        """No recipe given: the model's own (mlp -> mlp-sgd, cnn -> cnn-adam, blocks -> blocks-exp, ...)."""
        if isinstance(raw, dict):
            train = dict(raw.get("train") or {})
            if train.get("recipe") is None:
                name = (raw.get("model") or {}).get("name", "cnn") if isinstance(raw.get("model"), dict) else "cnn"
                train["recipe"] = default_cifar_recipe(name)
                raw = {**raw, "train": train}
        return raw


# --------------------------------------------------------------------------- Siamese lab


class SiameseDataConfig(_Strict):
    root: str = "../shared/data/faces"
    """Folder of person subfolders (root/<person>/<image>; AT&T/ORL, the Kaggle Siamese-faces layout, ...)."""
    image_size: tuple[int, int] = (112, 92)
    """(height, width) every face is resized to once, when decoded (AT&T: 112x92, its own size)."""
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    """train/val/test fractions of the PEOPLE (no person in two splits)."""
    seed: int = 42
    """Seed of the person split."""
    min_images: int = 2
    """People with fewer images are excluded and counted (a positive pair needs two)."""
    positive_rate: float = 0.5
    """Pair sampler: probability that an anchor's partner is the same person."""
    cache_dir: str | None = None
    """Decoded-image cache; default $VISLAB_CACHE or ~/.cache/vislab."""
    workers: int = 0
    """Processes that decode images (0 = one per CPU core)."""

    _split_sums_to_one = field_validator("split")(classmethod(lambda cls, v: _check_split(v)))


class SiameseModelConfig(_Strict):
    backbone: str = "tf_efficientnet_lite0"
    """timm backbone (the original used efficientnet_b0; tf_efficientnet_lite0 has offline ImageNet weights)."""
    pretrained: bool = True
    """ImageNet weights (offline for tf_efficientnet_lite0/1/2, timm hub for others)."""
    embedding_dim: int = 128
    """Size of the embedding (Linear after the pooled backbone features)."""
    relu: bool = False
    """ReLU after the projection, as in the original."""
    normalize: bool = True
    """L2-normalise embeddings (distances then lie in [0, 2])."""
    freeze_bn: bool = True
    """Keep the backbone's BatchNorm statistics (ImageNet's) while training; batch statistics of small pair batches do not carry over to evaluation."""


class SiameseLossConfig(_Strict):
    loss: Literal["contrastive", "triplet"] = "contrastive"
    """contrastive: pairs from the pair sampler; triplet: triplets from the triplet sampler, or mined in-batch (miner)."""
    form: Literal["original", "hadsell"] = "hadsell"
    """Contrastive form: original y*d^2 + (1-y)*max(0, m^2 - d^2); hadsell y*d^2 + (1-y)*max(0, m - d)^2."""
    margin: float = 1.0
    """Margin m of the contrastive or triplet loss."""
    distance: Literal["euclidean", "cosine"] = "euclidean"
    """Triplet loss distance (contrastive always uses Euclidean). Verification uses the same distance."""
    miner: Literal["none", "batch-hard", "semi-hard"] = "none"
    """Triplet only. none: one sampled triplet per anchor; batch-hard / semi-hard: pytorch-metric-learning miners on M-per-person batches."""
    m_per_class: int = 4
    """Mined batches: images per person in a batch (pytorch-metric-learning MPerClassSampler)."""

    @field_validator("margin")
    @classmethod
    def _positive_margin(cls, v):
        if v <= 0:
            raise ValueError(f"margin must be > 0, got {v}")
        return v


class SiameseSearchConfig(_Strict):
    trials: int = 20
    """Optuna trials."""
    sampler: Literal["random", "tpe"] = "random"
    """random (Optuna RandomSampler) or tpe."""
    objective: Literal["val_auc", "val_loss"] = "val_auc"
    """What a trial maximises (val_auc) or minimises (val_loss, only comparable within one loss)."""
    lr: tuple[float, float] = (1e-5, 1e-3)
    """Learning-rate range (log-uniform)."""
    margin: tuple[float, float] = (0.5, 2.0)
    """Margin range."""
    step_size: list[int] = Field(default_factory=lambda: [3, 5, 8])
    """StepLR step sizes (epochs)."""
    gamma: tuple[float, float] = (0.1, 0.9)
    """StepLR gamma range."""
    epochs: list[int] = Field(default_factory=lambda: [8, 12, 16])
    """Epoch counts."""
    embedding_dim: list[int] = Field(default_factory=lambda: [64, 128, 256])
    """Embedding sizes."""
    backbone_lr_mult: list[float] = Field(default_factory=list)
    """Backbone lr multipliers tried (train.backbone_lr_mult), e.g. [1.0, 0.1]. Empty: the train section's (or recipe's) for every trial; one value: that value."""
    loss: list[str] = Field(default_factory=lambda: ["contrastive:original", "contrastive:hadsell", "triplet:none",
                                                     "triplet:semi-hard"])
    """Losses tried, as loss:form (contrastive) or loss:miner (triplet)."""
    splits: list[int] = Field(default_factory=list)
    """Person-split seeds (data.seed) every trial is trained on; the objective is their mean. Empty: data.seed only. A few test/val people make one split's numbers noisy."""
    storage: str | None = None
    """Optuna storage URL; null: sqlite in the search folder (an interrupted search resumes from it)."""
    retrain: bool = False
    """Retrain the best parameters with their full epochs after the search (else keep the best trial's run)."""


class SiameseRunConfig(_Strict):
    name: str = "siamese"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: SiameseDataConfig = Field(default_factory=SiameseDataConfig)
    model: SiameseModelConfig = Field(default_factory=SiameseModelConfig)
    loss: SiameseLossConfig = Field(default_factory=SiameseLossConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(recipe="siamese-step", monitor="val_auc"))
    search: SiameseSearchConfig = Field(default_factory=SiameseSearchConfig)

    @model_validator(mode="before")
    @classmethod
    def _siamese_defaults(cls, raw):
        """A train section without recipe/monitor gets the lab's (siamese-step, best checkpoint by val_auc)."""
        return _with_train_defaults(raw, recipe="siamese-step", monitor="val_auc")


# --------------------------------------------------------------------------- generative lab


class VaeDataConfig(_Strict):
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


class VaeModelConfig(_Strict):
    name: Literal["vae", "conv-vae", "cvae"] = "conv-vae"
    """vae (fully connected) | conv-vae | cvae (conv VAE conditioned on the class)."""
    latent_dim: int | None = None
    """null: the model's own (vae 32, conv-vae/cvae 64)."""
    width: int = Field(64, ge=1)
    """conv-vae/cvae: channels of the first conv (the second has twice as many); ignored by vae. 64 beat 32 at 5 epochs: 242.1 vs 244.2 nats, FID (a) 239 vs 272."""
    depth: int = Field(0, ge=0)
    """conv-vae/cvae: 3x3 conv layers after each decoder upsampling (and, for cvae, the class as channels at every decoder resolution); 0 = the plain two-layer transposed-conv decoder. cvae beta 0.5, depth 1 vs 0: same loss (226.69 vs 226.68 nats), half the speed, controllability 82.8% vs 87.0% (fitted prior)."""
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


class VaeEvalConfig(_Strict):
    classifier: str | None = None
    """Fashion-MNIST classifier weights for FID (a) and controllability. null: the ones shipped with vislab."""
    fid_n: int = Field(10000, ge=2)
    """Generated and test images per FID (10,000 each = the whole test set)."""
    inception: bool = False
    """Also FID (b) with Inception-v3 features (torchmetrics + torch-fidelity; slow on CPU)."""
    inception_weights: str | None = None
    """Path of torch-fidelity's Inception weights file (weights-inception-2015-12-05-6726825d.pth). null: download (online only)."""
    controllability_n: int = Field(1000, ge=1)
    """cVAE samples per class for controllability."""
    fitted_prior: bool = True
    """Also sample from a density per class fitted to the training images' latent codes (vae.FittedPrior, saved beside the checkpoint as <stem>.prior.safetensors): FID (a) and controllability for those samples."""
    prior_components: int = Field(10, ge=1)
    """Gaussian components per class of the fitted prior (1: one Gaussian moment-matched to the aggregated posterior; K > 1: a K-component mixture fitted by EM)."""
    temperatures: list[Annotated[float, Field(ge=0)]] = Field(default_factory=lambda: [0.8, 0.6, 0.4])
    """Fitted-prior sampling temperatures measured beside 1 (code = component mean + T x its spread; T < 1 trades diversity for typical samples, like truncation; T > 1 the reverse): FID (a) and controllability at each, plus plots/temperature_sweep.png. []: none."""
    iwae_k: int = Field(0, ge=0)
    """k > 0: also the importance-weighted log-likelihood bound with k samples per test image."""
    detail_classes: list[str] | None = None
    """Three cVAE classes shown in detail. null: the three least controllable."""
    tsne: bool = True
    """t-SNE of the test posterior means (~20 s)."""


class VaeRunConfig(_Strict):
    name: str = "vae"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: VaeDataConfig = Field(default_factory=VaeDataConfig)
    model: VaeModelConfig = Field(default_factory=VaeModelConfig)
    eval: VaeEvalConfig = Field(default_factory=VaeEvalConfig)
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(recipe="vae-adam", augment=False, channels_last=False))

    @model_validator(mode="before")
    @classmethod
    def _vae_defaults(cls, raw):
        """A train section without recipe gets vae-adam, no augmentation (a VAE models the images as they are)
        and no channels_last (1-channel 28x28 images and fully connected layers gain nothing from it)."""
        return _with_train_defaults(raw, recipe="vae-adam", augment=False, channels_last=False)


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
        if not isinstance(cur, dict):
            raise ValueError(f"override {key!r}: {p!r} is not a section")
    cur[parts[-1]] = value


def parse_overrides(items: list[str] | None) -> dict:
    """['train.epochs=3', 'data.root=/x'] -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form section.field=value")
        _set_dotted(out, key, yaml.safe_load(raw) if raw.strip() else None)
    return out


def deep_merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None,
                model: type[BaseModel] = RunConfig) -> Any:
    """Defaults <- YAML file <- overrides. Unknown keys are errors (typos do not pass silently)."""
    raw: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file {p} does not exist")
        raw = yaml.safe_load(p.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"config file {p} must hold a mapping at top level")
    ov = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    return model.model_validate(deep_merge(raw, ov))


class ClassifierRunConfig(_Strict):
    """The generative lab's Fashion-MNIST classifier (`vislab vae classifier`): its penultimate layer is the
    offline FID feature space, its predictions measure the cVAE's controllability."""
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
        return _with_train_defaults(raw, recipe="fmnist-cnn")


def markdown_reference(model: type[BaseModel] = RunConfig, prefix: str = "") -> str:
    """The README's config table: every field, its default and its docstring."""
    rows = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.append(markdown_reference(ann, f"{prefix}{name}."))
            continue
        default = f.default_factory() if f.default_factory else f.default
        doc = (f.description or "").replace(chr(10), " ").replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{prefix}{name}` | `{default!r}` | {doc} |")
    body = "\n".join(rows)
    return body if prefix else "| field | default | meaning |\n|---|---|---|\n" + body


if __name__ == "__main__":
    print(markdown_reference())
    print()
    print(markdown_reference(CifarRunConfig))
    print()
    print(markdown_reference(SiameseRunConfig))
    print()
    print(markdown_reference(VaeRunConfig))
    print()
    print(markdown_reference(ClassifierRunConfig))

