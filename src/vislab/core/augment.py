"""Batched on-device augmentation for 3-channel image batches (the CIFAR-10 lab).

``BatchAugment`` turns a uint8 batch ``(N, 3, H, W)`` into the normalised float batch the model sees.
In training mode it augments first, vectorised over the batch: every per-sample random parameter is
drawn on the CPU from the ``torch.Generator`` passed to ``forward`` (so a run is reproducible on any
device) and then moved to the batch's device. There are no per-image Python loops and no PIL.

Kinds (``AUGMENTATIONS``):

* ``"none"`` - no augmentation.
* ``"a"`` - ColorJitter(brightness=0.25, contrast=0.25, saturation=0.25) with torchvision semantics,
  applied in the FIXED order brightness -> contrast -> saturation (torchvision permutes the order per
  call), each step clamped to [0, 1]; then RandomAffine(degrees=10, translate=(0.1, 0.1),
  scale=(0.9, 1.1)) with the horizontal flip (p=0.5) folded into the same matrix: ONE ``affine_grid`` +
  bilinear ``grid_sample`` with zero fill (torchvision's default fill 0; torchvision's default
  interpolation is nearest, bilinear is used here). Translations are whole pixels, as in torchvision.
* ``"b"`` - RandomCrop(H x W, padding=4) with zero padding (= RandomCrop(32, padding=4) on CIFAR) +
  horizontal flip p=0.5: the batch is padded once and every sample's window is gathered with advanced
  indexing (exact integer shifts, no interpolation), on the raw (uint8) pixels.

Eval mode (``.eval()``) and kind ``"none"`` only convert and normalise: ``(x / 255 - mean) / std``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

AUGMENTATIONS = {
    "none": "no augmentation (convert to float and normalise only)",
    "a": "ColorJitter(brightness/contrast/saturation 0.25) + RandomAffine(10 deg, translate 0.1, scale 0.9-1.1) "
         "+ horizontal flip, zero fill",
    "b": "RandomCrop(32, padding=4, zero padding) + horizontal flip",
}

# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma)
_GRAY = (0.2989, 0.587, 0.114)

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "AUGMENTATIONS", "kinds", "channel_stats", "denormalize", "BatchAugment",
           "adjust_brightness", "adjust_contrast", "adjust_saturation", "affine_flip", "crop_flip"]


def kinds() -> list[str]:
    """The valid augmentation kinds."""
    return list(AUGMENTATIONS)


def _check_kind(kind: str) -> str:
    if kind not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {kind!r}; valid: {', '.join(AUGMENTATIONS)}")
    return kind


# ------------------------------------------------------------------------------------------ statistics
def channel_stats(images, chunk: int = 2048) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (population) std of a uint8 ``(N, C, H, W)`` batch, on the [0, 1] scale.

    Accumulated in float64 over chunks of ``chunk`` images (memory stays small for all of CIFAR-10).
    """
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
    if x.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) batch, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("no images")
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, x.shape[0], chunk):
        b = x[i:i + chunk].to("cpu", torch.float64)
        s += b.sum(dim=(0, 2, 3))
        s2 += b.square().sum(dim=(0, 2, 3))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mean = s / n
    var = (s2 / n - mean.square()).clamp_min(0)
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    return tuple(float(v) / scale for v in mean), tuple(float(v) / scale for v in var.sqrt())


def _stat(v, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.float32).to(like.device).reshape(-1, 1, 1)


def denormalize(x: torch.Tensor, mean=CIFAR_MEAN, std=CIFAR_STD) -> torch.Tensor:
    """Normalised float ``(N, 3, H, W)`` or ``(3, H, W)`` -> contiguous uint8 on the CPU (for plotting).

    ``mean``/``std``: sequences or tensors (e.g. ``BatchAugment.mean``), any shape with 3 values.
    """
    x = x.detach().float()
    y = (x * _stat(std, x) + _stat(mean, x)).mul_(255.0).round_().clamp_(0, 255)
    return y.to("cpu", torch.uint8).contiguous()


