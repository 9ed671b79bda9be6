"""Experiment configuration: pydantic models, YAML files and `a.b=value` overrides.

One YAML file per experiment (configs/*.yaml). Any field can be overridden from the command
line as a dotted key, nanoGPT-style: `vislab fashion train train.epochs=3 data.image_size=[96,72]`.
Values are parsed as YAML, so lists, numbers, booleans and `null` work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FASHION_TASKS = ["gender", "masterCategory", "subCategory", "baseColour", "season", "articleType"]


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

    @field_validator("split")
    @classmethod
    def _split_sums_to_one(cls, v):
        if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6 or v[0] <= 0:
            raise ValueError(f"split fractions must be >= 0, train > 0, and sum to 1, got {v}")
        return v

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


Recipe = Literal["baseline", "tuned"]

RECIPES: dict[str, dict[str, Any]] = {
    # Adam, constant learning rate, no weight decay, no clipping, same lr everywhere.
    "baseline": dict(optimizer="adam", scheduler="constant", weight_decay=0.0, backbone_lr_mult=1.0, grad_clip=None),
    # AdamW, lower lr for the pretrained backbone than for the new heads, OneCycle, clipping.
    "tuned": dict(optimizer="adamw", scheduler="onecycle", weight_decay=1e-4, backbone_lr_mult=0.1, grad_clip=1.0),
}


class TrainConfig(_Strict):
    recipe: Recipe = "tuned"
    """Preset for the five fields below that are left as null."""
    optimizer: Literal["adam", "adamw", "sgd"] | None = None
    """adam | adamw | sgd (Nesterov momentum 0.9). null: from the recipe."""
    scheduler: Literal["constant", "onecycle", "cosine"] | None = None
    """constant | onecycle (per step, 25% warm-up) | cosine. null: from the recipe."""
    weight_decay: float | None = None
    """null: from the recipe (baseline 0, tuned 1e-4)."""
    backbone_lr_mult: float | None = None
    """Backbone lr = lr x this. null: from the recipe (baseline 1.0, tuned 0.1)."""
    grad_clip: float | None = None
    """Max global gradient norm. null: from the recipe (baseline none, tuned 1.0); 0 disables."""
    lr: float = 1e-3
    """Learning rate of the heads (peak lr for OneCycle); backbone gets lr * backbone_lr_mult."""
    epochs: int = 5
    """Passes over the training split (validation + checkpoints after each)."""
    max_steps: int | None = None
    """Stop after this many optimizer steps in total (a fixed budget for comparisons)."""
    batch_size: int = 64
    """Training batch size per device."""
    eval_batch_size: int = 256
    """Batch size for validation, test and feature extraction."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing, all tasks."""
    task_weights: dict[str, float] = Field(default_factory=dict)
    """Loss weight per task (default 1.0)."""
    augment: bool = True
    """Flip, small shift and brightness/contrast jitter; never hue (colour is a label)."""
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

    def resolved(self) -> dict[str, Any]:
        """The recipe with explicit fields applied on top."""
        out = dict(RECIPES[self.recipe])
        for k in out:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out


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


def markdown_reference(model: type[BaseModel] = RunConfig, prefix: str = "") -> str:
    """The README's config table: every field, its default and its docstring."""
    rows = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows.append(markdown_reference(ann, f"{prefix}{name}."))
            continue
        default = f.default_factory() if f.default_factory else f.default
        rows.append(f"| `{prefix}{name}` | `{default!r}` | {(f.description or '').replace(chr(10), ' ')} |")
    body = "\n".join(rows)
    return body if prefix else "| field | default | meaning |\n|---|---|---|\n" + body


if __name__ == "__main__":
    print(markdown_reference())
