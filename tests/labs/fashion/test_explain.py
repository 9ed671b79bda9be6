"""`vislab fashion explain` and the report's heat maps: one map per attribute for the label the predictor
gives (same confidences), a chosen label, clear refusals, and the deletion test in metrics.json and the report."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from helpers import run_cli as run


@pytest.fixture(scope="module")
def photo(synthetic_root):
    return sorted((synthetic_root / "images").glob("*.jpg"))[3]


def test_explain_every_attribute_as_the_predictor_sees_it(tiny_run, photo, tmp_path):
    from vislab.labs.fashion.predict import Predictor
    run_dir, cfg = tiny_run
    res = run("fashion", "explain", run_dir, photo, "--out", tmp_path / "why.png", "--json")
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout)
    pred = Predictor.load(run_dir)
    want = pred.predict(photo)
    assert list(info["attributes"]) == pred.tasks and info["layer"].startswith("backbone.")
    for t, v in info["attributes"].items():
        assert v["predicted"] and v["label"] == want.labels[t]
        assert v["confidence"] == pytest.approx(want.confidences[t], abs=1e-4)
        assert 0 <= v["peak"][0] < 1 and 0 <= v["peak"][1] < 1
    with Image.open(tmp_path / "why.png") as im:  # the photo and six maps side by side
        assert im.width > 2.5 * im.height


def test_explain_a_chosen_label_with_gradcam_plus_plus(tiny_run, photo, tmp_path):
    from vislab.core.checkpoint import read_meta
    run_dir, _ = tiny_run
    colours = read_meta(run_dir / "checkpoints" / "best.safetensors")["encoders"]["baseColour"]
    res = run("fashion", "explain", run_dir, photo, "--task", "baseColour", "--class", colours[-1],
              "--method", "gradcam++", "--layer", "backbone.blocks.2", "--json", "--out", tmp_path / "c.png")
    assert res.returncode == 0, res.stderr[-2000:]
    info = json.loads(res.stdout)
    assert list(info["attributes"]) == ["baseColour"] and info["attributes"]["baseColour"]["label"] == colours[-1]
    assert info["layer"] == "backbone.blocks.2" and info["method"] == "gradcam++" and (tmp_path / "c.png").is_file()
    res = run("fashion", "explain", run_dir, photo)  # text output; the grid beside the photo by default
    assert res.returncode == 0 and "gradcam at backbone." in res.stdout
    written = photo.with_name(photo.stem + ".explain.png")
    assert written.is_file()
    written.unlink()


@pytest.mark.parametrize("args,code,words", [
    (["--class", "Navy Blue"], 2, "--class needs --task"),
    (["--task", "colour"], 2, "did you mean"),
    (["--task", "baseColour", "--class", "Navvy"], 2, "is not a baseColour label"),
    (["--layer", "backbone.nope"], 2, "no such module"),
    (["--method", "cam"], 2, "--method must be one of gradcam, gradcam++"),
])
def test_explain_refusals(tiny_run, photo, args, code, words):
    res = run("fashion", "explain", tiny_run[0], photo, *args)
    assert res.returncode == code and words in res.stderr and "Traceback" not in res.stderr


def test_report_shows_heat_maps_and_the_deletion_test(tiny_run):
    run_dir, cfg = tiny_run
    m = json.loads((run_dir / "metrics.json").read_text())
    ex = m["explain"]
    assert list(ex) == list(cfg.data.label_cols)
    for v in ex.values():
        assert v["images"] == min(cfg.explain.report_images, m["n"]) and v["fraction"] == 0.2
        assert 0 < v["confidence"] <= 1 and 0 <= v["salient_wins"] <= 1
        assert v["drop_salient"] == pytest.approx(v["confidence"] - v["salient_removed"])
    html = (run_dir / "report.html").read_text()
    assert "Do the heat maps mean something?" in html and "heat map of its first wrong attribute" in html
    assert (run_dir / "figures" / "errors.png").is_file()
