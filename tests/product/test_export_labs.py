"""`vislab export` of the CIFAR and Siamese labs' models: the graph answers like the lab's own inference
code (logits and features; embeddings), the metadata is enough to use it, and the parity gate holds."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from helpers import write_people, write_shapes
from vislab.core.config import load_config

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")




@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return write_shapes(tmp_path_factory.mktemp("shapes"), train=30, test=10)


def cifar_run(shapes, out, model: str, **extra):
    from vislab.labs.cifar import lab as cifar
    from vislab.labs.cifar.config import CifarRunConfig
    ov = {"data.root": str(shapes), "data.val_per_class": 5, "model.name": model, "model.pretrained": "false",
          "train.epochs": 1, "train.batch_size": 16, "out_dir": str(out), "name": model.replace(":", "-"), **extra}
    cfg = load_config(None, [f"{k}={v}" for k, v in ov.items()], model=CifarRunConfig)
    return cifar.train(cfg, progress=False, report=False)


@pytest.mark.parametrize("model", ["cnn-bn", "blocks:ABCDEABC", "fastnet", "transfer:efficientnet_lite0"])
def test_cifar_models_export_and_answer_like_the_lab(model, shapes, tmp_path):
    """Every CIFAR family: BN + dropout, the attention/SE/residual/grouped blocks, the whitened GELU net with
    its max-pool and scale, and the Lite0 transfer net that resizes inside."""
    from vislab.labs.cifar.lab import load_data, load_model, predict_set
    from vislab.product.export import export_onnx
    from vislab.product.parity import read_onnx_meta
    run_dir = cifar_run(shapes, tmp_path, model)
    path, report = export_onnx(run_dir, tmp_path / "cifar.onnx")
    net, ck = load_model(run_dir / "checkpoints" / "best.safetensors")
    meta = read_onnx_meta(path)
    assert meta["lab"] == "cifar" and meta["backbone"] == model and meta["input"]["size"] == [32, 32]
    assert meta["outputs"] == {"class": {"kind": "logits", "labels": ["disc", "square", "stripes"]}}
    assert meta["input"]["normalisation"]["mean"] == ck["mean"] and meta["embedding"]["name"] == "embedding"
    assert report["images"] == 30 and report["label_agreement"] == {"class": 1.0}  # the whole test split
    assert report["max_abs_logit_diff"]["class"] < 1e-3 and report["max_abs_embedding_diff"] < 1e-3
    images = np.asarray(load_data(_cfg(ck), progress=False).test.images)
    logits, feats = predict_set(net, images, ck["mean"], ck["std"], features=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got_logits, got_feats = sess.run(None, {"image": images[:7]})
    assert np.abs(got_logits - logits[:7]).max() < 1e-3 and np.abs(got_feats - feats[:7]).max() < 1e-3
    assert (got_logits.argmax(1) == logits[:7].argmax(1)).all()


def _cfg(meta):
    from vislab.labs.cifar.config import CifarRunConfig
    return CifarRunConfig.model_validate(meta["config"])


def test_a_wrong_cifar_graph_fails_the_gate_and_the_cli_refusals(shapes, tmp_path, monkeypatch):
    from vislab.product import export as ex
    run_dir = cifar_run(shapes, tmp_path, "cnn")
    res = run("export", run_dir, "--int8", "--out", tmp_path / "q.onnx")
    assert res.returncode == 2 and "--int8 is offered for fashion models" in res.stderr
    res = run("export", run_dir, "--out", tmp_path / "cli.onnx")
    assert res.returncode == 0, res.stderr
    assert "parity on 30 images" in res.stdout and "labels agree 100.00%" in res.stdout
    real = ex._export

    def skewed(model, example, names, opset):
        with torch.no_grad():
            model.net.fc.bias[0] += 5.0
            proto = real(model, example, names, opset)
            model.net.fc.bias[0] -= 5.0
        return proto

    monkeypatch.setattr(ex, "_export", skewed)
    with pytest.raises(ex.ExportError, match="parity gate failed for class"):
        ex.export_onnx(run_dir, tmp_path / "bad.onnx")
    assert not (tmp_path / "bad.onnx").exists()


@pytest.mark.parametrize("extra", [{}, {"model.fine_tune": "false", "model.wccn": 0.3, "model.feature_level": 2,
                                    "model.feature_grid": 2}], ids=["fine-tuned", "grid-wccn"])
def test_siamese_export_gives_the_embedding_verify_uses(tmp_path, extra):
    """A fine-tuned projection, and the untrained grid of an intermediate feature map whitened by WCCN."""
    from vislab.core.data.images import load_image
    from vislab.labs.siamese import lab as S
    from vislab.labs.siamese.config import SiameseRunConfig
    from vislab.labs.siamese.data import load_data
    from vislab.product.export import export_onnx
    from vislab.product.parity import read_onnx_meta
    root = write_people(tmp_path / "faces", {f"p{k}": 6 for k in range(12)}, size=(40, 32))
    ov = {"data.root": root, "data.image_size": "[40,32]", "data.cache_dir": tmp_path / "cache",
          "model.backbone": "test_efficientnet", "model.pretrained": "false", "model.embedding_dim": 16,
          "train.epochs": 1, "train.batch_size": 8, "out_dir": tmp_path / "runs", "name": "faces", **extra}
    cfg = load_config(None, [f"{k}={v}" for k, v in ov.items()], model=SiameseRunConfig)
    run_dir = S.train(cfg, progress=False)  # the report writes verification.json (the validation threshold)
    path, report = export_onnx(run_dir, tmp_path / "faces.onnx")
    meta = read_onnx_meta(path)
    verification = json.loads((run_dir / "verification.json").read_text())
    assert meta["lab"] == "siamese" and meta["outputs"] == {} and meta["input"]["size"] == [40, 32]
    net, ck, _ = S.load_model(run_dir / "checkpoints" / "best.safetensors")
    dim = 16 if not extra else net.backbone.feature_info[2]["num_chs"] * 4
    assert net.embedding_dim == dim and (net.whiten is not None) == bool(extra)
    assert meta["embedding"] == {"name": "embedding", "kind": "face embedding", "dim": dim, "l2_normalised": True,
                                 "distance": "euclidean"}
    assert meta["verification"]["threshold"] == verification["threshold"]
    data = load_data(cfg, progress=False)
    assert report["images"] == len(data.split.test) and report["label_agreement"] == {}
    assert report["max_abs_embedding_diff"] < 1e-4
    images = np.asarray(data.images[:9])
    want = S.embed(net, images, ck["mean"], ck["std"]).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["embedding"], {"image": images})[0]
    assert got.shape == (9, dim) and np.abs(got - want).max() < 1e-4
    assert np.linalg.norm(got, axis=1) == pytest.approx(np.ones(9), abs=1e-5)
    # the same/different decision a consumer makes from the file and its metadata alone is verify's
    a, b = root / "p0" / "0.pgm", root / "p3" / "1.pgm"
    pair = np.stack([load_image(f, (40, 32)).transpose(2, 0, 1) for f in (a, b)])
    e = sess.run(["embedding"], {"image": pair})[0]
    d = float(np.linalg.norm(e[0] - e[1]))
    v = S.verify(run_dir, a, b)
    assert d == pytest.approx(v["distance"], abs=1e-4)
    assert (d <= meta["verification"]["threshold"]) == v["same"]
