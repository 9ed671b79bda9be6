"""`vislab fashion tag`: folders, globs and CSV catalogs in; one row per input out (errors included); the
same answers as the predictor; CSV and JSON Lines; thresholds; and a run killed mid-way that resumes to
exactly the rows of an uninterrupted run."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import CLI
from helpers import run_cli as run
from vislab.core.errors import DataError, UsageError
from vislab.labs.fashion.predict import Predictor
from vislab.product.inputs import resolve_inputs
from vislab.product.outputs import TagWriter, columns
from vislab.product.tag import tag


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def predictor(tiny_ckpt) -> Predictor:
    return Predictor.load(tiny_ckpt)


def test_folder_rows_match_the_predictor_and_errors_are_rows(predictor, catalog, tmp_path):
    items = resolve_inputs([str(catalog)])
    assert len(items) == 44  # recursive: 40 photos in two sub-folders + 4 odd files
    out = tmp_path / "tags.csv"
    with TagWriter(out, predictor.tasks) as w:
        s = tag(predictor, items, w, batch_size=16, workers=2, progress=False)
    rows = read_csv(out)
    assert [r["path"] for r in rows] == [x.path for x in items]
    assert list(rows[0]) == columns(predictor.tasks)
    bad = {Path(r["path"]).name: r["error"] for r in rows if r["error"]}
    assert set(bad) == {"empty.jpg", "notes.png", "truncated.jpg"}, bad
    assert "empty" in bad["empty.jpg"] and "cannot be decoded" in bad["truncated.jpg"]
    assert s.tagged == 41 and s.errors == 3 and s.skipped == 0
    good = [r for r in rows if not r["error"]]
    expected = predictor.predict_batch([r["path"] for r in good])
    for r, p in zip(good, expected):
        for t in predictor.tasks:
            assert r[t] == p.labels[t]
            assert float(r[f"{t}_confidence"]) == pytest.approx(p.confidences[t], abs=1e-4)
        top = json.loads(r["top_k"])
        assert [lab for lab, _ in top["articleType"]] == [lab for lab, _ in p.top_k["articleType"]]
        assert len(top["gender"]) == min(3, len(predictor.encoders["gender"]))
        assert r["caption"] == p.caption
        assert r["needs_review"] == str(p.needs_review).lower() and r["review"] == ";".join(p.review)
    assert s.needs_review == sum(r["needs_review"] == "true" for r in good)


def test_jsonl_and_threshold_override(tiny_ckpt, catalog, tmp_path):
    items = resolve_inputs([str(catalog / "shirts" / "*.jpg")])
    assert len(items) == 20
    lax = Predictor.load(tiny_ckpt, thresholds={t: 0.0 for t in Predictor.load(tiny_ckpt).tasks}, top_k=2)
    out = tmp_path / "tags.jsonl"
    with TagWriter(out, lax.tasks) as w:
        tag(lax, items, w, workers=0, progress=False)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 20 and all(not x["needs_review"] and x["error"] == "" for x in lines)
    a = lines[0]["attributes"]["gender"]
    assert len(a["top_k"]) == 2 and a["top_k"][0]["label"] == a["label"] and a["threshold"] == 0.0
    strict = Predictor.load(tiny_ckpt, thresholds={"gender": 1.0})
    assert all("gender" in p.review for p in strict.predict_batch([x.path for x in items[:5]]))


def test_csv_catalog_with_bad_rows(predictor, catalog, tmp_path):
    names = sorted(p.name for p in (catalog / "shoes").glob("*.jpg"))[:5]
    text = "id,title\n" + "".join(f"{Path(n).stem},item {i}\n" for i, n in enumerate(names))
    text += "missing-image,gone\n,empty cell\nlonely\n"  # a missing file, an empty cell, a short row
    (tmp_path / "catalog.csv").write_text(text)
    items = resolve_inputs([str(tmp_path / "catalog.csv")], image_col="id", image_dir=str(catalog / "shoes"))
    assert len(items) == 8
    out = tmp_path / "tags.csv"
    with TagWriter(out, predictor.tasks) as w:
        s = tag(predictor, items, w, workers=0, progress=False)
    rows = read_csv(out)
    assert len(rows) == 8 and s.tagged == 5 and s.errors == 3
    errors = " | ".join(r["error"] for r in rows if r["error"])
    assert "malformed CSV line 9" in errors and "empty 'id' cell" in errors and "does not exist" in errors
    with pytest.raises(DataError, match="no column 'sku'"):
        resolve_inputs([str(tmp_path / "catalog.csv")], image_col="sku")
    with pytest.raises(DataError, match="image folder"):
        resolve_inputs([str(tmp_path / "catalog.csv")], image_col="id", image_dir="nowhere")


def test_existing_output_needs_resume_or_overwrite(predictor, tmp_path):
    out = tmp_path / "tags.csv"
    out.write_text("x\n")
    with pytest.raises(UsageError, match="--resume"):
        TagWriter(out, predictor.tasks)
    with pytest.raises(DataError, match="other columns"):
        TagWriter(out, predictor.tasks, resume=True)
    TagWriter(out, predictor.tasks, overwrite=True).close()
    assert out.read_text().startswith("path,gender,gender_confidence")


def test_cli_errors_come_before_the_model(tiny_ckpt, tmp_path):
    t0 = time.monotonic()
    for args, code, text in ((["nowhere/"], 1, "no such file or folder"),
                             (["x/", "--format", "xml"], 2, "--format must be one of csv, jsonl"),
                             (["x/", "--threshold", "gender=2"], 2, "outside 0..1"),
                             (["x/", "--resume", "--overwrite"], 2, "contradict")):
        res = run("fashion", "tag", tiny_ckpt, *args, "--out", tmp_path / "t.csv")
        assert res.returncode == code, (args, res.stderr)
        assert text in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "t.csv").exists()
    assert time.monotonic() - t0 < 120


def test_killed_run_resumes_to_the_same_rows(tiny_ckpt, catalog, tmp_path):
    """SIGKILL mid-run, then --resume: every input exactly once, equal to an uninterrupted run."""
    full = tmp_path / "full.csv"
    res = run("fashion", "tag", tiny_ckpt, catalog, "--out", full, "--no-progress", "--workers", "0")
    assert res.returncode == 0, res.stderr
    assert "41 images tagged" in res.stdout and "3 unreadable" in res.stdout
    out = tmp_path / "killed.csv"
    proc = subprocess.Popen(CLI + ["fashion", "tag", str(tiny_ckpt), str(catalog), "--out", str(out),
                                   "--batch-size", "1", "--workers", "0", "--no-progress"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120 and (not out.exists() or out.read_text().count("\n") < 6):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_text().count("\n") - 1
    assert 5 <= partial < 44, partial
    with open(out, "a") as f:  # as if the kill came mid-write: half a row without its newline
        f.write("/half/a/row.jpg,Men,0.9")
    res = run("fashion", "tag", tiny_ckpt, catalog, "--out", out, "--resume", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert f"already in {out}" in res.stdout
    a, b = read_csv(full), read_csv(out)
    assert sorted(r["path"] for r in b) == sorted(r["path"] for r in a)  # each once, the half row gone
    by_path = {r["path"]: r for r in a}
    for r in b:
        want = by_path[r["path"]]
        assert r["error"] == want["error"] and r["caption"] == want["caption"]
        for t in ("gender", "articleType", "season"):
            assert r[t] == want[t]
            if want[t]:
                assert float(r[f"{t}_confidence"]) == pytest.approx(float(want[f"{t}_confidence"]), abs=2e-4)


def test_bf16_predictor_agrees_with_float32(tiny_ckpt, catalog):
    import torch
    files = sorted(catalog.rglob("*.jpg"))[:24]
    files = [f for f in files if f.stat().st_size > 1000]
    a, b = Predictor.load(tiny_ckpt), Predictor.load(tiny_ckpt, precision="bf16")
    assert next(b.net.parameters()).dtype == torch.bfloat16
    pa, pb = a.predict_batch(files), b.predict_batch(files)
    same = [p.labels[t] == q.labels[t] for p, q in zip(pa, pb) for t in a.tasks]
    assert sum(same) / len(same) >= 0.85
    diffs = [abs(p.confidences[t] - q.confidences[t]) for p, q in zip(pa, pb) for t in a.tasks]
    assert max(diffs) < 0.25 and sum(diffs) / len(diffs) < 0.05
    with pytest.raises(UsageError, match="precision must be one of"):
        Predictor.load(tiny_ckpt, precision="fp8")


def test_a_gpu_predictor_predicts_in_this_process(predictor, catalog, tmp_path):
    """A forked worker cannot use CUDA: with a non-CPU predictor the workers only decode."""
    import types

    class OnGpu:  # the real predictor, reporting a CUDA device
        device, image_size, tasks = types.SimpleNamespace(type="cuda"), predictor.image_size, predictor.tasks
        pids: set = set()

        def predict_arrays(self, x):
            self.pids.add(os.getpid())
            return predictor.predict_arrays(x)

    items = resolve_inputs([str(catalog / "shoes")])
    gpu = OnGpu()
    with TagWriter(tmp_path / "gpu.csv", predictor.tasks) as w:
        s = tag(gpu, items, w, batch_size=8, workers=2, progress=False)
    assert s.tagged == 20 and gpu.pids == {os.getpid()}
    with TagWriter(tmp_path / "cpu.csv", predictor.tasks) as w:
        tag(predictor, items, w, batch_size=8, workers=2, progress=False)
    a, b = read_csv(tmp_path / "gpu.csv"), read_csv(tmp_path / "cpu.csv")
    assert [(r["path"], r["articleType"], r["caption"]) for r in a] == [(r["path"], r["articleType"], r["caption"])
                                                                        for r in b]
