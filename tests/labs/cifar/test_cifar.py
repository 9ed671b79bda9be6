"""The CIFAR-10 lab end to end on a tiny generated class-folder set (seconds), and a short
real-data run on ../shared/data/cifar10 (skipped without it, failing under CI=true)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from helpers import write_shapes
from vislab.core.config import load_config
from vislab.labs.cifar import lab as cifar
from vislab.labs.cifar.config import CifarRunConfig


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    root = write_shapes(tmp_path_factory.mktemp("shapes"))
    (root / "train" / "disc" / "README.txt").write_text("not an image")
    (root / "train" / "square" / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    return root


def _cfg(shapes, tmp, model="cnn-bn", **extra):
    ov = {"data.root": str(shapes), "data.val_per_class": 10, "model.name": model, "train.epochs": 3,
          "train.batch_size": 32, "out_dir": str(tmp), "name": model.replace(":", "-")}
    ov.update(extra)
    return load_config(None, [f"{k}={v}" for k, v in ov.items()], model=CifarRunConfig)


@pytest.fixture(scope="module")
def shapes_run(shapes, tmp_path_factory):
    cfg = _cfg(shapes, tmp_path_factory.mktemp("runs"), **{"train.lr": 3e-3})
    return cifar.train(cfg, progress=False), cfg


def test_train_writes_metrics_report_and_insight_plots(shapes_run):
    run_dir, cfg = shapes_run
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["n_test"] == 60 and m["recipe"] == "cnn-adam" and m["epochs"] == 3
    assert m["accuracy"] > 0.6  # chance is 1/3
    assert set(m["per_class"]) == {"disc", "square", "stripes", "macro avg"}
    assert m["macro_f1"] == pytest.approx(np.mean([m["per_class"][c]["f1"] for c in ("disc", "square", "stripes")]))
    assert m["trainable_params"] == sum(p.numel() for p in cifar.build_model(cfg, 3).parameters() if p.requires_grad)
    figs = {p.name for p in (run_dir / "figures").iterdir()}
    assert {"confusion.png", "tsne.png", "per_class.png", "curves.png", "val_classes.png"} <= figs
    assert sum(n.startswith("featuremap") for n in figs) >= 3  # one grid per conv stage
    html = (run_dir / "report.html").read_text()
    assert "t-SNE" in html and "Most confused pairs" in html and "Feature maps" in html
    assert len(json.loads((run_dir / "checkpoints" / "best.json").read_text())["classes"]) == 3


def test_explain_peaks_on_the_only_content_and_beats_random_deletion(shapes_run, tmp_path):
    """The classes differ by colour; an image whose only content is a red square is explained on the square,
    and removing the most salient 20% of pixels costs more confidence than removing 20% at random."""
    from PIL import Image

    from vislab.core.augment import BatchAugment
    from vislab.core.gradcam import GradCAM, deletion_test
    run_dir, cfg = shapes_run
    img = np.zeros((32, 32, 3), np.uint8)
    img[2:12, 18:28, 0] = 230
    Image.fromarray(img).save(tmp_path / "square.png")
    res = run("cifar", "explain", run_dir, tmp_path / "square.png", "--out", tmp_path / "why.png")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.startswith("square (") and "gradcam at features.1" in res.stdout
    assert (tmp_path / "why.png").is_file()
    from vislab.labs.cifar.explain import explain
    info = explain(run_dir, tmp_path / "square.png", label="square")["attributes"]["class"]
    r, c = info["peak"][0] * 32, info["peak"][1] * 32
    assert 0 <= r < 14 and 16 <= c < 30, info["peak"]  # on the square (8x8 map: 4-pixel cells)
    res = run("cifar", "explain", run_dir, tmp_path / "square.png", "--class", "circle")
    assert res.returncode == 2 and "is not a class label" in res.stderr
    net, meta = cifar.load_model(run_dir / "checkpoints" / "best.safetensors")
    data = cifar.load_data(cfg, progress=False)
    norm = BatchAugment("none", meta["mean"], meta["std"]).eval()
    m = deletion_test(GradCAM(net), torch.from_numpy(np.array(data.test.images)), norm, 0.2, fill=(40, 40, 40))
    m = m["class"]
    assert m["images"] == 60 and m["drop_salient"] > m["drop_random"] + 0.05, m


def test_split_sizes_and_skipped_files(shapes, tmp_path):
    data = cifar.load_data(_cfg(shapes, tmp_path), progress=False)
    assert len(data.val_rows) == 30 and len(data.train_rows) == 150 and len(data.test) == 60
    assert np.bincount(data.train.labels[data.val_rows]).tolist() == [10, 10, 10]
    assert data.train.skipped == {"not an image file (by extension)": 1, "unreadable (corrupt or not an image)": 1}


def test_evaluate_checks_model_and_lab(shapes_run, tiny_run, tmp_path):
    run_dir, _ = shapes_run
    ck = run_dir / "checkpoints" / "best.safetensors"
    res = run("cifar", "evaluate", ck, "--out", tmp_path / "ev", "--no-progress")
    assert res.returncode == 0, res.stderr
    again = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    first = json.loads((run_dir / "metrics.json").read_text())
    assert again["accuracy"] == pytest.approx(first["accuracy"])  # same checkpoint, same test set
    res = run("cifar", "evaluate", ck, "--model", "mlp")
    assert res.returncode == 1 and "holds a 'cnn-bn' model, not 'mlp'" in res.stderr
    fashion_ck = tiny_run[0] / "checkpoints" / "best.safetensors"
    res = run("cifar", "evaluate", fashion_ck)
    assert res.returncode == 1 and "is a 'fashion' checkpoint, not a CIFAR one" in res.stderr
    res = run("fashion", "evaluate", ck)  # the same wording the other way round, not the foreign config's fields
    assert res.returncode == 1 and "is a 'cifar' checkpoint, not a fashion one" in res.stderr
    assert "unknown field" not in res.stderr and "Traceback" not in res.stderr


def test_cli_models_list_and_bad_specs(tmp_path):
    res = run("cifar", "models")
    assert res.returncode == 0, res.stderr
    assert "7,771,658" in res.stdout and "blocks:AAAAAAAA" in res.stdout
    res = run("cifar", "train", "--model", "resnet-9000", "--out", tmp_path)
    assert res.returncode == 1 and "mlp" in res.stderr and "cnn-bn" in res.stderr
    res = run("cifar", "train", "--model", "blocks:ABCDEFGH", "--out", tmp_path)
    assert res.returncode == 1 and "'F', 'G', 'H'" in res.stderr and "valid letters are A-E" in res.stderr


def test_compare_and_preview(shapes, tmp_path):
    cfg = _cfg(shapes, tmp_path, **{"train.epochs": 1})
    out = cifar.compare(cfg, ["mlp", "cnn"], progress=False)
    comp = json.loads((out / "comparison.json").read_text())
    assert list(comp) == ["mlp", "cnn"]
    assert comp["mlp"]["recipe"] == "mlp-sgd" and comp["cnn"]["recipe"] == "cnn-adam"
    assert comp["mlp"]["trainable_params"] == 32 * 32 * 3 * 256 + 256 + 256 * 128 + 128 + 128 * 3 + 3
    html = (out / "report.html").read_text()
    assert "accuracy_vs_time" in html or "Models" in html
    p = cifar.preview(cfg, tmp_path / "pv", progress=False)
    assert {"augmentations.png", "train_batch.png", "val_classes.png"} <= {q.name for q in (p / "figures").iterdir()}


@pytest.mark.realdata
def test_real_cifar_short_run_beats_chance_widely(cifar10, tmp_path):
    """~1 minute on 2 CPU cores: cnn-bn, 2 epochs on 500 images per class."""
    cfg = load_config(None, [f"data.root={cifar10}", "data.limit_per_class=500", "data.val_per_class=50",
                             "model.name=cnn-bn", "train.epochs=2", f"out_dir={tmp_path}"], model=CifarRunConfig)
    run_dir = cifar.train(cfg, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["n_test"] == 5000
    assert m["accuracy"] > 0.35, m["accuracy"]  # chance 0.10
    assert min(v["recall"] for k, v in m["per_class"].items() if k != "macro avg") > 0.0


def test_transfer_input_size_and_freeze_come_from_config():
    import torch
    cfg = load_config(None, ["model.name=transfer:efficientnet_lite0", "model.pretrained=false", "model.freeze=0",
                             "model.input_size=48"], model=CifarRunConfig)
    net = cifar.build_model(cfg, 10).eval()
    assert all(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        stages = net.stages(torch.randn(2, 3, 32, 32))
        out = net(torch.randn(2, 3, 32, 32))
    assert stages[0][1].shape[-2:] == (24, 24)  # stride-2 stem on the 48x48 upsampled input
    assert out.shape == (2, 10)
    frozen = cifar.build_model(load_config(None, ["model.name=transfer:efficientnet_lite0", "model.pretrained=false"],
                                           model=CifarRunConfig), 10)
    assert frozen.input_size == 64 and not all(p.requires_grad for p in frozen.parameters())


def test_class_balance_reaches_the_cifar_objective(shapes, tmp_path, monkeypatch):
    from vislab.core.objectives import ClassificationObjective, class_balance_weights
    seen = {}

    class Spy(ClassificationObjective):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.setdefault("weights", self.class_weights)

    monkeypatch.setattr(cifar, "ClassificationObjective", Spy)
    cfg = _cfg(shapes, tmp_path, **{"train.class_balance": 1.0, "train.max_steps": 1})
    cifar.train(cfg, progress=False, report=False)
    data = cifar.load_data(cfg, progress=False)
    labels = data.train.labels[data.train_rows]
    w = seen["weights"]["label"].cpu().numpy()
    np.testing.assert_allclose(w, class_balance_weights(labels, 3, 1.0).numpy())
    np.testing.assert_allclose(np.bincount(labels) * w, len(labels) / 3, rtol=1e-5)
