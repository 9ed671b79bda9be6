"""`BatchTransform`: uint8 batch -> normalised float batch on the training device, with vectorised
per-sample augmentation (flip, scale, shift, brightness/contrast, blur) and progressive resizing in training mode;
`resize_scale` is the progressive-resizing schedule."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def resize_scale(epoch: int, epochs: int, start: float | None, full_at: float = 0.5) -> float:
    """The image-size factor of 1-based `epoch`: `start` at epoch 1, growing linearly to 1.0 at epoch
    round(full_at * epochs) + 1 and staying there. start None: always 1.0."""
    if start is None:
        return 1.0
    ramp = max(1, round(full_at * epochs))
    return min(1.0, start + (1.0 - start) * (epoch - 1) / ramp)


def scaled_size(size: tuple[int, int], scale: float, multiple: int = 8) -> tuple[int, int]:
    """(h, w) times `scale`, rounded to a multiple of `multiple` (at least one multiple)."""
    return tuple(max(multiple, int(round(v * scale / multiple)) * multiple) for v in size)


class BatchTransform(torch.nn.Module):
    """uint8 batch -> normalised float batch, with per-sample augmentation when training.

    Runs on whatever device the batch is on (GPU in training), vectorised over the batch:
    random horizontal flip, small scale/shift (edges replicated: product photos sit on white),
    brightness/contrast jitter, a small rotation when `max_rotate` (degrees) is set, and a Gaussian blur of a
    random standard deviation in [0, `max_blur`] pixels when that is set (defocus, motion). No hue or saturation
    change: colour is a label.
    `scale` < 1 (progressive resizing, set by the engine each epoch) shrinks training batches first (antialiased
    bilinear, sides rounded to a multiple of 8); evaluation always sees the full size.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], augment: bool = False,
                 flip: bool = True, max_shift: float = 0.06, max_scale: float = 0.08, jitter: float = 0.1,
                 channels_last: bool = True, max_rotate: float = 0.0, max_blur: float = 0.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.augment, self.flip = augment, flip
        self.max_shift, self.max_scale, self.jitter, self.max_rotate = max_shift, max_scale, jitter, max_rotate
        self.max_blur = max_blur
        self.channels_last = channels_last
        self.scale = 1.0

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
        if self.training and self.scale < 1.0 and x.ndim == 4:
            x = torch.nn.functional.interpolate(x, size=scaled_size(tuple(x.shape[-2:]), self.scale),
                                                mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
        if self.augment and self.training:
            x = self._augment(x, generator)
        x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.ndim == 4 else x

    def _augment(self, x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
        n = x.shape[0]

        def u(lo, hi):
            return torch.rand(n, generator=g).mul_(hi - lo).add_(lo).to(x.device)

        s = u(1 - self.max_scale, 1 + self.max_scale)
        sx = s * (torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0).to(x.device) if self.flip else 1.0)
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0], theta[:, 1, 1] = sx, s
        if self.max_rotate:  # drawn only when on, so runs without rotation keep their random stream
            a = u(-self.max_rotate, self.max_rotate).mul_(math.pi / 180)
            cos, sin = a.cos(), a.sin()
            theta[:, 0, 0], theta[:, 0, 1] = sx * cos, -s * sin
            theta[:, 1, 0], theta[:, 1, 1] = sx * sin, s * cos
        theta[:, 0, 2], theta[:, 1, 2] = u(-self.max_shift, self.max_shift) * 2, u(-self.max_shift, self.max_shift) * 2
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if self.jitter:
            b = u(1 - self.jitter, 1 + self.jitter).view(n, 1, 1, 1)
            c = u(1 - self.jitter, 1 + self.jitter).view(n, 1, 1, 1)
            m = x.mean(dim=(2, 3), keepdim=True)  # per channel: a uniform colour keeps its channel ratios
            x = ((x - m) * c + m) * b
        if self.max_blur:  # drawn only when on, like the rotation
            x = gaussian_blur(x, u(0, self.max_blur))
        return x.clamp_(0, 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image of the batch `x` (N, C, H, W) blurred by a Gaussian of its own standard deviation `sigma` (N,)
    in pixels (0: unchanged), separably, edges replicated. torchvision's gaussian_blur takes one sigma per call;
    this is one grouped convolution for the whole batch."""
    n, c, h, w = x.shape
    r = max(1, math.ceil(3 * float(sigma.max())))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    s = sigma.to(x.dtype).clamp(min=1e-3).view(n, 1)
    k = torch.exp(-0.5 * (t / s) ** 2)
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, 2r+1): one kernel per image and channel
    y = torch.nn.functional.pad(x.reshape(1, n * c, h, w), (r, r, r, r), mode="replicate")
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)
    y = torch.nn.functional.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)
    return y.view(n, c, h, w)
