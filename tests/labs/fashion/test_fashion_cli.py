"""The command line as a user runs it: predict (text/JSON, any image mode, bad files),
evaluate on new data (unseen labels), eda, bad CSVs."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

import vislab
from helpers import run_cli as run


@pytest.fixture(scope="module")
def images(tmp_path_factory, synthetic_root):
    """One synthetic product photo saved in many modes and formats, plus broken files."""
    d = tmp_path_factory.mktemp("imgs")
    first = sorted((synthetic_root / "images").glob("*.jpg"))[0]
    im = Image.open(first).convert("RGB")
    im.save(d / "rgb.jpg")
    im.convert("L").save(d / "gray.jpg")
    im.convert("RGBA").save(d / "rgba.png")
    im.convert("CMYK").save(d / "cmyk.jpg")
    im.convert("P").save(d / "pal.png")
    im.resize((600, 800)).save(d / "big.jpg")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("not an image")
    raw = (d / "rgb.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(raw[: len(raw) // 3])
    return d


def test_predict_json_all_modes(tiny_run, images):
    run_dir, cfg = tiny_run
    ck = run_dir / "checkpoints" / "best.safetensors"
    files = [images / n for n in ("rgb.jpg", "gray.jpg", "rgba.png", "cmyk.jpg", "pal.png", "big.jpg")]
    res = run("fashion", "predict", ck, *files, "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert [r["image"] for r in out] == [str(f) for f in files]
    encoders = vislab.load(ck).encoders
    for r in out:
        assert list(r["attributes"]) == cfg.data.label_cols
        for t, a in r["attributes"].items():
            assert a["label"] in encoders[t] and 0 < a["confidence"] <= 1
        assert isinstance(r["caption"], str) and len(r["caption"]) > 5
    # the API gives the same answer as the CLI
    p = vislab.load(ck).predict(files[0])
    assert p.labels == {t: a["label"] for t, a in out[0]["attributes"].items()}
    assert p.confidences["gender"] == pytest.approx(out[0]["attributes"]["gender"]["confidence"], abs=1e-4)


def test_predict_text_and_bad_files(tiny_run, images):
    ck = tiny_run[0] / "checkpoints" / "best.safetensors"
    res = run("fashion", "predict", ck, images / "rgb.jpg")
    assert res.returncode == 0
    assert "gender: " in res.stdout and "(0." in res.stdout or "(1.00)" in res.stdout
    res = run("fashion", "predict", ck, images / "rgb.jpg", images / "empty.jpg", images / "text.jpg",
              images / "truncated.jpg", "--json")
    assert res.returncode == 1  # some images failed
    out = json.loads(res.stdout)
    assert "attributes" in out[0]
    errs = {Path(r["image"]).name: r["error"] for r in out[1:]}
    assert "empty" in errs["empty.jpg"]
    assert "cannot be decoded" in errs["text.jpg"] and "cannot be decoded" in errs["truncated.jpg"]
    assert "Traceback" not in res.stderr
    # a path that names nothing fails before the model is loaded, naming it
    res = run("fashion", "predict", ck, images / "rgb.jpg", images / "nope.jpg")
    assert res.returncode == 1 and "nope.jpg: no such file or folder" in res.stderr and not res.stdout


def test_predict_takes_a_run_folder_folders_and_globs(tiny_run, images, tmp_path):
    """A run folder means its best checkpoint; a folder means its images (recursively); a glob its matches."""
    run_dir = tiny_run[0]
    nested = tmp_path / "shop" / "summer"
    nested.mkdir(parents=True)
    for name in ("rgb.jpg", "gray.jpg", "rgba.png"):
        (nested / name).write_bytes((images / name).read_bytes())
    (tmp_path / "shop" / "notes.txt").write_text("not an image, not searched")
    res = run("fashion", "predict", run_dir, tmp_path / "shop", str(images / "*.png"), "--json")
    assert res.returncode == 0, res.stderr
    got = [Path(r["image"]).name for r in json.loads(res.stdout)]
    assert got == ["gray.jpg", "rgb.jpg", "rgba.png", "pal.png", "rgba.png"]  # folder sorted, then the glob
    direct = run("fashion", "predict", run_dir / "checkpoints" / "best.safetensors", nested / "rgb.jpg", "--json")
    assert json.loads(direct.stdout)[0]["attributes"] == json.loads(res.stdout)[1]["attributes"]


def test_predict_refuses_a_non_checkpoint(tmp_path, images):
    fake = tmp_path / "model.safetensors"
    fake.write_bytes(b"\x00" * 100)
    res = run("fashion", "predict", fake, images / "rgb.jpg")
    assert res.returncode == 1 and "not a readable vislab checkpoint" in res.stderr
    assert "Traceback" not in res.stderr


def test_evaluate_new_csv_with_unseen_labels(tiny_run, synthetic_root, tmp_path):
    run_dir, cfg = tiny_run
    ck = run_dir / "checkpoints" / "best.safetensors"
    df = pd.read_csv(synthetic_root / "styles.csv")
    df.loc[:9, "articleType"] = "Spacesuits"  # a label the model never saw
    df.to_csv(tmp_path / "eval.csv", index=False)
    res = run("fashion", "evaluate", ck, "--data", synthetic_root, "--csv", tmp_path / "eval.csv",
              "--split", "all", "--out", tmp_path / "ev", "data.min_samples=0")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Spacesuits" in res.stdout  # reported ...
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["n"] == len(df) - 10  # ... and those rows skipped, every other row evaluated
    assert (tmp_path / "ev" / "report.html").is_file()


def test_evaluate_other_data_keeps_rare_known_classes_and_partial_rows(tiny_run, synthetic_root, tmp_path):
    """Evaluation data is not re-cleaned like training data: a class with few rows there but known to the model
    is scored; rows with an unseen label are counted per task and, with --partial, scored on their other tasks."""
    run_dir, cfg = tiny_run
    df = pd.read_csv(synthetic_root / "styles.csv")
    common = df["articleType"].value_counts().index[0]
    small = pd.concat([df[df["articleType"] == common].head(3), df[df["articleType"] != common].head(40)])
    small.iloc[:2, small.columns.get_loc("season")] = "Monsoon"  # unseen in training, in 2 rows
    small.to_csv(tmp_path / "other.csv", index=False)
    assert (small["articleType"] == common).sum() == 3 < cfg.data.min_samples  # rare here, common in training
    res = run("fashion", "evaluate", run_dir, "--data", synthetic_root, "--csv", tmp_path / "other.csv",
              "--out", tmp_path / "ev")
    assert res.returncode == 0, res.stderr[-3000:]
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["split"] == "all" and m["n"] == len(small) - 2  # every row scored but the two with an unseen season
    assert m["unseen_labels"] == {"season": {"Monsoon": 2}}
    assert "all rows of" in m["scope"] and f"{len(small) - 2} of {len(small)} read" in m["scope"]
    assert "Monsoon" in res.stdout and "--partial" in res.stdout
    html = (tmp_path / "ev" / "report.html").read_text()
    assert m["scope"] in html  # the report says which rows were scored
    res = run("fashion", "evaluate", run_dir, "--data", synthetic_root, "--csv", tmp_path / "other.csv",
              "--out", tmp_path / "ev2", "--partial")
    assert res.returncode == 0, res.stderr[-3000:]
    p = json.loads((tmp_path / "ev2" / "metrics.json").read_text())
    assert p["n"] == len(small) and p["n_per_task"]["season"] == len(small) - 2
    assert p["n_per_task"]["gender"] == len(small)
    assert p["metrics"]["gender"]["accuracy"] != m["metrics"]["gender"]["accuracy"] or len(small) == m["n"]


def test_evaluate_other_task_set_is_refused(tiny_run, synthetic_root, tmp_path):
    ck = tiny_run[0] / "checkpoints" / "best.safetensors"
    res = run("fashion", "evaluate", ck, "--data", synthetic_root, "data.label_cols=[gender,usage]")
    assert res.returncode == 1 and "trained for tasks" in res.stderr


def test_missing_label_column_lists_columns(synthetic_root, tmp_path):
    res = run("fashion", "eda", "--data", synthetic_root, "--label-cols", "gender,colour", "--out", tmp_path / "e")
    assert res.returncode == 1
    assert "['colour']" in res.stderr and "baseColour" in res.stderr and "productDisplayName" in res.stderr


def test_eda_on_generic_csv_with_chosen_columns(synthetic_root, tmp_path):
    """Any CSV + image folder: a file-name column with extensions, other label columns."""
    df = pd.read_csv(synthetic_root / "styles.csv")
    df = df.assign(file=df["id"].astype(str) + ".jpg")[["file", "usage", "masterCategory"]]
    df.to_csv(tmp_path / "labels.csv", index=False)
    res = run("fashion", "eda", "--data", tmp_path, "--csv", "labels.csv", "--image-dir", synthetic_root / "images",
              "--image-col", "file", "--label-cols", "usage,masterCategory", "--out", tmp_path / "eda",
              "data.stratify_col=usage", "data.min_samples=1")
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "eda" / "data_summary.json").read_text())
    assert summary["classes"] == {"usage": df["usage"].nunique(), "masterCategory": df["masterCategory"].nunique()}
    assert sum(summary["split_sizes"].values()) == summary["rows"] == len(df)
    assert (tmp_path / "eda" / "figures" / "classes_usage.png").is_file()
    assert (tmp_path / "eda" / "report.html").is_file()


def test_config_file_and_bad_override(tmp_path):
    res = run("fashion", "train", "-c", tmp_path / "nope.yaml")
    assert res.returncode == 1 and "does not exist" in res.stderr
    res = run("fashion", "train", "train.epoks=3")
    assert res.returncode == 1 and "epoks" in res.stderr


def test_evaluate_own_test_split_reproduces_training_metrics(tiny_run, tmp_path):
    """No data flags: the checkpoint's own config, split and test rows -> the numbers of the run."""
    run_dir, _ = tiny_run
    res = run("fashion", "evaluate", run_dir / "checkpoints" / "best.safetensors", "--out", tmp_path / "ev")
    assert res.returncode == 0, res.stderr[-3000:]
    a = json.loads((run_dir / "metrics.json").read_text())
    b = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert a["n"] == b["n"]
    for t in a["metrics"]:
        assert b["metrics"][t]["accuracy"] == pytest.approx(a["metrics"][t]["accuracy"], abs=1e-6)
        assert b["metrics"][t]["f1"] == pytest.approx(a["metrics"][t]["f1"], abs=1e-6)


