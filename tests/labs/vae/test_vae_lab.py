"""Generative lab end to end on the real Fashion-MNIST: short training runs lower the test loss, the
shipped classifier is >= 92% accurate, FID (a) tells samples from test images, the cVAE is controllable
beyond chance, and every `vislab vae` command works (including its bad-input errors)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from vislab.cli import app
from vislab.core.config import load_config
from vislab.labs.vae import lab as vae
from vislab.labs.vae.config import VaeRunConfig
from vislab.labs.vae.data import FASHION_MNIST_CLASSES, load_data
from vislab.labs.vae.metrics import class_id, generate, iwae_bound, traversal, traversal_dims
from vislab.labs.vae.models import create_vae_model

FAST_EVAL = ["eval.fid_n=1000", "eval.controllability_n=100", "eval.tsne=false"]


def _cfg(root, out, *extra):
    return load_config(None, [f"data.root={root}", "data.limit_per_class=1000", "data.val_per_class=50",
                              "train.epochs=3", "train.lr=0.002", f"out_dir={out}", *FAST_EVAL, *extra],
                       model=VaeRunConfig)


@pytest.fixture(scope="module")
def runs(fashion_mnist, tmp_path_factory):
    """A conv VAE and a cVAE trained for 3 epochs on 1,000 images per class, with their data: about a minute each on
    2 CPU cores, two thirds of it the evaluation (FID, controllability, the fitted prior's temperature sweep). With
    500 images per class the cVAE's controllability falls below the 0.3 asserted below."""
    out = tmp_path_factory.mktemp("vae-runs")
    cfg = _cfg(fashion_mnist, out, "name=conv")
    data = load_data(cfg)
    torch.manual_seed(0)
    untrained = vae.test_loss(create_vae_model("conv-vae").eval(), data.test.images, data.test.labels, 1.0, "bernoulli")
    conv = vae.train(cfg, progress=False, data=data)
    cvae = vae.train(_cfg(fashion_mnist, out, "name=cvae", "model.name=cvae"), progress=False, data=data)
    return {"conv": conv, "cvae": cvae, "data": data, "untrained": untrained, "out": out}


@pytest.mark.realdata
def test_short_real_run_lowers_the_test_loss(runs):
    data = runs["data"]
    assert len(data.train_rows) == 10000 and len(data.val_rows) == 500 and not set(data.train_rows) & set(data.val_rows)
    for name in ("conv", "cvae"):
        m = json.loads((runs[name] / "metrics.json").read_text())
        t = m["test_nats_per_image"]
        assert t["total"] < runs["untrained"]["total"] - 100  # ~523 -> ~333 nats per image here
        assert t["total"] == pytest.approx(t["recon"] + t["kl"], rel=1e-5) and t["kl"] > 0
        assert 0 < m["active_dims"] <= m["latent_dim"] and m["fid"]["n"] == 1000
        for f in ("reconstructions", "samples", "traversal", "samples_per_class"):
            assert (runs[name] / "plots" / f"{f}.png").is_file()
        assert (runs[name] / "report.html").is_file()
    sweep = json.loads((runs["conv"] / "metrics.json").read_text())["fitted_prior"]["temperature_sweep"]
    assert len(sweep) == 4 and not any("controllability" in r for r in sweep)  # unconditional: FID only


@pytest.mark.realdata
def test_shipped_classifier_accuracy_and_fid_separates_samples_from_test_images(runs):
    from vislab.labs.vae.classifier import classify, fid_classifier, load_classifier
    clf, meta = load_classifier()
    t = runs["data"].test
    pred, prob = classify(clf, t.images)
    acc = float((pred == t.labels).mean())
    assert acc >= 0.92 and acc == pytest.approx(meta["test_accuracy"], abs=1e-6)  # the bar, measured here
    assert prob.shape == (10000, 10) and np.allclose(prob.sum(1), 1, atol=1e-5)
    a, b = t.images[:2000], t.images[2000:4000]
    model, _, _ = vae.load_model(runs["conv"])
    fake = generate(model, 2000, seed=0)
    real_vs_real, real_vs_fake = fid_classifier(a, b, clf), fid_classifier(a, fake, clf)
    assert real_vs_real < 0.25 * real_vs_fake  # two test halves are far closer than test vs 2-epoch samples
    m = json.loads((runs["conv"] / "metrics.json").read_text())
    assert m["fid"]["classifier"] > real_vs_real and m["fid"]["classifier_test_accuracy"] == meta["test_accuracy"]


@pytest.mark.realdata
def test_cvae_controllability_beats_chance_and_unconditional_grid_is_by_predicted_class(runs):
    m = json.loads((runs["cvae"] / "metrics.json").read_text())
    c = m["controllability"]
    assert set(c["per_class"]) == set(FASHION_MNIST_CLASSES) and c["n_per_class"] == 100
    assert c["mean"] == pytest.approx(np.mean(list(c["per_class"].values())))
    assert c["worst"] == min(c["per_class"].values()) and c["mean"] > 0.3  # chance is 0.1; ~0.8 after 2 short epochs
    cm = np.array(c["confusion"])
    assert cm.sum() == 1000 and np.allclose(np.diag(cm) / 100, [c["per_class"][k] for k in FASHION_MNIST_CLASSES])
    assert len(m["detail_classes"]) == 3 and (runs["cvae"] / "plots" / "detail_classes.png").is_file()
    assert "controllability" not in json.loads((runs["conv"] / "metrics.json").read_text())
    r = m["reconstruction_accuracy"]  # the classifier on reconstructions of the 10,000 test images
    assert (set(r["per_class"]) == set(FASHION_MNIST_CLASSES)
            and r["mean"] == pytest.approx(np.mean(list(r["per_class"].values()))))
    assert r["mean"] > 0.5 and r["per_class"]["Trouser"] > 0.8
    f = m["fitted_prior"]  # samples from Gaussians fitted per class to the training codes
    assert f["controllability"]["mean"] > c["mean"]  # the decoder draws its own classes better than N(0, I)'s holes
    assert f["fid"]["classifier"] < m["fid"]["classifier"]
    assert (runs["cvae"] / "checkpoints" / "best.prior.safetensors").is_file()
    assert (runs["cvae"] / "plots" / "samples_per_class_fitted.png").is_file()
    sweep = f["temperature_sweep"]  # the default temperatures beside 1, falling
    assert [r["temperature"] for r in sweep] == [1.0, 0.8, 0.6, 0.4]
    assert sweep[0]["fid_classifier"] == f["fid"]["classifier"] and sweep[0]["controllability"] == f["controllability"]
    assert (len({r["fid_classifier"] for r in sweep}) == 4
            and all(r["controllability"]["n_per_class"] == 100 for r in sweep))
    assert (runs["cvae"] / "plots" / "temperature_sweep.png").is_file() and "T 0.4: FID (a)" in vae._summary_text(m)


@pytest.mark.realdata
def test_iwae_bound_is_tighter_than_the_elbo(runs):
    model, _, _ = vae.load_model(runs["conv"])
    t = runs["data"].test
    x, y = t.images[:300], t.labels[:300]
    elbo = -vae.test_loss(model, x, y, 1.0, "bernoulli")["total"]
    k1 = iwae_bound(model, x, y, k=1)
    k64 = iwae_bound(model, x, y, k=64)
    assert k1 == pytest.approx(elbo, abs=3.0)  # k=1 is the ELBO (different z draws)
    assert elbo < k64 < elbo + 50  # log p(x) >= IWAE_64 >= ELBO in expectation


@pytest.mark.realdata
def test_traversal_moves_one_dimension_at_a_time(runs):
    model, _, _ = vae.load_model(runs["conv"])
    z0 = np.zeros(model.latent_dim, np.float32)
    grid = traversal(model, z0, dims=[0, 5], values=[-3.0, 0.0, 3.0])
    assert grid.shape == (6, 1, 28, 28)
    base = model.mean_image(model.decode(torch.from_numpy(z0)[None]))
    assert torch.allclose(grid[1], base[0], atol=1e-6) and torch.allclose(grid[4], base[0], atol=1e-6)  # value 0 = z0
    assert not torch.allclose(grid[0], grid[2])
    kld = np.array([0.0, 2.0, 0.5, 3.0])
    assert traversal_dims(kld, 2) == [3, 1] and traversal_dims(kld, 2, "first") == [0, 1]
    assert traversal_dims(kld, 9) == [3, 1, 2, 0]


@pytest.mark.realdata
def test_vae_cli_commands(runs, tmp_path, fashion_mnist):
    r = CliRunner()
    png = tmp_path / "coats.png"
    res = r.invoke(app, ["vae", "sample", str(runs["cvae"]), "--class", "Coat", "--n", "16", "--out", str(png)])
    assert res.exit_code == 0, res.output
    from PIL import Image
    assert Image.open(png).size[0] > 200
    res = r.invoke(app, ["vae", "sample", str(runs["cvae"]), "--class", "Coat", "--prior", "fitted", "--n", "4",
                         "--out", str(tmp_path / "fitted.png")])
    assert res.exit_code == 0 and (tmp_path / "fitted.png").is_file(), res.output
    saved = runs["conv"] / "checkpoints" / "best.prior.safetensors"
    saved.unlink()  # no saved prior: sample fits one on the run's training data and saves it
    res = r.invoke(app, ["vae", "sample", str(runs["conv"]), "--prior", "fitted", "--n", "4"])
    assert res.exit_code == 0 and saved.is_file(), res.output
    os.utime(saved, (1, 1))  # older than its checkpoint (a resumed run's new best): refitted, not reused
    res = r.invoke(app, ["vae", "sample", str(runs["conv"]), "--prior", "fitted", "--n", "4"])
    assert res.exit_code == 0 and saved.stat().st_mtime > 1, res.output
    res = r.invoke(app, ["vae", "sample", str(runs["cvae"]), "--prior", "uniform"])
    assert res.exit_code == 2 and "--prior must be one of standard, fitted; got 'uniform'" in res.output
    res = r.invoke(app, ["vae", "sample", str(runs["cvae"]), "--class", "Parka"])
    assert res.exit_code == 1 and "unknown class 'Parka'" in res.output
    for c in FASHION_MNIST_CLASSES:
        assert c in res.output.replace("\n", "")
    res = r.invoke(app, ["vae", "sample", str(runs["conv"]), "--class", "Coat"])
    assert res.exit_code == 1 and "unconditional" in res.output
    res = r.invoke(app, ["vae", "traverse", str(runs["conv"]), "--k", "4", "--out", str(tmp_path / "t.png")])
    assert res.exit_code == 0 and (tmp_path / "t.png").is_file()
    res = r.invoke(app, ["vae", "traverse", str(runs["conv"]), "--order", "first"])
    assert res.exit_code == 0 and (runs["conv"] / "plots" / "traversal-first-0.png").is_file()
    res = r.invoke(app, ["vae", "evaluate", str(runs["cvae"]), "--fid-n", "500", "--detail", "Shirt,Coat,Bag",
                         "--temperatures", "0.5"])
    assert res.exit_code == 0, res.output
    m = json.loads((runs["cvae"] / "metrics.json").read_text())
    assert m["fid"]["n"] == 500 and m["detail_classes"] == ["Shirt", "Coat", "Bag"]
    assert [r["temperature"] for r in m["fitted_prior"]["temperature_sweep"]] == [1.0, 0.5]
    res = r.invoke(app, ["vae", "evaluate", str(runs["conv"]), "--temperatures", "cold"])
    assert res.exit_code == 2 and "--temperatures takes comma-separated numbers" in res.output
    res = r.invoke(app, ["vae", "compare", str(runs["conv"]), str(runs["cvae"]), "--out", str(tmp_path / "cmp")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cmp" / "results.json").read_text()).keys() == {"conv-vae beta 1", "cvae beta 1"}
    assert (tmp_path / "cmp" / "traversals.png").is_file() and "FID (a)" in (tmp_path / "cmp" / "report.md").read_text()
    res = r.invoke(app, ["vae", "evaluate", str(runs["conv"]), "--inception-weights", str(tmp_path / "nope.pth")])
    assert res.exit_code == 1 and "nope.pth" in res.output and "not found" in res.output
    res = r.invoke(app, ["vae", "train", "--data", str(fashion_mnist), "--beta", "0"])
    assert res.exit_code == 1 and "beta must be > 0" in res.output
    res = r.invoke(app, ["vae", "train", "--data", str(tmp_path), "--out", str(tmp_path / "runs")])
    assert res.exit_code == 1 and str(tmp_path) in res.output


@pytest.mark.realdata
def test_eda_numbers(fashion_mnist, tmp_path):
    cfg = load_config(None, [f"data.root={fashion_mnist}"], model=VaeRunConfig)
    out = vae.eda(cfg, tmp_path / "eda")
    s = json.loads((out / "eda.json").read_text())
    assert s["counts"]["train"] == {c: 6000 for c in FASHION_MNIST_CLASSES}
    assert s["counts"]["test"] == {c: 1000 for c in FASHION_MNIST_CLASSES}
    tr, _ = load_data(cfg).train, None
    want = float((tr.images.reshape(len(tr), -1) > 0).mean())
    assert s["nonzero_share"]["train"] == pytest.approx(want, rel=1e-9) and 0.3 < want < 0.7
    assert s["nonzero_share_per_class"]["Sandal"] < s["nonzero_share_per_class"]["Pullover"]
    for f in ("classes_train", "classes_test", "pixel_intensity", "nonzero_share", "examples"):
        assert (out / "plots" / f"{f}.png").is_file()


def test_class_names_resolve_and_unknown_ones_list_the_ten():
    assert class_id("Coat", FASHION_MNIST_CLASSES) == 4 and class_id("coat", FASHION_MNIST_CLASSES) == 4
    assert class_id("T-shirt", FASHION_MNIST_CLASSES) == 0 and class_id("9", FASHION_MNIST_CLASSES) == 9
    with pytest.raises(ValueError) as e:
        class_id("Hat", FASHION_MNIST_CLASSES)
    assert all(c in str(e.value) for c in FASHION_MNIST_CLASSES)


def test_inception_fid_missing_weights_is_a_clear_error(tmp_path):
    from vislab.labs.vae.classifier import InceptionWeightsMissing, fid_inception
    x = np.zeros((4, 1, 28, 28), np.uint8)
    with pytest.raises(InceptionWeightsMissing, match="weights-inception-2015-12-05"):
        fid_inception(x, x, tmp_path / "missing.pth")


class _NotAWeight:
    pass


def test_inception_fid_runs_from_a_weights_path_and_refuses_pickled_code(tmp_path, monkeypatch):
    """The --inception-weights path end to end with randomly initialised Inception weights of the right
    layout (the real file needs internet): FID(a, a) ~ 0 < FID(a, darker a); a file with pickled objects is refused."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from vislab.core.checkpoint import CheckpointError
    from vislab.labs.vae.classifier import fid_inception
    monkeypatch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    monkeypatch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
    torch.manual_seed(0)
    sd = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    monkeypatch.undo()
    path = tmp_path / "inception.pth"
    torch.save(sd, path)
    g = torch.Generator().manual_seed(0)
    a = (torch.rand(8, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    same, far = fid_inception(a, a, path), fid_inception(a, a // 3, path)
    assert abs(same) < 1e-3 * far and far > 0
    bad = tmp_path / "evil.pth"
    torch.save({"w": _NotAWeight()}, bad)
    with pytest.raises(CheckpointError, match="weights-only"):
        fid_inception(a, a, bad)


def test_mosaic_layout():
    from vislab.labs.vae.plots import _mosaic
    imgs = np.stack([np.full((1, 28, 28), i * 20, np.uint8) for i in range(6)])
    m = _mosaic(imgs, 2, 3)
    assert m.shape == (2 * 29 - 1, 3 * 29 - 1)
    assert m[0, 0] == 0 and m[0, 29] == pytest.approx(20 / 255) and m[29, 0] == pytest.approx(60 / 255)
    assert m[28, 0] == 1.0  # the gap between rows is white


@pytest.mark.realdata
def test_nan_loss_stops_a_vae_run_with_a_clear_error(fashion_mnist, tmp_path, monkeypatch):
    real_build = vae.build_model

    def poisoned(cfg):
        m = real_build(cfg)
        with torch.no_grad():
            m.mu.weight.fill_(float("nan"))
        return m

    monkeypatch.setattr(vae, "build_model", poisoned)
    res = CliRunner().invoke(app, ["vae", "train", "--data", str(fashion_mnist), "--limit-per-class", "20",
                                   "--epochs", "1", "--out", str(tmp_path), "--no-progress"])
    assert res.exit_code == 1 and "loss is nan at epoch 1, step 1" in res.output.replace("\n", " ")
