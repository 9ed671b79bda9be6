"""Data builders shared by test modules (importable as `helpers`: pytest puts tests/ on the path)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def tiny_overrides(root: Path, out: Path, **extra) -> list[str]:
    """A fashion config that trains in seconds: timm's test_efficientnet, 32x24 images."""
    ov = {"data.root": str(root), "data.image_size": "[32,24]", "data.min_samples": 5,
          "model.backbone": "test_efficientnet", "model.pretrained": "false",
          "train.epochs": 2, "train.batch_size": 32, "train.lr": 0.01, "out_dir": str(out)}
    ov.update(extra)
    return [f"{k}={v}" for k, v in ov.items()]


def draw_shape(kind: int, rng) -> np.ndarray:
    """32x32 image of class `kind`: red square, green disc or blue stripes on noise."""
    img = rng.integers(0, 80, (32, 32, 3)).astype(np.uint8)
    yy, xx = np.mgrid[:32, :32]
    cx, cy = rng.integers(10, 22, 2)
    if kind == 0:
        m = (abs(xx - cx) < 7) & (abs(yy - cy) < 7)
    elif kind == 1:
        m = (xx - cx) ** 2 + (yy - cy) ** 2 < 64
    else:
        m = (xx + rng.integers(0, 4)) % 6 < 3
    img[m, kind] = 230
    return img


def write_shapes(root: Path, train: int = 60, test: int = 20) -> Path:
    """A CIFAR-style class-folder set (train/, test/; disc, square, stripes) of 32x32 PNGs."""
    rng = np.random.default_rng(0)
    for split, n in (("train", train), ("test", test)):
        for k, name in enumerate(["disc", "square", "stripes"]):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(draw_shape([1, 0, 2][k], rng)).save(d / f"{i}.png")
    return root


def write_people(root: Path, people: dict[str, int], size=(40, 32), seed=0) -> Path:
    """Person folders of grey images, each person a different brightness (a face set in miniature)."""
    rng = np.random.default_rng(seed)
    for k, (name, n) in enumerate(people.items()):
        d = root / name
        d.mkdir(parents=True)
        for i in range(n):
            base = np.full((size[0], size[1]), 30 + 20 * k, dtype=np.uint8)
            arr = np.clip(base + rng.integers(0, 40, size), 0, 255).astype(np.uint8)
            Image.fromarray(arr, "L").save(d / f"{i}.pgm")
    return root


CLI = [sys.executable, "-m", "vislab"]
"""The command line as a user runs it (a fresh process: import time, exit codes and stderr are real)."""


def run_cli(*args, timeout: int = 600) -> subprocess.CompletedProcess:
    """`vislab ARGS...` in a subprocess, output captured as text, on a wide terminal (rich does not wrap)."""
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200"})
