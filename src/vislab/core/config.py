"""Experiment configuration: pydantic models, YAML files and `a.b=value` overrides.

One YAML file per experiment; each lab ships its own (`-c cifar/fast`) and a file may inherit another's
values with `_base_: other` and state only what changes. Any field can be overridden from the command
line as a dotted key, nanoGPT-style: `vislab fashion train train.epochs=3 data.image_size=[96,72]`.
Values are parsed as YAML, so lists, numbers, booleans and `null` work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vislab.core.errors import ConfigError  # noqa: F401  (re-exported)
from vislab.core.recipes import RECIPES, check_recipe


def check_split(v):
    """train/val/test fractions: each >= 0, train > 0, summing to 1."""
    if any(f < 0 for f in v) or abs(sum(v) - 1.0) > 1e-6 or v[0] <= 0:
        raise ValueError(f"split fractions must be >= 0, train > 0, and sum to 1, got {v}")
    return v


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, use_attribute_docstrings=True)


def with_train_defaults(raw, **defaults):
    """A lab config's `train` section with the lab's defaults for the keys it leaves out."""
    if isinstance(raw, dict):
        raw = {**raw, "train": {**defaults, **dict(raw.get("train") or {})}}
    return raw


class TrainConfig(Strict):
    recipe: str = "tuned"
    """Preset for every field below that is left as null (`vislab.core.recipes`; each lab registers its own and
    picks its default: the docs' lab pages list them)."""
    optimizer: Literal["adam", "adamw", "sgd"] | None = None
    """adam | adamw | sgd. null: from the recipe."""
    scheduler: Literal["constant", "onecycle", "cosine", "exponential", "step"] | None = None
    """constant | onecycle (per step, 25% warm-up) | cosine (per step) | exponential (x gamma per epoch) | step (x
    gamma every step_size epochs). null: from the recipe."""
    weight_decay: float | None = None
    """null: from the recipe (baseline 0, tuned 1e-4)."""
    backbone_lr_mult: float | None = None
    """Backbone (pretrained part) lr = lr x this. null: from the recipe."""
    grad_clip: float | None = None
    """Max global gradient norm. null: from the recipe; 0 disables."""
    momentum: float | None = None
    """SGD momentum. null: from the recipe."""
    nesterov: bool | None = None
    """SGD Nesterov momentum. null: from the recipe."""
    gamma: float | None = None
    """lr factor of the exponential (per epoch) and step schedulers. null: from the recipe."""
    step_size: int | None = None
    """Epochs between lr drops of the step scheduler. null: from the recipe (10)."""
    lr: float | None = Field(None, gt=0)
    """Learning rate of the heads (peak lr for OneCycle); backbone gets lr * backbone_lr_mult. null: from the recipe."""
    epochs: int | None = Field(None, ge=1)
    """Passes over the training split (validation + checkpoints after each). null: from the recipe."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimizer steps in total (a fixed budget for comparisons)."""
    stop_epoch: int | None = Field(None, ge=1)
    """Stop after this epoch while the lr schedule still spans `epochs` (e.g. a refit stops at its source run's best
    epoch of the same schedule). null: run every epoch."""
    batch_size: int | None = Field(None, ge=1)
    """Training batch size per device. null: from the recipe (64; CIFAR recipes 128-256)."""
    eval_batch_size: int = Field(256, ge=1)
    """Batch size for validation, test and feature extraction."""
    label_smoothing: float | None = None
    """Cross-entropy label smoothing, all tasks. null: from the recipe."""
    tta: bool | None = None
    """Test-time augmentation in the final evaluation: average the logits of the image and its mirror. null: from the
    recipe (fast: true)."""
    task_weights: dict[str, float] = Field(default_factory=dict)
    """Loss weight per task (default 1.0)."""
    class_balance: float = Field(0.0, ge=0, le=1)
    """Class-balanced cross-entropy (fashion and CIFAR labs): each class's loss weight is (1 / its training count) to
    this power, scaled to a mean of 1 over the training images. 0: plain cross-entropy; 1: every class weighs the
    same in total; 0.5: in between. For macro F1 on rare classes."""
    task_weighting: Literal["fixed", "uncertainty"] = "fixed"
    """fixed: each task's loss counts `task_weights` times (default 1). uncertainty: the weights are learned with the
    network (Kendall et al., 2018: one log-variance s per task, loss sum exp(-s) * L + s / 2; the history logs each
    task's weight exp(-s) per epoch); refused with `task_weights`."""
    mixup: float = Field(0.0, ge=0)
    """Mixup (classification labs): blend each training image with another of its batch, lam ~ Beta(mixup,
    mixup), the loss blended likewise (`vislab.core.mixing`); e.g. 0.2. 0: off."""
    cutmix: float = Field(0.0, ge=0)
    """CutMix (classification labs): paste a box of another image of the batch, of area 1 - lam with lam ~
    Beta(cutmix, cutmix), the loss blended by the area; e.g. 1.0. With mixup on too, each mixed batch is one or the
    other with equal chance. 0: off."""
    mix_prob: float = Field(1.0, gt=0, le=1)
    """Probability that a training batch is mixed (mixup / cutmix)."""
    resize_start: float | None = Field(None, gt=0.1, lt=1)
    """Progressive resizing: the first epoch trains on images scaled by this factor (e.g. 0.75 of the image size),
    growing linearly to full size at `resize_full_at` of the epochs; validation, test and the checkpoints always see
    full size. Small early epochs are cheap (time ~ pixels). null: off."""
    resize_full_at: float = Field(0.5, gt=0, le=1)
    """Fraction of the epochs after which progressive resizing trains at full size."""
    ema_decay: float | None = Field(None, gt=0, lt=1)
    """Exponential moving average of the weights (timm's ModelEmaV3, after every optimizer step), e.g. 0.999:
    validation, the best/last checkpoints and the final evaluation use the averaged weights. null: off."""
    ema_warmup: bool = True
    """Ramp the EMA decay up from 0 over the first steps (decay_t = 1 - (1 + t)^-2/3, capped at ema_decay), so a
    short run is not dominated by its random start."""
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
    """NHWC memory format for 4-D image inputs: faster convolutions on CPU and on GPU tensor cores (docs:
    benchmarks)."""
    num_workers: int = 0
    """DataLoader workers; batches are slices of an in-memory uint8 tensor, so 0 is usually fastest."""
    monitor: str = "val_loss"
    """History column that picks the best checkpoint (e.g. val_loss, val_accuracy, val_auc)."""
    monitor_mode: Literal["min", "max"] | None = None
    """min or max of `monitor`. null: min for a column with 'loss' in its name, else max."""

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, v, info):
        """A recipe of the lab being configured (`load_config` passes it as the validation context), else any."""
        return check_recipe(v, (info.context or {}).get("lab"))

    @model_validator(mode="after")
    def _one_kind_of_task_weights(self):
        if self.task_weighting == "uncertainty" and any(v != 1.0 for v in self.task_weights.values()):
            raise ValueError("train.task_weighting=uncertainty learns the task weights: leave train.task_weights empty")
        return self

    def resolved(self) -> dict[str, Any]:
        """The recipe with explicit fields applied on top."""
        out = dict(RECIPES[self.recipe])
        for k in out:
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out

    def filled(self) -> TrainConfig:
        """A copy with every null field taken from the recipe (what the engine runs with)."""
        return self.model_copy(update=self.resolved())


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


