"""CIFAR-10 lab configuration and recipes (the original experiments' plus `fast`). Packaged YAMLs:
`-c cifar/default`, `-c cifar/fast`."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from vislab.core.config import Strict, TrainConfig, register_config_dir
from vislab.core.recipes import register_recipe
from vislab.labs.cifar.specs import check_spec

LAB = "cifar"
register_config_dir(LAB, Path(__file__).parent / "configs")
register_recipe("mlp-sgd", LAB, "plain SGD (wd 5e-4) at lr 1e-1, 1e-2, 1e-3, 1e-4 for 10 epochs each, "
                "one after the other",
                optimizer="sgd", momentum=0.0, nesterov=False, scheduler="step", step_size=10, gamma=0.1, lr=0.1,
                epochs=40, weight_decay=5e-4, batch_size=128)
register_recipe("cnn-adam", LAB, "plain CNNs: Adam 1e-3, constant, 10 epochs", epochs=10, batch_size=128)
register_recipe("blocks-exp", LAB, "block CNNs: Adam 1e-3 with ExponentialLR (x0.9 per epoch)",
                scheduler="exponential", gamma=0.9, epochs=10, batch_size=128)
register_recipe("transfer-sgd", LAB, "transfer learning: SGD momentum 0.9, wd 1e-3, "
                "unfrozen backbone layers at lr x0.1",
                optimizer="sgd", momentum=0.9, nesterov=False, lr=1e-2, epochs=10, weight_decay=1e-3,
                backbone_lr_mult=0.1, batch_size=128)
register_recipe("fast", LAB, "least time to the best accuracy: one-cycle SGD-Nesterov, label smoothing 0.2, batch 256, "
                "flip TTA (add train.precision=bf16-mixed on a GPU)",
                optimizer="sgd", momentum=0.9, nesterov=True, scheduler="onecycle", lr=0.2, epochs=16,
                weight_decay=5e-4, batch_size=256, label_smoothing=0.2, tta=True)

CIFAR_DEFAULT_RECIPES = {"mlp": "mlp-sgd", "cnn": "cnn-adam", "cnn-bn": "cnn-adam", "blocks": "blocks-exp",
                         "transfer": "transfer-sgd", "fastnet": "fast"}


def default_cifar_recipe(model: str) -> str:
    """The original experiment's recipe of a CIFAR model spec (blocks:AAAAAAAA -> blocks-exp)."""
    return CIFAR_DEFAULT_RECIPES.get(model.split(":")[0], "cnn-adam")


class CifarDataConfig(Strict):
    source: Literal["folder", "pickles", "torchvision"] = "folder"
    """folder: root/train_dir/<class>/*.jpg and root/test_dir/... (ImageFolder layout); pickles: the original
    cifar-10-batches-py; torchvision: CIFAR10(root, download=...)."""
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
    """none | a: ColorJitter 0.25/0.25/0.25 + RandomAffine(10 deg, translate 0.1, scale 0.9-1.1) + flip | b:
    RandomCrop(32, pad 4) + flip."""
    limit_per_class: int | None = None
    """Use at most N training images per class (quick runs); test stays whole."""
    seed: int = 42
    """Seed of the validation split."""
    cache_dir: str | None = None
    """Decoded-image cache; default $VISLAB_CACHE or ~/.cache/vislab."""
    workers: int = 0
    """Processes that decode images (0 = one per CPU core)."""


class CifarModelConfig(Strict):
    name: str = "cnn"
    """mlp | cnn | cnn-bn | blocks:<8 letters A-E> | transfer:vgg16 | transfer:efficientnet_lite0 | fastnet (`vislab
    cifar models`)."""
    pretrained: bool = True
    """transfer:* models: ImageNet weights (vgg16 from torchvision's hub when online; lite0 offline)."""
    separable: bool = False
    """blocks: D blocks use a depthwise-separable 3x3 conv."""
    freeze: int | None = None
    """transfer:* models: leading layers/stages kept frozen (null: the model's default, vgg16 19 feature layers)."""
    input_size: int | None = None
    """transfer:efficientnet_lite0: side the 32x32 images are upsampled to inside the model (null: 64; larger is more
    accurate and slower)."""

    _known_spec = field_validator("name")(classmethod(lambda cls, v: check_spec(v)))


class CifarRunConfig(Strict):
    lab: ClassVar[str] = LAB
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
