"""benchmarks/ablation_delta.py scores every row at its own image size on the same test images."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

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
                                      f"{runs['large']}+{runs['small']}", "--json", str(out)])
    _script().main()
    rows = json.loads(out.read_text())
    assert [r["image_size"] for r in rows] == [[48, 36], [32, 24], [48, 36], [48, 36]]
    for r, name in zip(rows, ("large", "small")):  # each matches its own run's final test evaluation
        own = json.loads((runs[name] / "metrics.json").read_text())["metrics"]["average"]["accuracy"]
        assert r["metrics"]["average"]["accuracy"] == pytest.approx(own, abs=1e-6)
    assert rows[2]["delta"]["average"]["accuracy"] == pytest.approx([0.0, 0.0])  # a row against itself

    # the ensemble row: the argmax of the two runs' mean probabilities, each run scored at its own size
    probs, targets = [], None
    for name in ("large", "small"):
        cfg = load_config(runs[name] / "config.yaml")
        prepared = fashion.prepare_data(cfg, progress=False)
        test = np.sort(prepared.splits["test"])
        _, raw = fashion.evaluate_checkpoint(runs[name] / "checkpoints" / "best.safetensors", prepared, test, tta=False)
        probs.append({t: torch.from_numpy(o).softmax(-1) for t, o in raw["outputs"].items()})
        targets = raw["targets"]
    hits = [((probs[0][t] + probs[1][t]).argmax(1).numpy() == targets[:, j]).mean()
            for j, t in enumerate(prepared.encoders)]
    nll = [-np.log(((probs[0][t] + probs[1][t]) / 2).numpy()[np.arange(len(targets)), targets[:, j]]).mean()
           for j, t in enumerate(prepared.encoders)]
    assert rows[3]["metrics"]["average"]["accuracy"] == pytest.approx(float(np.mean(hits)), abs=1e-6)
    assert rows[3]["metrics"]["average"]["loss"] == pytest.approx(float(np.mean(nll)), rel=1e-4)
    assert rows[3]["epochs"] == [r["epochs"][0] for r in rows[:2]]


def test_a_row_from_another_split_is_refused(synthetic_root, tmp_path, monkeypatch):
    runs = []
    for name, seed in (("a", 42), ("b", 7)):
        cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name=name, **{
            "data.seed": seed, "train.max_steps": 1, "train.epochs": 1}))
        runs.append(fashion.train(cfg, progress=False, report=False))
    monkeypatch.setattr(sys, "argv", ["ablation_delta", str(runs[0]), str(runs[1])])
    with pytest.raises(SystemExit, match=r"differs .* in \['seed'\]"):
        _script().main()


def test_heads_suffix_scores_a_voted_checkpoint_without_its_vote(synthetic_root, tmp_path, monkeypatch):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="voted", **{
        "train.max_steps": 6, "train.epochs": 1, "knn.k": 3}))
    run = fashion.train(cfg, progress=False, report=False)
    best = run / "checkpoints" / "best.safetensors"
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["ablation_delta", str(run), f"{run}:heads", f"{run}:tta:heads",
                                      f"{run}+{run}:heads", "--json", str(out)])
    mod = _script()
    assert mod.parse_row("a+b:heads:tta") == mod.parse_row("a+b:tta:heads") == ("a+b", True, True)
    mod.main()
    rows = json.loads(out.read_text())
    prepared = fashion.prepare_data(cfg, progress=False)
    test = np.sort(prepared.splits["test"])
    voted, _ = fashion.evaluate_checkpoint(best, prepared, test, tta=False)
    heads, _ = fashion.evaluate_checkpoint(best, prepared, test, tta=False, vote_splits=None)
    heads_tta, _ = fashion.evaluate_checkpoint(best, prepared, test, tta=True, vote_splits=None)
    got = [r["metrics"]["average"]["accuracy"] for r in rows]
    assert got == pytest.approx([voted["average"]["accuracy"], heads["average"]["accuracy"],
                                 heads_tta["average"]["accuracy"], heads["average"]["accuracy"]], abs=1e-6)
    assert rows[1]["row"].endswith("(heads alone)")
    # the vote changes this model's answers, so the rows above tell the two apart
    assert voted["average"]["loss"] != pytest.approx(heads["average"]["loss"], rel=1e-3)
    # --split val: only the training images vote, for one checkpoint and for an ensemble (the validation
    # images are in the train+val bank, and each would vote for its own label)
    monkeypatch.setattr(sys, "argv", ["ablation_delta", str(run), f"{run}+{run}", "--split", "val",
                                      "--json", str(out)])
    mod.main()
    rows = json.loads(out.read_text())
    val = np.sort(prepared.splits["val"])
    honest, _ = fashion.evaluate_checkpoint(best, prepared, val, tta=False, vote_splits=("train",))
    leaked, _ = fashion.evaluate_checkpoint(best, prepared, val, tta=False, vote_splits=("train", "val"))
    assert honest["average"]["loss"] != pytest.approx(leaked["average"]["loss"], rel=1e-3)
    assert rows[0]["metrics"]["average"]["loss"] == pytest.approx(honest["average"]["loss"], rel=1e-4)
    for r in rows:  # the ensemble of a checkpoint with itself is that checkpoint
        assert r["metrics"]["average"]["accuracy"] == pytest.approx(honest["average"]["accuracy"], abs=1e-6)
        for t in prepared.tasks:
            assert r["metrics"][t]["f1"] == pytest.approx(honest[t]["f1"], abs=1e-6)
