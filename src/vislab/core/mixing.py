"""Mixup and CutMix of training batches (`train.mixup`, `train.cutmix`), for classification objectives.

One mixing factor per batch, as timm's `Mixup` in its "batch" mode: each image is paired with the image at the
mirrored position of the (shuffled) batch, `x.flip(0)`. Mixup blends the two images, `lam * a + (1 - lam) * b`
with lam ~ Beta(mixup, mixup) (Zhang et al., 2018); CutMix pastes a box of `b` into `a` and sets lam to the
share of `a` left (Yun et al., 2019; the box and the correction are timm's `cutmix_bbox_and_lam`). With both on,
each mixed batch is one or the other with equal chance; `prob` is the chance that a batch is mixed at all.

The loss of a mixed batch is `lam * loss(out, y) + (1 - lam) * loss(out, y.flip(0))`, for every task at once: an
objective whose loss is a mean over samples of a loss per label (cross-entropy, with label smoothing, class
weights and per-task weights) takes that form exactly. timm's `Mixup` itself mixes one-hot targets of a single
task, so a multi-task objective combines the two losses instead.

Random draws come from numpy's global generator, which the engine seeds at the start of every epoch (so a
resumed run mixes as the uninterrupted one).
"""
from __future__ import annotations

import numpy as np
import torch


class BatchMixing:
    """`(x, lam)` for a batch: the mixed images and the share of the original images' labels (1.0: not mixed)."""

    def __init__(self, mixup: float = 0.0, cutmix: float = 0.0, prob: float = 1.0):
        if mixup < 0 or cutmix < 0:
            raise ValueError(f"mixup and cutmix are Beta parameters >= 0 (0: off), got {mixup} and {cutmix}")
        if not 0.0 < prob <= 1.0:
            raise ValueError(f"the mixing probability must lie in (0, 1], got {prob}")
        self.mixup, self.cutmix, self.prob = float(mixup), float(cutmix), float(prob)

    @property
    def on(self) -> bool:
        return bool(self.mixup or self.cutmix)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, float]:
        if not self.on or np.random.rand() >= self.prob or len(x) < 2:
            return x, 1.0
        use_cutmix = self.cutmix > 0 and (self.mixup == 0 or np.random.rand() < 0.5)
        if not use_cutmix:
            lam = float(np.random.beta(self.mixup, self.mixup))
            return x * lam + x.flip(0) * (1.0 - lam), lam
        if x.ndim != 4:
            raise ValueError(f"cutmix needs image batches (N, C, H, W), got shape {tuple(x.shape)}")
        from timm.data.mixup import cutmix_bbox_and_lam
        (yl, yh, xl, xh), lam = cutmix_bbox_and_lam(x.shape, float(np.random.beta(self.cutmix, self.cutmix)))
        x = x.clone()
        x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
        return x, float(lam)


def mixed_loss(objective, out, y: torch.Tensor, lam: float):
    """The objective's `(total, parts)` of a batch mixed with its mirror at `lam` (see the module docstring)."""
    if lam >= 1.0:
        return objective(out, y)
    total_a, parts_a = objective(out, y)
    total_b, parts_b = objective(out, y.flip(0))
    return (lam * total_a + (1.0 - lam) * total_b,
            {k: lam * parts_a[k] + (1.0 - lam) * parts_b[k] for k in parts_a})
