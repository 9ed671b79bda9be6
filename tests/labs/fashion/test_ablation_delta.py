"""benchmarks/ablation_delta.py scores every row at its own image size on the same test images."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from helpers import tiny_overrides
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config


def _script():
    spec = importlib.util.spec_from_file_location("ablation_delta",
                                                  Path(__file__).parents[3] / "benchmarks" / "ablation_delta.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_of_two_image_sizes_are_scored_at_their_own_size(synthetic_root, tmp_path, monkeypatch):
    runs = {}
    for name, size in (("small", "[32,24]"), ("large", "[48,36]")):
        cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name=name, **{
            "data.image_size": size, "train.max_steps": 4, "train.epochs": 1}))
        runs[name] = fashion.train(cfg, progress=False)
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["ablation_delta", str(runs["large"]), str(runs["small"]), str(runs["large"]),
                                      "--json", str(out)])
    _script().main()
    rows = json.loads(out.read_text())
    assert [r["image_size"] for r in rows] == [[48, 36], [32, 24], [48, 36]]
    for r, name in zip(rows, ("large", "small")):  # each matches its own run's final test evaluation
        own = json.loads((runs[name] / "metrics.json").read_text())["metrics"]["average"]["accuracy"]
        assert r["metrics"]["average"]["accuracy"] == pytest.approx(own, abs=1e-6)
    assert rows[2]["delta"]["average"]["accuracy"] == pytest.approx([0.0, 0.0])  # a row against itself


def test_a_row_from_another_split_is_refused(synthetic_root, tmp_path, monkeypatch):
    runs = []
    for name, seed in (("a", 42), ("b", 7)):
        cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name=name, **{
            "data.seed": seed, "train.max_steps": 1, "train.epochs": 1}))
        runs.append(fashion.train(cfg, progress=False, report=False))
    monkeypatch.setattr(sys, "argv", ["ablation_delta", str(runs[0]), str(runs[1])])
    with pytest.raises(SystemExit, match=r"differs .* in \['seed'\]"):
        _script().main()
