"""CIFAR model specs (`mlp`, `cnn`, `blocks:ABCDEABC`, `transfer:vgg16`, ...), parsed and checked without
torch: the config validates `model.name` with `check_spec` before any data or model is touched."""
from __future__ import annotations

import difflib
import re

BLOCK_DOCS = {"A": "conv-BN-ReLU", "B": "A + spatial attention", "C": "A + squeeze-excitation",
              "D": "residual", "E": "grouped bottleneck"}
BLOCK_WIDTHS = (128, 128, 256, 256, 256, 512, 512, 512)

CIFAR_MODELS: dict[str, str] = {
    "mlp": "MLP 3072-256-128-10",
    "cnn": "3 stages of two 3x3 convs (32-64, 128-128, 256-256)",
    "cnn-bn": "cnn + BatchNorm and Dropout(0.2) after each pool",
    "blocks:<8 letters A-E>": "stem + 8 blocks: " + ", ".join(f"{k} {v}" for k, v in BLOCK_DOCS.items())
                              + " (D: separable=True or suffix -sep)",
    "transfer:vgg16": "ImageNet VGG16 features (first 19 layers frozen) + 256-128 head",
    "transfer:efficientnet_lite0": "ImageNet EfficientNet-Lite0 at 64x64 (stem + 2 stages frozen) + linear head",
    "fastnet": "airbench94-style fast net (2x2 whitening stem, widths 64-256-256)",
}
"""spec -> description (`vislab cifar models` prints them with their parameter counts)."""

_BLOCKS_RE = re.compile(r"blocks:([A-Za-z]*)(-sep)?")


def _bad_spec(msg: str) -> ValueError:
    return ValueError(f"{msg}. Valid models: {', '.join(CIFAR_MODELS)}; block letters: "
                      f"{', '.join(f'{k} ({v})' for k, v in BLOCK_DOCS.items())}")


def parse_blocks(spec: str) -> tuple[str, bool]:
    """'blocks:ABCDEABC' -> ('ABCDEABC', False); 'blocks:DDDDDDDD-sep' -> ('DDDDDDDD', True)."""
    m = _BLOCKS_RE.fullmatch(spec.strip())
    if not m:
        raise _bad_spec(f"bad block model spec {spec!r}")
    letters = m.group(1).upper()
    bad = sorted({c for c in letters if c not in BLOCK_DOCS})
    if bad:
        raise _bad_spec(f"unknown block letter(s) {', '.join(map(repr, bad))} in {spec!r}; valid letters are A-E")
    if len(letters) != len(BLOCK_WIDTHS):
        raise _bad_spec(f"{spec!r} has {len(letters)} block letters, needs {len(BLOCK_WIDTHS)}")
    return letters, bool(m.group(2))


def check_spec(spec: str) -> str:
    """The stripped spec if it names a CIFAR model, else a ValueError with the valid ones (and the nearest)."""
    name = spec.strip()
    if name.startswith("blocks:"):
        parse_blocks(name)
        return name
    fixed = [k for k in CIFAR_MODELS if not k.startswith("blocks:")]
    if name in fixed:
        return name
    near = difflib.get_close_matches(name, fixed, n=1, cutoff=0.6)
    raise _bad_spec(f"unknown CIFAR model {spec!r}" + (f" (did you mean {near[0]}?)" if near else ""))
