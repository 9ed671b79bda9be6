"""Ensemble files (`vislab fashion ensemble`): several checkpoints as one model for predict, tag and serve."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import vislab
from helpers import run_cli as run
from helpers import tiny_overrides
from vislab.core.checkpoint import read_meta
from vislab.core.errors import CheckpointError, UsageError
from vislab.labs.fashion import ensemble as ens
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import FashionRunConfig, load_config
from vislab.labs.fashion.data import prepare
from vislab.labs.fashion.predict import Predictor
from vislab.labs.fashion.review import choose_thresholds


@pytest.fixture(scope="module")
def members(synthetic_root, tmp_path_factory):
    """Two tiny runs of the same data and split at two image sizes, the larger one with a neighbour vote."""
    out = tmp_path_factory.mktemp("ens-runs")
    runs = []
    for name, size, extra in (("small", "[32,24]", {}), ("large", "[48,36]", {"knn.k": 3})):
        cfg = load_config(None, tiny_overrides(synthetic_root, out, name=name, **{
            "data.image_size": size, "train.max_steps": 6, "train.epochs": 1, **extra}))
        runs.append(fashion.train(cfg, progress=False, report=False) / "checkpoints" / "best.safetensors")
    return runs


@pytest.fixture(scope="module")
def built(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ens") / "shop.json"
    doc = ens.build(members, out, tta=True, test=True, progress=False)
    return out, doc


def test_the_ensemble_is_the_mean_of_its_members_each_at_its_own_size(members, built, synthetic_root):
    out, doc = built
    assert doc["image_size"] == [48, 36]  # decoded once, at the largest member's size
    assert [m["image_size"] for m in doc["members"]] == [[32, 24], [48, 36]]
    assert [m["vote"] for m in doc["members"]] == [False, True]
    assert isinstance(vislab.load(out), ens.EnsemblePredictor)
    pred = ens.EnsemblePredictor.load(out, tta=True)
    images = sorted((synthetic_root / "images").glob("*.jpg"))[:12]
    x = pred.preprocess(images)
    assert tuple(x.shape[2:]) == (48, 36)
    singles = [Predictor.load(m, tta=True) for m in members]
    small = torch.nn.functional.interpolate(x.float(), size=(32, 24), mode="bilinear", antialias=True)
    expect = [singles[0].forward_arrays(small.round().clamp(0, 255).to(torch.uint8))[1],
              singles[1].forward_arrays(x)[1]]
    feats, mean, each = pred.forward_arrays(x)
    for t in pred.tasks:
        torch.testing.assert_close(each[0][t], expect[0][t])
        torch.testing.assert_close(each[1][t], expect[1][t])
        torch.testing.assert_close(mean[t], (expect[0][t] + expect[1][t]) / 2)
    assert feats.shape[1] == sum(s.net.num_features for s in singles)
    d = singles[0].net.num_features  # each member's block is its own features, L2-normalised
    torch.testing.assert_close(feats[:, :d], torch.nn.functional.normalize(singles[0].forward_arrays(
        small.round().clamp(0, 255).to(torch.uint8))[0], dim=1))
    torch.testing.assert_close(feats[:, d:].norm(dim=1), torch.ones(len(feats)))
    preds = pred.predict_batch(images)
    for t in pred.tasks:  # each label is the argmax of the mean, its confidence the mean's maximum
        labels = [pred.encoders[t][i] for i in mean[t].argmax(1).tolist()]
        assert [p.labels[t] for p in preds] == labels
        assert [p.confidences[t] for p in preds] == pytest.approx(mean[t].max(1).values.tolist(), abs=1e-5)
    assert pred.thresholds == doc["review"]["thresholds"]


def test_building_scores_validation_with_the_training_images_voting(members, built):
    out, doc = built
    meta = read_meta(members[1])
    prepared = prepare(FashionRunConfig.model_validate(meta["config"]).data, progress=False)
    val = np.sort(prepared.splits["val"])
    # the large member, at its own size, through the engine's evaluation: the same numbers as in the file
    m, raw = fashion.evaluate_checkpoint(members[1], prepared, val, tta=True, vote_splits=("train",))
    got = doc["scores"]["val"]["members"][1]
    for t in prepared.encoders:
        assert got[t]["accuracy"] == pytest.approx(100 * m[t]["accuracy"], abs=1e-4)
        assert got[t]["f1"] == pytest.approx(100 * m[t]["f1"], abs=1e-4)
    # the thresholds are chosen on the ensemble's validation probabilities, as a single checkpoint's are
    pred = ens.EnsemblePredictor.load(out, tta=True, vote_splits=("train",))
    mean, _ = ens.score(pred, prepared.images, val)
    assert doc["review"] == choose_thresholds(mean, prepared.targets[val], doc["review"]["precision_target"])
    hits = [(mean[t].argmax(1) == prepared.targets[val, j]).mean() for j, t in enumerate(prepared.encoders)]
    assert doc["scores"]["val"]["ensemble"]["average"]["accuracy"] == pytest.approx(100 * np.mean(hits), abs=1e-4)
    # the validation images in the larger member's train+val bank would each vote for their own label
    leaked, _ = ens.score(ens.EnsemblePredictor.load(out, tta=True), prepared.images, val)
    assert any(not np.allclose(leaked[t], mean[t], atol=1e-4) for t in mean)
    test = doc["scores"]["test"]["ensemble"]
    assert doc["scores"]["test"]["n"] == len(prepared.splits["test"])
    for t in (*prepared.encoders, "average"):
        lo, hi = test[t]["accuracy_ci"]
        assert lo <= test[t]["accuracy"] + 1e-9 and test[t]["accuracy"] <= hi + 1e-9


def test_bad_members_are_refused_before_any_image_is_decoded(members, synthetic_root, tmp_path):
    with pytest.raises(UsageError, match="at least two"):
        ens.check_members(members[:1])
    with pytest.raises(UsageError, match="named twice"):
        ens.check_members([members[0], members[0]])
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="other-split", **{
        "data.seed": 7, "train.max_steps": 1, "train.epochs": 1}))
    other = fashion.train(cfg, progress=False, report=False)
    with pytest.raises(CheckpointError, match=r"another split .*data\.seed differ"):
        ens.check_members([members[0], other])
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="two-tasks", **{
        "data.label_cols": "[gender,season]", "train.max_steps": 1, "train.epochs": 1}))
    fewer = fashion.train(cfg, progress=False, report=False)
    with pytest.raises(CheckpointError, match="other attributes or classes"):
        ens.check_members([members[0], fewer])


def test_an_ensemble_file_is_checked_when_loaded(members, built, tmp_path):
    out, doc = built
    moved = tmp_path / "deeper" / "copy.json"
    moved.parent.mkdir()
    moved.write_text(out.read_text())  # relative member paths no longer resolve from here
    with pytest.raises(CheckpointError, match="does not exist"):
        ens.read(moved)
    bad = tmp_path / "other.json"
    bad.write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a vislab ensemble file"):
        ens.read(bad)
    doc2 = json.loads(out.read_text())
    doc2["members"][0]["sha256"] = "0" * 64
    changed = out.with_name("changed.json")
    changed.write_text(json.dumps(doc2))
    with pytest.raises(CheckpointError, match="changed since the ensemble was built"):
        ens.EnsemblePredictor.load(changed)


def test_predict_tag_accept_an_ensemble_and_explain_export_refuse_it(members, built, synthetic_root, tmp_path):
    out, doc = built
    images = sorted((synthetic_root / "images").glob("*.jpg"))[:5]
    res = run("fashion", "predict", out, *images, "--json", "--tta")
    assert res.returncode == 0, res.stderr
    got = json.loads(res.stdout)
    expect = ens.EnsemblePredictor.load(out, tta=True).predict_batch(images)
    assert [r["caption"] for r in got] == [p.caption for p in expect]
    tags = tmp_path / "tags.csv"
    res = run("fashion", "tag", out, *images, "--out", tags, "--tta", "--workers", "0")
    assert res.returncode == 0, res.stderr
    with open(tags) as f:
        rows = list(csv.DictReader(f))
    assert [r["articleType"] for r in rows] == [p.labels["articleType"] for p in expect]
    refused = tmp_path / "refused.csv"
    for args in (("fashion", "explain", out, images[0]), ("export", out, "--out", tmp_path / "m.onnx"),
                 ("fashion", "tag", out, images[0], "--backend", "onnx", "--out", refused)):
        res = run(*args)
        assert res.returncode != 0
        assert res.stderr.count("\n") <= 2 and "ensemble" in res.stderr, res.stderr
    assert not refused.exists()  # refused before the tag file is opened
    res = run("fashion", "ensemble", members[0], "--out", tmp_path / "one.json")
    assert res.returncode != 0 and "at least two" in res.stderr


def test_the_service_serves_an_ensemble(built, synthetic_root):
    import time

    from fastapi.testclient import TestClient

    from vislab.product.serve.app import create_app
    from vislab.product.serve.settings import ServeSettings
    out, doc = built
    with TestClient(create_app(out, ServeSettings(tta=True))) as c:
        t0 = time.monotonic()
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() - t0 < 60, c.get("/readyz").json()
            time.sleep(0.05)
        info = c.get("/v1/model").json()
        assert info["image_size"] == [48, 36] and info["backbone"].startswith("ensemble(")
        assert info["metrics"]["split"] == "test"  # the file's own scores, not a metrics.json found nearby
        assert info["metrics"]["average"]["accuracy"] == pytest.approx(
            doc["scores"]["test"]["ensemble"]["average"]["accuracy"] / 100)
        want = ens.EnsemblePredictor.load(out, tta=True)
        for f in sorted((synthetic_root / "images").glob("*.jpg"))[:3]:
            r = c.post("/v1/tag", files={"file": (f.name, f.read_bytes(), "image/jpeg")})
            assert r.status_code == 200, r.text
            p = want.predict(f)
            for t, a in r.json()["attributes"].items():
                assert a["label"] == p.labels[t] and a["confidence"] == pytest.approx(p.confidences[t], abs=1e-4)


def test_ablation_delta_scores_an_ensemble_file_as_the_engine_scores_its_members(members, tmp_path, monkeypatch):
    """A checkpoint and its copy as an ensemble file: the predictor's path (channels_last, the vote blended in the
    predictor) must give the engine's numbers for that checkpoint, on test and on validation."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("ablation_delta",
                                                  Path(__file__).parents[3] / "benchmarks" / "ablation_delta.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    large = members[1]
    copy = tmp_path / "copy" / "checkpoints" / "best.safetensors"
    copy.parent.mkdir(parents=True)
    shutil.copy(large, copy)
    out = tmp_path / "self.json"
    ens.build([large, copy], out, progress=False)
    for split in ("test", "val"):
        rows_json = tmp_path / f"rows-{split}.json"
        monkeypatch.setattr(sys, "argv", ["ablation_delta", f"{large}:tta", f"{out}:tta", "--split", split,
                                          "--json", str(rows_json)])
        script.main()
        single, file = json.loads(rows_json.read_text())
        assert "decoded at 48x36" in file["row"]
        for t in single["metrics"]:
            assert file["metrics"][t]["accuracy"] == pytest.approx(single["metrics"][t]["accuracy"], abs=1e-6)
            assert file["metrics"][t]["f1"] == pytest.approx(single["metrics"][t]["f1"], abs=1e-6)
        assert file["metrics"]["average"]["loss"] == pytest.approx(single["metrics"]["average"]["loss"], rel=1e-4)
