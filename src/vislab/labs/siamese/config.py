"""Siamese lab configuration (data, model, loss, train, search) and its recipe. Packaged YAMLs:
`-c siamese/default`, `siamese/imagenet`, `siamese/multisim`, `siamese/contrastive`, `siamese/triplet`,
`siamese/hadsell`, `siamese/original`, `siamese/cv`."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from vislab.core.backbones import check_backbone
from vislab.core.config import Strict, TrainConfig, check_split, register_config_dir, with_train_defaults
from vislab.core.recipes import register_recipe

LAB = "siamese"
FACE_NET = "dlib_face_resnet"
"""The face-trained backbone (face_backbone.py); every other name is a timm backbone."""
register_config_dir(LAB, Path(__file__).parent / "configs")
register_recipe("siamese-step", LAB, "Adam with StepLR (the original experiment's schedule), pretrained backbone at "
                "a tenth of the head's lr", scheduler="step", step_size=5, gamma=0.5, lr=1e-4, epochs=10,
                backbone_lr_mult=0.1, batch_size=32)

class SiameseDataConfig(Strict):
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
    rotate: float = 0.0
    """Training augmentation (with train.augment, beside flip, small shift/scale, brightness/contrast): a random
    rotation of up to this many degrees either way."""
    scale: float = Field(0.08, ge=0, lt=1)
    """Training augmentation and the WCCN's augmented views: a random zoom of up to this fraction either way
    (0.08: 0.92x to 1.08x)."""
    blur: float = Field(0.0, ge=0)
    """Training augmentation and the WCCN's augmented views: a Gaussian blur of a random standard deviation of up
    to this many pixels of the decoded image (a face out of focus or moving); 0: none."""

    _split_sums_to_one = field_validator("split")(classmethod(lambda cls, v: check_split(v)))


class SiameseModelConfig(Strict):
    backbone: str = "tf_efficientnet_lite0"
    """timm backbone (the original used efficientnet_b0; tf_efficientnet_lite0 has offline ImageNet weights), or
    `dlib_face_resnet`: dlib's face recognition network, trained on faces (`pip install "vislab[faces]"`; 128-d,
    frozen: model.fine_tune false, no feature_level, no ONNX export)."""
    pretrained: bool = True
    """ImageNet weights (offline for tf_efficientnet_lite0/1/2, timm hub for others)."""
    embedding_dim: int = 128
    """Size of the embedding (Linear after the pooled backbone features)."""
    relu: bool = False
    """ReLU after the projection, as in the original."""
    normalize: bool = True
    """L2-normalise embeddings (distances then lie in [0, 2])."""
    freeze_bn: bool = True
    """Keep the backbone's BatchNorm statistics (ImageNet's) while training; batch statistics of small pair batches
    do not carry over to evaluation."""
    train_blocks: int | None = None
    """Partial fine-tuning: train only the backbone's last this many stages (timm `blocks` or `stages`) and what
    follows them; the stem and earlier stages stay frozen. null: every layer."""
    fine_tune: bool = True
    """false: no gradient step. The embedding is the backbone's ImageNet features (pooled, or model.feature_level's
    map in cells; L2-normalised, no projection; whitened when model.wccn is set) and `train` only fits the WCCN and
    writes the checkpoint."""
    feature_level: int | None = Field(None, ge=0)
    """The embedding's input: null, the backbone's pooled final features; an index into timm's `feature_info` (0:
    the first, stride-2 map, ... the last), that intermediate feature map instead, average-pooled into
    model.feature_grid x model.feature_grid cells and concatenated (C x grid^2 features; the layers after it are
    not run)."""
    feature_grid: int = Field(1, ge=1)
    """With model.feature_level: the cells per side the feature map is pooled into (1: one global average); more
    cells keep where on the face each feature was seen."""
    wccn: float | None = None
    """Within-class covariance normalisation, fit in closed form after training (and for the untrained baseline) on
    the training people's embeddings: centred, multiplied by the inverse square root of the within-person
    covariance shrunk this far toward a multiple of the identity (0 < wccn <= 1), L2-normalised again. Stored in
    the checkpoint as one linear layer. null: off."""
    wccn_views: int = Field(0, ge=0)
    """WCCN: augmented views of each training image (the training augmentation: flip, shift, scale,
    brightness/contrast, data.rotate) added to the fit as further samples of its person, so that the whitening
    also discounts those changes; 0: the images alone (and their mirrors with train.tta)."""

    _known_backbone = field_validator("backbone")(classmethod(lambda cls, v: v if v == FACE_NET else check_backbone(v)))

    @model_validator(mode="after")
    def _face_net_is_frozen(self):
        if self.backbone == FACE_NET:
            bad = [f for f, on in (("model.fine_tune=true", self.fine_tune), ("model.feature_level",
                   self.feature_level is not None), ("model.train_blocks", self.train_blocks is not None)) if on]
            if bad:
                raise ValueError(f"model.backbone {FACE_NET} is dlib's frozen network (no gradient, no intermediate "
                                 f"maps): drop {', '.join(bad)}")
        return self

    @field_validator("wccn")
    @classmethod
    def _shrinkage(cls, v):
        if v is not None and not 0 < v <= 1:
            raise ValueError(f"wccn is a shrinkage in (0, 1], got {v}")
        return v


CLASS_LOSSES = ("arcface", "cosface", "subcenter-arcface")
"""Losses with a learned weight per training person (pytorch-metric-learning); the rest compare embeddings only."""


class SiameseLossConfig(Strict):
    loss: Literal["contrastive", "triplet", "multi-similarity", "arcface", "cosface", "subcenter-arcface"] = (
        "contrastive")
    """contrastive: pairs from the pair sampler; triplet: triplets from the triplet sampler, or mined in-batch
    (miner); multi-similarity (with its miner), arcface, cosface, subcenter-arcface: pytorch-metric-learning's
    losses on batches of m_per_class images per training person."""
    class_margin: float | None = None
    """arcface / subcenter-arcface: angular margin in degrees; cosface: cosine margin. null: pytorch-metric-learning's
    default (28.6 degrees; 0.35)."""
    scale: float = 64.0
    """arcface, cosface, subcenter-arcface: the logit scale s."""
    class_lr_mult: float = 10.0
    """arcface, cosface, subcenter-arcface: learning rate of the per-person weights, as a multiple of train.lr."""
    form: Literal["original", "hadsell"] = "hadsell"
    """Contrastive form: original y*d^2 + (1-y)*max(0, m^2 - d^2); hadsell y*d^2 + (1-y)*max(0, m - d)^2."""
    margin: float = 1.0
    """Margin m of the contrastive or triplet loss."""
    distance: Literal["euclidean", "cosine"] = "euclidean"
    """Triplet loss distance (contrastive always uses Euclidean). Verification uses the same distance."""
    miner: Literal["none", "batch-hard", "semi-hard"] = "none"
    """Triplet only. none: one sampled triplet per anchor; batch-hard / semi-hard: pytorch-metric-learning miners on
    M-per-person batches."""
    m_per_class: int = 4
    """Mined batches: images per person in a batch (pytorch-metric-learning MPerClassSampler)."""

    @field_validator("margin")
    @classmethod
    def _positive_margin(cls, v):
        if v <= 0:
            raise ValueError(f"margin must be > 0, got {v}")
        return v


class SiameseSearchConfig(Strict):
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
    """Backbone lr multipliers tried (train.backbone_lr_mult), e.g. [1.0, 0.1]. Empty: the train section's (or
    recipe's) for every trial; one value: that value."""
    loss: list[str] = Field(default_factory=lambda: ["contrastive:original", "contrastive:hadsell", "triplet:none",
                                                     "triplet:semi-hard"])
    """Losses tried, as loss:form (contrastive) or loss:miner (triplet)."""
    splits: list[int] = Field(default_factory=list)
    """Person-split seeds (data.seed) every trial is trained on; the objective is their mean. Empty: data.seed only.
    A few test/val people make one split's numbers noisy."""
    storage: str | None = None
    """Optuna storage URL; null: sqlite in the search folder (an interrupted search resumes from it)."""
    retrain: bool = False
    """Retrain the best parameters with their full epochs after the search (else keep the best trial's run)."""


class SiameseRunConfig(Strict):
    lab: ClassVar[str] = LAB
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
        return with_train_defaults(raw, recipe="siamese-step", monitor="val_auc")
