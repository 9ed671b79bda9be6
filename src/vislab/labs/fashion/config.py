"""Fashion lab configuration and recipes: `FashionRunConfig` (data, model, train) and the baseline /
tuned recipes. Packaged YAMLs: `-c fashion/default` (the Kaggle data), `-c fashion/demo`."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from vislab.core.backbones import check_backbone
from vislab.core.config import Strict, TrainConfig, check_split, field_validator, register_config_dir
from vislab.core.config import load_config as _load_config
from vislab.core.recipes import register_recipe

LAB = "fashion"
register_config_dir(LAB, Path(__file__).parent / "configs")
register_recipe("baseline", LAB, "Adam, constant lr, no weight decay, no clipping, same lr everywhere")
register_recipe("tuned", LAB, "AdamW, backbone at lr x0.1, one-cycle, weight decay 1e-4, gradient clipping 1.0",
                optimizer="adamw", scheduler="onecycle", weight_decay=1e-4, backbone_lr_mult=0.1, grad_clip=1.0)

FASHION_TASKS = ["gender", "masterCategory", "subCategory", "baseColour", "season", "articleType"]


class FashionDataConfig(Strict):
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
    """Map the 46 raw baseColour values onto at most 20 standard colours (docs: labs/fashion.md colour table)."""
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
    limit: int | None = Field(None, ge=1)
    """Use only the first N rows of the CSV (after shuffling with `seed`): quick experiments."""
    synthetic_n: int = 3000
    """Number of synthetic products when root is None."""
    cache_dir: str | None = None
    """Decoded-image cache; default $VISLAB_CACHE or ~/.cache/vislab."""
    workers: int = 0
    """Processes that decode images (0 = one per CPU core)."""

    _split_sums_to_one = field_validator("split")(classmethod(lambda cls, v: check_split(v)))

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v):
        if min(v) < 16:
            raise ValueError(f"image_size (height, width) must be at least 16x16, got {v}")
        return v


class FashionModelConfig(Strict):
    backbone: str = "tf_efficientnet_lite0"
    """Any timm model name; see the docs (models) for the documented set."""
    pretrained: bool = True
    """ImageNet weights: offline package for tf_efficientnet_lite0/1/2, timm hub for others (--no-pretrained: random
    init)."""
    drop_rate: float = 0.2
    """Dropout before each head."""
    freeze_backbone: bool = False
    """Linear probe: backbone features computed once (cached), only the heads train."""
    train_blocks: int | None = Field(None, ge=0)
    """Partial fine-tuning: train only the backbone's last this many stages (timm `blocks` or `stages`; Lite0 has 7)
    and the layers after them; the stem and earlier stages stay frozen, BatchNorm statistics included, and need no
    backward pass. null: every layer."""

    _known_backbone = field_validator("backbone")(classmethod(lambda cls, v: check_backbone(v)))


class FashionReviewConfig(Strict):
    precision: float = Field(0.98, gt=0.0, le=1.0)
    """Precision the auto-accepted predictions of each attribute must reach on the validation split; training
    chooses each attribute's confidence threshold from it (`vislab fashion calibrate` chooses again)."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Fixed confidence thresholds per attribute, e.g. {season: 0.5}; they replace the chosen ones."""

    @field_validator("thresholds")
    @classmethod
    def _in_unit_range(cls, v):
        bad = {k: x for k, x in v.items() if not 0.0 <= x <= 1.0}
        if bad:
            raise ValueError(f"review.thresholds must lie in 0..1, got {bad}")
        return v


class FashionExplainConfig(Strict):
    layer: str = "auto"
    """Grad-CAM target layer: a module name (e.g. backbone.blocks.4), or auto: the deepest stage whose map is at
    least 5 pixels on its short side (Lite0 at 96x72: the last stride-16 stage)."""
    method: Literal["gradcam", "gradcam++"] = "gradcam"
    """How the gradients weigh the layer's channels."""
    report_images: int = Field(256, ge=0)
    """Scored images the report's deletion test runs on (0: no test)."""
    deletion_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of pixels the deletion test removes (the most salient, or as many at random)."""
    error_maps: int = Field(12, ge=0)
    """Error examples shown with their heat map in the report."""


class FashionDistillConfig(Strict):
    teachers: list[str] = Field(default_factory=list)
    """Knowledge distillation: run folders or checkpoints (a run folder means its best checkpoint) of fashion models
    trained on this data and split, at any image size or backbone. Their mean probabilities on each training image,
    computed once before training, become a second target. Empty: off."""
    weight: float = Field(0.5, gt=0.0, le=1.0)
    """Share of each task's loss that comes from the teachers (KL divergence); the rest is the labels' loss."""
    temperature: float = Field(2.0, gt=0.0)
    """Softmax temperature of teachers and student in the distillation term (1: plain probabilities)."""
    tta: bool = True
    """Teachers score each training image and its mirror (flip test-time augmentation)."""


class FashionKnnConfig(Strict):
    k: int = Field(0, ge=0)
    """Neighbour vote: after training, each prediction blends the heads' probabilities with the labels of the k
    most similar labelled images (cosine of the pooled backbone features, weights softmax(similarity /
    temperature)); the blend weight of each task is chosen on the validation split (0 where the vote does not
    help). The voting images' features and labels are stored in the checkpoint (2.6 KB per image with Lite0).
    0: off. `vislab fashion knn RUN` adds a vote to a trained run."""
    temperature: float = Field(0.05, gt=0.0)
    """Softmax temperature over the neighbours' cosine similarities (small: the nearest neighbours count most)."""
    bank: Literal["train", "train+val"] = "train+val"
    """Which labelled images vote in predictions. The weights (and the review thresholds) are always chosen on the
    validation split with the training images voting; train+val then adds the validation images."""