CONFIG_DIRS: dict[str, Path] = {}
"""lab -> folder of its packaged YAML configs (filled by each lab's config module)."""


def register_config_dir(lab: str, folder: str | Path) -> None:
    """Make `-c LAB/NAME` find `folder/NAME.yaml`."""
    CONFIG_DIRS[lab] = Path(folder)


def packaged_configs(lab: str | None = None) -> list[str]:
    """Names (`lab/name`) of the configs that ship with vislab, all or one lab's."""
    return sorted(f"{name}/{f.stem}" for name, d in CONFIG_DIRS.items() if lab in (None, name)
                  for f in d.glob("*.yaml"))


def resolve_config(ref: str | Path, relative_to: Path | None = None) -> Path:
    """A config file from a path (absolute, relative to the working folder or to `relative_to`) or a
    packaged name (`cifar/fast`, `cifar/fast.yaml`)."""
    ref = str(ref)
    candidates = [Path(ref)] if relative_to is None else [relative_to / ref, relative_to / f"{ref}.yaml"]
    lab, _, name = ref.partition("/")
    if lab in CONFIG_DIRS and name:
        candidates.append(CONFIG_DIRS[lab] / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"))
    for c in candidates:
        if c.is_file():
            return c
    if lab in CONFIG_DIRS:
        raise FileNotFoundError(f"config {ref!r} does not exist: no such file, and the {lab} lab ships "
                                f"{', '.join(packaged_configs(lab))}")
    raise FileNotFoundError(f"config file {ref} does not exist (packaged configs are named LAB/NAME: "
                            f"{', '.join(packaged_configs())})")


def read_config(ref: str | Path, relative_to: Path | None = None, _seen: tuple[Path, ...] = ()) -> dict:
    """The mapping of a YAML config with its `_base_:` chain merged in: `_base_` names another config
    (a packaged name, a path, or a file beside this one; a list merges left to right) whose values this
    file's own override."""
    path = resolve_config(ref, relative_to).resolve()
    if path in _seen:
        raise ValueError(f"config {path}: _base_ cycle through {' -> '.join(map(str, _seen))}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"config file {path} must hold a mapping at top level")
    bases = raw.pop("_base_", None) or []
    merged: dict = {}
    for base in [bases] if isinstance(bases, str) else bases:
        try:
            parent = read_config(base, path.parent, (*_seen, path))
        except FileNotFoundError:
            parent = read_config(base, None, (*_seen, path))
        merged = deep_merge(merged, parent)
    return deep_merge(merged, raw)


def explain(error, model: type[BaseModel], flags: dict[str, str] | None = None) -> str:
    """One line per problem of a pydantic ValidationError: the dotted field (and its command-line flag, from
    `flags` = {field: flag}), what is wrong, what was given, and for an unknown field the nearest known
    names ("did you mean train.epochs?")."""
    import difflib
    lines = []
    for e in error.errors():
        loc = [str(x) for x in e["loc"]]
        where = ".".join(loc) or "config"
        if flags and where in flags:
            where = f"{where} ({flags[where]})"
        if e["type"] == "extra_forbidden":
            section = model
            for part in loc[:-1]:
                field = getattr(section, "model_fields", {}).get(part)
                ann = field.annotation if field else None
                section = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
                if section is None:
                    break
            known = list(getattr(section, "model_fields", {}))
            near = difflib.get_close_matches(loc[-1], known, n=3, cutoff=0.6)
            prefix = ".".join(loc[:-1]) + "." if len(loc) > 1 else ""
            hint = f"; did you mean {' or '.join(prefix + n for n in near)}?" if near else (
                f"; fields here: {', '.join(known)}" if known else "")
            lines.append(f"{where}: unknown field{hint}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            given = repr(e.get("input"))
            got = f" (got {given})" if "input" in e and not isinstance(e["input"], dict) and given not in msg else ""
            lines.append(f"{where}: {msg}{got}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | dict | None = None,
                model: type[BaseModel] | None = None, flags: dict[str, str] | None = None) -> Any:
    """Defaults <- YAML file (a path or a packaged `lab/name`, with its `_base_` chain) <- overrides.
    Unknown keys are errors (typos do not pass silently)."""
    if model is None:
        raise TypeError("load_config needs model=<the lab's run config class>")
    raw = read_config(path) if path is not None else {}
    ov = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    from pydantic import ValidationError
    try:
        return model.model_validate(deep_merge(raw, ov), context={"lab": getattr(model, "lab", None)})
    except ValidationError as e:
        raise ConfigError(f"invalid configuration: {explain(e, model, flags)}") from None


def markdown_reference(model: type[BaseModel], prefix: str = "") -> str:
    """A config reference table: every field, its default and its docstring."""
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