def test_eda_report_shows_the_colour_merge_and_no_python_reprs(synthetic_root, tmp_path):
    df = pd.read_csv(synthetic_root / "styles.csv")
    white, grey = df.index[df["baseColour"] == "White"][:30], df.index[df["baseColour"] == "Grey"][:20]
    df.loc[white, "baseColour"], df.loc[grey, "baseColour"] = "Off White", "Charcoal"
    df.loc[:3, "season"] = None  # a missing label, counted per column
    df.to_csv(tmp_path / "styles.csv", index=False)
    res = run("fashion", "eda", "--data", tmp_path, "--image-dir", synthetic_root / "images",
              "--out", tmp_path / "eda", "data.min_samples=5")
    assert res.returncode == 0, res.stderr[-3000:]
    md = (tmp_path / "eda" / "report.md").read_text()
    assert "| Charcoal | Grey | 20 |" in md and "| Off White | White | 30 |" in md
    assert "| missing value in a target column | 4 |" in md and "season 4" in md
    assert not re.search(r"\{'|\['|\d\.\d{4}0\b|\.0000\b", md), "a Python repr or a padded number in the EDA"
    assert re.search(r"\| gender \| \d+ \| \w+ \(\d+\) \| \w+ \(\d+\) \| \d+\.\d% \|", md)  # majority share in %


def test_error_captions_name_task_truth_prediction_and_confidence():
    import numpy as np

    from vislab.labs.fashion.lab import _error_captions
    enc = {"gender": ["Men", "Women"], "baseColour": ["Black", "Navy Blue"], "season": ["Fall", "Summer"]}
    targets = np.array([[1, 0, 0], [0, 1, -1]])
    preds = np.array([[0, 0, 1], [0, 0, 1]])
    conf = np.array([[0.81, 0.9, 0.55], [0.99, 0.6, 0.7]])
    caps = _error_captions(enc, targets, preds, conf, np.array([0, 1]))
    assert caps[0] == "gender: Women -> Men 81%\nseason: Fall -> Summer 55%"
    assert caps[1] == "baseColour: Navy Blue -> Black 60%"  # an unknown label (-1) is never called wrong
