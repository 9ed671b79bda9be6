"""Settings of the tagging service; `vislab serve` flags map onto these fields one to one."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from vislab.core.config import Strict


class ServeSettings(Strict):
    max_body_mb: float = Field(16.0, gt=0)
    """Largest request body (MB), counted while it streams in: a larger one is refused with 413."""
    max_batch: int = Field(32, ge=1)
    """Most images in one POST /v1/tag/batch (413 beyond)."""
    max_pixels: int = Field(40_000_000, ge=1)
    """Largest image (width x height) decoded; a larger one (e.g. a decompression bomb) is refused with 422."""
    micro_batch: bool = True
    """Collect concurrent requests for up to `batch_wait_ms` and run them as one batch."""
    batch_wait_ms: float = Field(0.0, ge=0)
    """How long the first request of a micro-batch waits for others. 0: no wait; a batch is whatever queued
    while the previous one ran (under load that is every waiting request, alone it is one)."""
    batch_size: int = Field(32, ge=1)
    """Most images the model runs at once."""
    threads: int | None = Field(None, ge=1)
    """Torch threads for inference (None: one per CPU core)."""
    backend: Literal["torch", "onnx"] | None = None
    """Inference backend (None: onnx for an .onnx model file, else torch)."""
    precision: Literal["32", "bf16"] = "32"
    """Inference precision: bf16 is ~2x faster on CPUs with native bfloat16 (AVX512-BF16, AMX)."""
    tta: bool | None = None
    """Flip test-time augmentation: average the photo and its mirror (two forward passes per image; what
    `evaluate` scores for a run trained with train.tta). None: the model's own, what its review thresholds were
    chosen with. An index must have been built the same way."""
    top_k: int = Field(3, ge=1)
    """Labels returned per attribute."""
    thresholds: dict[str, float] = Field(default_factory=dict)
    """Review thresholds replacing the checkpoint's, per attribute."""
    index: str | None = None
    """A catalog index (`vislab fashion index`) built with this model: enables POST /v1/similar and the page's
    similar-products strip."""
