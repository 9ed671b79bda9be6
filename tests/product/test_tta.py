"""Flip test-time augmentation in the product (`--tta` of predict, tag, index and serve): the predictor averages
the features of the photo and its mirror, as `evaluate` scores a run trained with `train.tta`; an index records
whether it was built that way, and queries follow it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from vislab.labs.fashion.predict import Predictor


def _wait_ready(client) -> None:
    """Wait (at most a minute) until the service's model has loaded."""
    import time
    t0 = time.monotonic()
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() - t0 < 60
        time.sleep(0.05)


def _same(got: dict, want: dict) -> None:
    """The same labels and confidences (to 1e-3: another process, rounded to 4 places)."""
    for t, w in want["attributes"].items():
        assert got["attributes"][t]["label"] == w["label"]
        assert got["attributes"][t]["confidence"] == pytest.approx(w["confidence"], abs=1e-3)


def test_predictor_tta_is_the_mean_of_the_photo_and_its_mirror(tiny_ckpt, catalog):
    files = sorted((catalog / "shoes").glob("*.jpg"))[:6]
    plain, tta = Predictor.load(tiny_ckpt), Predictor.load(tiny_ckpt, tta=True)
    x = plain.preprocess(files)
    with torch.inference_mode():  # by hand: NCHW, each view through the whole network
        xin = plain.transform(x).contiguous()
        logits = {t: (a + b) / 2 for (t, a), b in zip(plain.net(xin).items(), plain.net(xin.flip(-1)).values())}
        feats = (plain.net.forward_features(xin) + plain.net.forward_features(xin.flip(-1))) / 2
    f, preds = tta.embed_arrays(x)
    assert np.abs(f - feats.numpy()).max() < 1e-4
    for t, v in logits.items():
        conf, idx = v.softmax(-1).max(-1)
        assert [p.labels[t] for p in preds] == [plain.encoders[t][j] for j in idx.tolist()]
        assert [p.confidences[t] for p in preds] == pytest.approx(conf.tolist(), abs=1e-5)
    single = plain.predict_arrays(x)
    assert any(abs(a.confidences[t] - b.confidences[t]) > 1e-3 for a, b in zip(single, preds) for t in logits)


def test_cli_tta_in_predict_index_similar_and_serve(tiny_ckpt, catalog, tmp_path):
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[0]
    res = run("fashion", "predict", tiny_ckpt, shoe, "--json", "--tta")
    assert res.returncode == 0, res.stderr[-2000:]
    (got,) = json.loads(res.stdout)
    _same(got, Predictor.load(tiny_ckpt, tta=True).predict(shoe).as_dict())
    out = tmp_path / "tta.index"
    res = run("fashion", "index", tiny_ckpt, catalog, "--out", out, "--tta", "--workers", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    from vislab.product.index import read_index
    assert read_index(out)["model"]["tta"] is True
    res = run("fashion", "similar", out, shoe, "-k", "2", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    best = json.loads(res.stdout)[0]["matches"][0]
    assert best["path"] == str(shoe) and best["score"] > 0.9999  # the query embedded as the index was built
    res = run("serve", tiny_ckpt, "--index", out, "--port", "0")
    assert res.returncode == 2 and "built with --tta" in res.stderr


def test_service_reports_and_applies_tta(tiny_ckpt, catalog):
    from fastapi.testclient import TestClient

    from vislab.product.serve.app import create_app
    from vislab.product.serve.settings import ServeSettings
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[3]
    with TestClient(create_app(tiny_ckpt, ServeSettings(tta=True))) as c:
        _wait_ready(c)
        assert c.get("/v1/model").json()["tta"] is True
        body = c.post("/v1/tag", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")}).json()
    _same(body, Predictor.load(tiny_ckpt, tta=True).predict(shoe).as_dict())


def test_without_a_flag_the_model_runs_with_the_tta_its_thresholds_were_chosen_with(tiny_ckpt, catalog, tmp_path):
    """predict, tag and serve default to the model's own flip TTA (train.tta of its config, the setting its review
    thresholds were chosen with); --tta/--no-tta override it."""
    import shutil

    from fastapi.testclient import TestClient

    from vislab.core.checkpoint import read_meta, update_meta
    from vislab.product.backends import model_tta
    from vislab.product.serve.app import create_app
    from vislab.product.serve.settings import ServeSettings
    flipped = tmp_path / "tta.safetensors"
    shutil.copy(tiny_ckpt, flipped)
    cfg = read_meta(tiny_ckpt)["config"]
    update_meta(flipped, {"config": {**cfg, "train": {**cfg["train"], "tta": True}}})
    assert model_tta(read_meta(tiny_ckpt)) is False and model_tta(read_meta(flipped)) is True
    shoe = sorted((catalog / "shoes").glob("*.jpg"))[1]
    for args, tta in (((), True), (("--no-tta",), False)):
        res = run("fashion", "predict", flipped, shoe, "--json", *args)
        assert res.returncode == 0, res.stderr[-2000:]
        _same(json.loads(res.stdout)[0], Predictor.load(flipped, tta=tta).predict(shoe).as_dict())
    res = run("fashion", "tag", flipped, shoe, "--out", tmp_path / "t.jsonl", "--workers", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    want = Predictor.load(flipped, tta=True).predict(shoe).as_dict()
    assert {t: v["label"] for t, v in row["attributes"].items()} == {t: v["label"] for t, v in
                                                                     want["attributes"].items()}
    with TestClient(create_app(flipped, ServeSettings())) as c:
        _wait_ready(c)
        assert c.get("/v1/model").json()["tta"] is True
        body = c.post("/v1/tag", files={"file": (shoe.name, shoe.read_bytes(), "image/jpeg")}).json()
    _same(body, want)
    assert model_tta({"ensemble": {"tta": True}, "config": {}}) is True
    assert model_tta({"config": {}}) is False  # an exported .onnx file: no config