class FashionRefitConfig(Strict):
    source: str | None = None
    """Refit on the training + validation images: a run folder (or checkpoint) of this data, split and settings,
    trained on the training split alone. This run trains on both splits, stops at the source's best epoch of the
    same schedule and takes every choice that needs held-out images from the source: the neighbour vote's weights
    and the review thresholds. Its validation columns then score images it trained on, and commands that choose
    on the validation split refuse it. `vislab fashion refit RUN` sets it. null: off."""


def split_fields(data: FashionDataConfig) -> dict:
    """The data fields that decide the rows, labels and split; the image size, caches and workers do not."""
    return {k: v for k, v in data.model_dump(mode="json").items() if k not in ("image_size", "cache_dir", "workers")}


def split_differs(a: FashionDataConfig, b: FashionDataConfig) -> list[str]:
    """The split fields (`split_fields`) in which two data configs differ, sorted; empty: the same rows and split."""
    fa, fb = split_fields(a), split_fields(b)
    return sorted(k for k in fa.keys() | fb.keys() if fa.get(k) != fb.get(k))


class FashionRunConfig(Strict):
    lab: ClassVar[str] = LAB
    name: str = "fashion"
    """Run folder name (out_dir/name; -2, -3 ... appended when it already holds a run)."""
    out_dir: str = "runs"
    """Where run folders go."""
    data: FashionDataConfig = Field(default_factory=FashionDataConfig)
    model: FashionModelConfig = Field(default_factory=FashionModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    review: FashionReviewConfig = Field(default_factory=FashionReviewConfig)
    """Which predictions need a person's review (`vislab fashion tag`, `vislab serve`)."""
    explain: FashionExplainConfig = Field(default_factory=FashionExplainConfig)
    """Heat maps (`vislab fashion explain`, the report's error examples and deletion test)."""
    distill: FashionDistillConfig = Field(default_factory=FashionDistillConfig)
    """Knowledge distillation from your own trained models (e.g. an ensemble of runs) into this one."""
    knn: FashionKnnConfig = Field(default_factory=FashionKnnConfig)
    """The neighbour vote: the labels of the most similar labelled images blended into each prediction."""
    refit: FashionRefitConfig = Field(default_factory=FashionRefitConfig)
    """The final model on the training + validation images, with a source run's validation choices."""

    @model_validator(mode="after")
    def _weights_name_tasks(self):
        unknown = set(self.train.task_weights) - set(self.data.label_cols)
        if unknown:
            raise ValueError(f"train.task_weights names unknown tasks {sorted(unknown)}; "
                             f"tasks are {self.data.label_cols}")
        if self.train.cutmix and self.model.freeze_backbone:
            raise ValueError("train.cutmix pastes boxes of photos, and model.freeze_backbone trains the heads on "
                             "pooled features: use train.mixup, or train the backbone")
        if self.train.task_weighting == "uncertainty" and len(self.data.label_cols) < 2:
            raise ValueError("train.task_weighting=uncertainty learns weights between tasks: give two or more "
                             "data.label_cols")
        unknown = set(self.review.thresholds) - set(self.data.label_cols)
        if unknown:
            raise ValueError(f"review.thresholds names unknown tasks {sorted(unknown)}; "
                             f"tasks are {self.data.label_cols}")
        return self


def load_config(path=None, overrides: list[str] | dict | None = None) -> FashionRunConfig:
    """`vislab.core.config.load_config` for the fashion lab: defaults < YAML (a path or `fashion/NAME`) < overrides."""
    return _load_config(path, overrides, model=FashionRunConfig)
