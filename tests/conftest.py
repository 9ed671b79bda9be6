"""Shared fixtures. Real data lives in ../shared/data (never in the repo): tests that need it
skip when it is missing, except under CI=true, where a missing folder is a failure."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import tiny_overrides

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VISLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))
# Decoded-image and feature caches of the test session: inside the checkout (git-ignored), so
# repeated local runs reuse them and a CI clone starts empty.
os.environ.setdefault("VISLAB_CACHE", str(ROOT / ".cache" / "test"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never wait on hub retries in tests
os.environ.setdefault("MPLBACKEND", "Agg")


def shared_data(name: str) -> Path:
    p = SHARED / name
    if not p.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real data {p} is missing under CI=true (see ../shared/README.md)")
        pytest.skip(f"real data {p} not present")
    return p


@pytest.fixture(scope="session")
def fashion_products() -> Path:
    return shared_data("fashion-products")


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic product set (Kaggle layout) shared by the engine/CLI tests."""
    from vislab.labs.fashion import synthetic
    return synthetic.generate(tmp_path_factory.mktemp("synthetic"), n=600, seed=3)


@pytest.fixture(scope="session")
def tiny_run(synthetic_root, tmp_path_factory):
    """One trained tiny model (2 epochs, seconds): (run_dir, config)."""
    from vislab.labs.fashion import lab as fashion
    from vislab.labs.fashion.config import load_config
    out = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, tiny_overrides(synthetic_root, out, name="tiny", **{"train.epochs": 5}))
    return fashion.train(cfg, progress=False), cfg


@pytest.fixture(scope="session")
def cifar10() -> Path:
    return shared_data("cifar10")


@pytest.fixture(scope="session")
def faces() -> Path:
    return shared_data("faces")


@pytest.fixture(scope="session")
def fashion_mnist() -> Path:
    return shared_data("fashion-mnist")
