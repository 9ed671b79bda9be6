"""`vislab export`: one self-contained ONNX file that answers like the checkpoint (the parity gate), with
labels and preprocessing in its metadata, a dynamic batch axis, and clear errors for bad input."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from vislab.core.errors import CheckpointError

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")




@pytest.fixture(scope="module")
def exported(tiny_ckpt, tmp_path_factory):
    from vislab.product.export import export_onnx
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    path, report = export_onnx(tiny_ckpt, out)  # parity on the checkpoint's own test split
    return path, report


def test_export_is_one_file_with_its_contract(exported, tiny_ckpt):
    from vislab.core.checkpoint import read_meta
    from vislab.product.parity import read_onnx_meta
    path, report = exported
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]  # no .data file, no temp file
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)
    meta, ck = read_onnx_meta(path), read_meta(tiny_ckpt)
    assert meta["format"] == "vislab-onnx-1" and meta["lab"] == "fashion" and meta["opset"] == 18
    assert meta["input"]["size"] == ck["image_size"] and meta["input"]["dtype"] == "uint8"
    assert meta["input"]["normalisation"]["mean"] == ck["data_config"]["mean"]
    assert {t: o["labels"] for t, o in meta["outputs"].items()} == ck["encoders"]
    assert meta["review"]["thresholds"] == ck["review"]["thresholds"]
    assert report["images"] == ck["split_sizes"]["test"] and report["exporter"] == "torch.onnx dynamo"
    assert max(report["max_abs_logit_diff"].values()) < 1e-3 and report["max_abs_embedding_diff"] < 1e-3
    assert set(report["label_agreement"].values()) == {1.0}


def test_onnx_answers_like_the_predictor_at_any_batch_size(exported, tiny_ckpt, catalog):
    from vislab.labs.fashion.predict import Predictor
    path, _ = exported
    p = Predictor.load(tiny_ckpt)
    files = sorted((catalog / "shirts").glob("*.jpg"))[:7]
    x = p.preprocess(files).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == [*p.tasks, "embedding"] and sess.get_inputs()[0].name == "image"
    with torch.inference_mode():
        feats = p.net.float().forward_features(p.transform(torch.from_numpy(x)))
    emb = sess.run(["embedding"], {"image": x})[0]
    assert emb.shape == (7, p.net.num_features) and np.abs(emb - feats.numpy()).max() < 1e-3
    labels = json.loads(next(m for k, m in sess.get_modelmeta().custom_metadata_map.items() if k == "vislab"))
    for n in (1, 7):
        out = sess.run(None, {"image": x[:n]})
        want = p.predict_arrays(x[:n])
        for t, logits in zip(p.tasks, out):
            assert logits.shape == (n, len(p.encoders[t]))
            names = [labels["outputs"][t]["labels"][j] for j in logits.argmax(1)]
            assert names == [w.labels[t] for w in want]
            probs = torch.from_numpy(logits).softmax(-1).max(1).values.numpy()
            assert probs == pytest.approx([w.confidences[t] for w in want], abs=1e-4)


def test_a_wrong_graph_fails_the_gate_and_writes_nothing(tiny_ckpt, tmp_path, monkeypatch):
    from vislab.product import export as ex
    real = ex._export

    def skewed(model, example, names, opset):  # an exporter bug: the graph computes something else
        head = model.net.heads[model.tasks[-1]][1]
        with torch.no_grad():
            head.bias[0] += 5.0
            proto = real(model, example, names, opset)
            head.bias[0] -= 5.0
        return proto

    monkeypatch.setattr(ex, "_export", skewed)
    with pytest.raises(ex.ExportError, match="parity gate failed for articleType"):
        ex.export_onnx(tiny_ckpt, tmp_path / "bad.onnx")
    assert list(tmp_path.iterdir()) == []


def test_bad_input(tiny_ckpt, exported, tmp_path):
    from vislab.product.export import ExportError, export_onnx
    from vislab.product.parity import read_onnx_meta
    path, _ = exported
    raw = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        read_onnx_meta(tmp_path / "cut.onnx")
    import onnx
    m = onnx.load(str(path))
    del m.metadata_props[:]
    onnx.save_model(m, str(tmp_path / "plain.onnx"))
    with pytest.raises(CheckpointError, match="without vislab's metadata"):
        read_onnx_meta(tmp_path / "plain.onnx")
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export_onnx(tiny_ckpt, tmp_path / "a-file" / "model.onnx")
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_onnx(tiny_ckpt, tmp_path / "model.bin")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() != 0:  # root writes anywhere
        with pytest.raises(ExportError, match="cannot write"):
            export_onnx(tiny_ckpt, ro / "model.onnx")


def test_cli_export_and_refusals(tiny_ckpt, tmp_path, catalog):
    from safetensors.numpy import save_file
    other = tmp_path / "vae.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(other),
              metadata={"vislab": json.dumps({"format": "vislab-checkpoint-1", "lab": "vae", "config": {}})})
    res = run("export", other, "--out", tmp_path / "x.onnx")
    assert res.returncode == 1 and "'vae' checkpoint" in res.stderr and "Traceback" not in res.stderr
    res = run("export", tiny_ckpt, "--format", "tflite", "--out", tmp_path / "x.onnx")
    assert res.returncode == 2 and "--format" in res.stderr
    res = run("export", tiny_ckpt, "--out", tmp_path / "m.onnx", "--parity-images", catalog / "shoes")
    assert res.returncode == 0, res.stderr
    assert "parity on 20 images" in res.stdout and (tmp_path / "m.onnx").stat().st_size > 100_000


def test_onnx_backend_matches_torch_in_predict_tag_and_serve(exported, tiny_ckpt, catalog, tmp_path):
    import shutil

    from fastapi.testclient import TestClient

    from vislab.labs.fashion.predict import Predictor
    from vislab.product.backends import load_predictor
    from vislab.product.inputs import resolve_inputs
    from vislab.product.onnx_predictor import OnnxPredictor
    from vislab.product.outputs import TagWriter
    from vislab.product.serve.app import create_app
    from vislab.product.tag import tag
    path, _ = exported
    torch_p, onnx_p = Predictor.load(tiny_ckpt), load_predictor(path)
    assert isinstance(onnx_p, OnnxPredictor) and onnx_p.thresholds == torch_p.thresholds
    files = sorted(catalog.rglob("*.jpg"))
    files = [f for f in files if f.stat().st_size > 1000][:12]
    for a, b in zip(torch_p.predict_batch(files), onnx_p.predict_batch(files)):
        assert a.labels == b.labels and a.caption == b.caption and a.review == b.review
        assert a.confidences == pytest.approx(b.confidences, abs=1e-4)
    # tag: --backend onnx finds the export beside the checkpoint; rows equal the torch backend's
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_ckpt.parent.parent, run_dir)
    ck = run_dir / "checkpoints" / "best.safetensors"
    with pytest.raises(Exception, match="needs an exported model"):
        load_predictor(ck, "onnx")
    shutil.copy(path, ck.with_suffix(".onnx"))
    items = resolve_inputs([str(catalog)])
    rows = {}
    for backend in ("torch", "onnx"):
        with TagWriter(tmp_path / f"{backend}.jsonl", torch_p.tasks) as w:
            s = tag(load_predictor(ck, backend), items, w, workers=2, progress=False)
        assert s.tagged == 41 and s.errors == 3
        rows[backend] = [json.loads(x) for x in (tmp_path / f"{backend}.jsonl").read_text().splitlines()]
    for a, b in zip(rows["torch"], rows["onnx"]):
        assert a["path"] == b["path"] and a.get("caption") == b.get("caption") and bool(a["error"]) == bool(b["error"])
    # serve an .onnx file
    with TestClient(create_app(path)) as c:
        import time
        t0 = time.monotonic()
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() - t0 < 60
            time.sleep(0.05)
        assert c.get("/v1/model").json()["backend"] == "onnx"
        r = c.post("/v1/tag", files={"file": (files[0].name, files[0].read_bytes(), "image/jpeg")}).json()
        assert r["caption"] == torch_p.predict(files[0]).caption


def test_cli_predict_takes_an_onnx_file(exported, tiny_ckpt, catalog):
    path, _ = exported
    img = sorted((catalog / "shoes").glob("*.jpg"))[0]
    a, b = (run("fashion", "predict", m, img, "--json") for m in (tiny_ckpt, path))
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    ja, jb = json.loads(a.stdout)[0], json.loads(b.stdout)[0]
    assert ja["caption"] == jb["caption"]
    assert {t: v["label"] for t, v in ja["attributes"].items()} == {t: v["label"] for t, v in jb["attributes"].items()}
    res = run("fashion", "predict", path, img, "--backend", "torch")
    assert res.returncode == 2 and "ONNX model" in res.stderr


def test_int8_is_accuracy_gated(tiny_ckpt, tmp_path, catalog):
    from vislab.core.checkpoint import read_meta
    from vislab.product.backends import load_predictor
    from vislab.product.export import ExportError
    from vislab.product.parity import read_onnx_meta
    from vislab.product.quantize import export_int8
    with pytest.raises(ExportError, match="int8 is not offered for this model"):
        export_int8(tiny_ckpt, tmp_path / "no.onnx", calibration=32, max_drop=-1.0)
    assert not (tmp_path / "no.onnx").exists()
    out, rep = export_int8(tiny_ckpt, tmp_path / "m.int8.onnx", calibration=64, max_drop=100.0)
    ck = read_meta(tiny_ckpt)
    q = read_onnx_meta(out)["quantization"]
    assert q["calibration_images"] == 64 and q["calibration_split"] == "train"
    assert q["test_images"] == ck["split_sizes"]["test"] and q["accuracy_int8"] == rep["accuracy_int8"]
    assert rep["average_drop"] == pytest.approx(rep["accuracy_fp32"]["average"] - rep["accuracy_int8"]["average"])
    assert 0 <= rep["accuracy_int8"]["average"] <= 100 and rep["bytes"] < 0.7 * rep["fp32_bytes"]
    # the int8 model runs as a backend and mostly agrees with float32
    files = [f for f in sorted(catalog.rglob("*.jpg")) if f.stat().st_size > 1000][:16]
    a, b = load_predictor(tiny_ckpt).predict_batch(files), load_predictor(out).predict_batch(files)
    same = [x.labels[t] == y.labels[t] for x, y in zip(a, b) for t in x.labels]
    assert sum(same) / len(same) > 0.75


def test_efficientnet_lite0_exports_with_parity(synthetic_root, tmp_path_factory):
    """The project's real backbone (ReLU6, TF 'same' padding, depthwise convolutions) through the exporter."""
    from vislab.labs.fashion import lab
    from vislab.labs.fashion.config import load_config
    from vislab.product.export import export_onnx
    out = tmp_path_factory.mktemp("lite0")
    ov = {"data.root": str(synthetic_root), "data.image_size": "[32,24]", "data.min_samples": 5, "data.limit": 300,
          "model.backbone": "tf_efficientnet_lite0", "model.pretrained": "false", "train.epochs": 1,
          "train.batch_size": 32, "out_dir": str(out), "name": "lite0"}
    cfg = load_config(None, [f"{k}={v}" for k, v in ov.items()])
    run_dir = lab.train(cfg, progress=False, report=False)
    path, report = export_onnx(run_dir, out / "lite0.onnx")
    assert report["exporter"] == "torch.onnx dynamo" and report["images"] >= 30
    assert max(report["max_abs_logit_diff"].values()) < 1e-3 and set(report["label_agreement"].values()) == {1.0}


def test_onnx_tta_answers_like_the_torch_predictors_tta(exported, tiny_ckpt, catalog):
    from vislab.labs.fashion.predict import Predictor
    from vislab.product.onnx_predictor import OnnxPredictor
    files = sorted((catalog / "shirts").glob("*.jpg"))[:5]
    torch_p, onnx_p = Predictor.load(tiny_ckpt, tta=True), OnnxPredictor.load(exported[0], tta=True)
    x = torch_p.preprocess(files).numpy()
    (f_t, want), (f_o, got) = torch_p.embed_arrays(x), onnx_p.embed_arrays(x)
    assert np.abs(f_t - f_o).max() < 1e-3
    for w, g in zip(want, got):
        assert g.labels == w.labels
        assert [g.confidences[t] for t in w.labels] == pytest.approx([w.confidences[t] for t in w.labels], abs=1e-4)
    single = OnnxPredictor.load(exported[0]).embed_arrays(x)[0]
    assert np.abs(single - f_o).max() > 1e-3  # the mirror took part