# ------------------------------------------------------------------------ colour (torchvision semantics)
def _per_sample(f, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(f, dtype=x.dtype).to(x.device).reshape(-1, 1, 1, 1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(dim=-3)
    return (_GRAY[0] * r + _GRAY[1] * g + _GRAY[2] * b).unsqueeze(-3)


def adjust_brightness(x: torch.Tensor, factor) -> torch.Tensor:
    """``clamp(x * f, 0, 1)`` with one factor per sample (``factor``: scalar or ``(N,)``)."""
    return (x * _per_sample(factor, x)).clamp_(0, 1)


def adjust_contrast(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend with the per-image mean of the grayscale image: ``clamp(f * x + (1 - f) * mean, 0, 1)``."""
    f = _per_sample(factor, x)
    m = _gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    return (f * x + (1 - f) * m).clamp_(0, 1)


def adjust_saturation(x: torch.Tensor, factor) -> torch.Tensor:
    """Blend with the per-pixel grayscale image: ``clamp(f * x + (1 - f) * gray, 0, 1)``."""
    f = _per_sample(factor, x)
    return (f * x + (1 - f) * _gray(x)).clamp_(0, 1)


# ------------------------------------------------------------------------------------------- geometry
def affine_flip(x: torch.Tensor, angle, tx, ty, scale, flip, mode: str = "bilinear") -> torch.Tensor:
    """Per-sample affine warp about the image centre, zero fill, in ONE ``grid_sample``.

    Forward map: flip horizontally (where ``flip``), rotate by ``angle`` degrees, scale by ``scale``,
    translate by ``(tx, ty)`` pixels; without the flip it equals torchvision's
    ``F.affine(x, angle, [tx, ty], scale, shear=0, interpolation=BILINEAR)`` (same angle sign, zero
    fill). All parameters are ``(N,)`` tensors (any device). Identity parameters reproduce the input.
    """
    n, _, h, w = x.shape
    dev = x.device
    a = torch.as_tensor(angle, dtype=torch.float32).to(dev) * (math.pi / 180.0)
    s = torch.as_tensor(scale, dtype=torch.float32).to(dev)
    f = 1.0 - 2.0 * torch.as_tensor(flip, dtype=torch.float32).to(dev)  # -1 where flipped
    t_x = torch.as_tensor(tx, dtype=torch.float32).to(dev)
    t_y = torch.as_tensor(ty, dtype=torch.float32).to(dev)
    cos, sin = torch.cos(a), torch.sin(a)
    # inverse of A = s * R * Flip with R = [[cos, -sin], [sin, cos]] in pixel coordinates (y down)
    i00, i01, i10, i11 = f * cos / s, f * sin / s, -sin / s, cos / s
    theta = torch.empty(n, 2, 3, device=dev, dtype=torch.float32)
    # normalised coordinates: p_n = D^-1 p with D = diag(W/2, H/2)
    theta[:, 0, 0], theta[:, 0, 1] = i00, i01 * (h / w)
    theta[:, 1, 0], theta[:, 1, 1] = i10 * (w / h), i11
    theta[:, 0, 2] = -(i00 * t_x + i01 * t_y) * (2.0 / w)
    theta[:, 1, 2] = -(i10 * t_x + i11 * t_y) * (2.0 / h)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def crop_flip(x: torch.Tensor, dy, dx, flip, padding: int = 4) -> torch.Tensor:
    """Zero-pad by ``padding`` and take each sample's ``H x W`` window at ``(dy, dx)`` in the padded
    image (``0 <= dy, dx <= 2 * padding``), mirrored horizontally where ``flip``. Exact integer
    shifts on any dtype; the result has the input's shape and dtype (channels_last strides)."""
    n, c, h, w = x.shape
    dev = x.device
    p = F.pad(x, (padding, padding, padding, padding))
    dy = torch.as_tensor(dy, dtype=torch.long).to(dev)
    dx = torch.as_tensor(dx, dtype=torch.long).to(dev)
    flip = torch.as_tensor(flip, dtype=torch.bool).to(dev)
    rows = dy[:, None] + torch.arange(h, device=dev)                                  # (N, H)
    cols_ = torch.arange(w, device=dev)
    cols = dx[:, None] + torch.where(flip[:, None], w - 1 - cols_, cols_)              # (N, W)
    out = p[torch.arange(n, device=dev)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2)


# --------------------------------------------------------------------------------------------- module
class BatchAugment(nn.Module):
    """uint8 ``(N, 3, H, W)`` -> float /255 -> augment (train mode, kind != "none") -> normalise ->
    channels_last. ``forward(x, generator=None)``; see the module docstring for the kinds."""

    BRIGHTNESS = CONTRAST = SATURATION = 0.25
    DEGREES, TRANSLATE, SCALE = 10.0, (0.1, 0.1), (0.9, 1.1)
    PADDING = 4

    def __init__(self, kind: str = "none", mean: Sequence[float] = CIFAR_MEAN, std: Sequence[float] = CIFAR_STD,
                 channels_last: bool = True):
        super().__init__()
        self.kind = _check_kind(kind)
        self.register_buffer("mean", torch.tensor(tuple(mean), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(tuple(std), dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.channels_last = channels_last

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, channels_last={self.channels_last}"

    # parameters ---------------------------------------------------------------------------------------
    def sample(self, n: int, h: int, w: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-sample random parameters (CPU tensors of length ``n``) for an ``h x w`` batch, drawn from
        ``generator`` in a fixed order. Empty dict for kind "none"."""
        g = generator

        def u(lo: float, hi: float) -> torch.Tensor:
            return torch.rand(n, generator=g, dtype=torch.float32) * (hi - lo) + lo

        if self.kind == "a":
            b, c, s = self.BRIGHTNESS, self.CONTRAST, self.SATURATION
            out = {"brightness": u(1 - b, 1 + b), "contrast": u(1 - c, 1 + c), "saturation": u(1 - s, 1 + s),
                   "angle": u(-self.DEGREES, self.DEGREES)}
            mx, my = self.TRANSLATE[0] * w, self.TRANSLATE[1] * h
            out["tx"], out["ty"] = u(-mx, mx).round(), u(-my, my).round()  # whole pixels, like torchvision
            out["scale"] = u(*self.SCALE)
            out["flip"] = torch.rand(n, generator=g) < 0.5
            return out
        if self.kind == "b":
            k = 2 * self.PADDING + 1
            return {"dy": torch.randint(0, k, (n,), generator=g), "dx": torch.randint(0, k, (n,), generator=g),
                    "flip": torch.rand(n, generator=g) < 0.5}
        return {}

    def apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment with given parameters. Kind "a": float [0, 1] input; kind "b": any dtype."""
        if self.kind == "a":
            x = adjust_brightness(x, params["brightness"])
            x = adjust_contrast(x, params["contrast"])
            x = adjust_saturation(x, params["saturation"])
            return affine_flip(x, params["angle"], params["tx"], params["ty"], params["scale"], params["flip"])
        if self.kind == "b":
            return crop_flip(x, params["dy"], params["dx"], params["flip"], self.PADDING)
        return x

    # forward --------------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected an (N, C, H, W) batch, got shape {tuple(x.shape)}")
        augment = self.training and self.kind != "none" and x.shape[0] > 0
        params = self.sample(x.shape[0], x.shape[2], x.shape[3], generator) if augment else {}
        if augment and self.kind == "b":  # integer crop on the raw pixels (4x less memory traffic for uint8)
            x = self.apply(x, params)
        x = x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        if augment and self.kind == "a":
            x = self.apply(x, params)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
