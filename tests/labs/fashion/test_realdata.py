"""Short real-data runs on ../shared/data/fashion-products (skipped without it; failing under CI=true).

A few hundred optimizer steps of the real pipeline (cleaning, decode cache, pretrained
EfficientNet-Lite0, tuned recipe) must beat the majority-class baseline on every task."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vislab.core.data.csv import read_csv
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config
from vislab.labs.fashion.data import image_paths, load_table

pytestmark = pytest.mark.realdata
TASKS = ["gender", "masterCategory", "subCategory", "baseColour", "season", "articleType"]


def test_real_csv_cleaning_counts(fashion_products):
    """The shared styles.csv: 37,780 rows, 5 without image, NA labels; colours merged to <= 20."""
    cfg = load_config(None, [f"data.root={fashion_products}"]).data
    df, rep = read_csv(fashion_products / "styles.csv")
    assert rep.rows == 37_780 and not rep.malformed
    table, steps, _ = load_table(cfg)
    missing = next(s for s in steps if s.step.startswith("missing value"))
    assert missing.removed == int(df[TASKS].isna().any(axis=1).sum()) > 0
    assert table["baseColour"].nunique() <= 20
    paths = image_paths(table, fashion_products, cfg)
    assert sum(not p.is_file() for p in paths) == 5  # the 5 ids the README lists as imageless


def test_finetune_few_hundred_steps_beats_majority_on_every_task(fashion_products, tmp_path):
    cfg = load_config(None, [f"data.root={fashion_products}", "data.limit=8000", "data.image_size=[64,48]",
                             "train.max_steps=300", "train.epochs=10", "train.batch_size=32", "train.lr=0.003",
                             f"out_dir={tmp_path}", "name=real"])
    run_dir = fashion.train(cfg, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["n"] > 1000
    for t in TASKS:
        acc, base = m["metrics"][t]["accuracy"], m["majority_baseline"][t]
        assert acc > base, f"{t}: accuracy {acc:.3f} does not beat the majority class ({base:.3f})"
    # the easy, visual tasks are far above it
    assert m["metrics"]["masterCategory"]["accuracy"] > 0.9
    assert m["metrics"]["articleType"]["accuracy"] > m["majority_baseline"]["articleType"] + 0.3
    assert (run_dir / "report.html").stat().st_size > 50_000


def test_linear_probe_features_once_beats_majority(fashion_products, tmp_path):
    cfg = load_config(None, [f"data.root={fashion_products}", "data.limit=6000", "data.image_size=[64,48]",
                             "model.freeze_backbone=true", "train.epochs=8", "train.lr=0.01",
                             f"out_dir={tmp_path}", "name=probe"])
    run_dir = fashion.train(cfg, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    for t in TASKS:
        assert m["metrics"][t]["accuracy"] > m["majority_baseline"][t], t
    # the backbone did not move: its weights are the pretrained ones
    from vislab.labs.fashion.model import MultiTaskNet
    net, _ = fashion.load_model(run_dir / "checkpoints" / "best.safetensors")
    ref = MultiTaskNet("tf_efficientnet_lite0", net.tasks, pretrained=True)
    a, b = net.backbone.state_dict(), ref.backbone.state_dict()
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
