"""WCCN (model.wccn): the closed-form whitening on the training people, by hand, on a synthetic nuisance, and in a
short real run whose checkpoints carry it to evaluate, verify and the untrained baseline."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vislab.core.config import ConfigError, load_config
from vislab.labs.siamese import lab as S
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.metrics import pair_distances, verification_metrics
from vislab.labs.siamese.whiten import fit_model, fit_wccn


def _people(n_people, per, rng, identity_dims=4, nuisance=(3.0, 0.2)):
    """Embeddings whose person lies in the first `identity_dims` dimensions and whose within-person spread is
    large in the next dimensions (a nuisance, like pose) and small elsewhere."""
    d = identity_dims + 6
    centres = np.zeros((n_people, d))
    centres[:, :identity_dims] = rng.normal(0, 1, (n_people, identity_dims))
    spread = np.r_[np.full(identity_dims, nuisance[1]), np.full(6, nuisance[0])]
    x = np.repeat(centres, per, 0) + rng.normal(0, 1, (n_people * per, d)) * spread
    return x, np.repeat(np.arange(n_people), per)


def test_wccn_is_the_inverse_square_root_of_the_shrunk_within_person_covariance():
    rng = np.random.default_rng(0)
    x, y = _people(6, 5, rng)  # 30 rows, 10 dims: W has rank 24
    a, b = fit_wccn(x, y, 0.3)
    r = np.concatenate([x[y == p] - x[y == p].mean(0) for p in range(6)])
    w = r.T @ r / len(r)
    ws = 0.7 * w + 0.3 * np.trace(w) / 10 * np.eye(10)
    ev, u = np.linalg.eigh(ws)
    want = u @ np.diag(ev ** -0.5) @ u.T
    assert np.allclose(a.numpy(), want, atol=1e-4) and np.allclose(a.numpy(), a.numpy().T, atol=1e-6)
    assert np.allclose(b.numpy(), -x.mean(0) @ want, atol=1e-4)  # centred on the training mean
    z = (x @ a.numpy().astype(np.float64) + b.numpy())
    rz = np.concatenate([z[y == p] - z[y == p].mean(0) for p in range(6)])
    got = np.linalg.eigvalsh(0.7 * rz.T @ rz / len(rz) + 0.3 * np.trace(w) / 10 * want @ want)
    assert np.allclose(got, 1, atol=1e-3)  # W_s whitened to the identity
    a1, _ = fit_wccn(x, y, 1.0)  # full shrinkage: a scalar multiple of the identity, cosines unchanged
    assert np.allclose(a1.numpy(), a1[0, 0].item() * np.eye(10), atol=1e-6)


def test_wccn_refuses_bad_shrinkage_and_too_few_people():
    x, y = _people(3, 4, np.random.default_rng(1))
    for s in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"in \(0, 1\]"):
            fit_wccn(x, y, s)
    with pytest.raises(ValueError, match="two people"):
        fit_wccn(x[:4], y[:4], 0.5)
    with pytest.raises(ValueError, match="identical"):
        fit_wccn(np.repeat(x[:1], 8, 0), np.repeat([0, 1], 4), 0.5)
    for bad in ("0", "1.5"):
        with pytest.raises(ConfigError, match=r"wccn is a shrinkage in \(0, 1\]"):
            load_config(None, [f"model.wccn={bad}"], model=SiameseRunConfig)


def test_wccn_fit_on_training_people_separates_new_people_hidden_by_a_nuisance():
    rng = np.random.default_rng(2)
    x, y = _people(40, 6, rng, identity_dims=12, nuisance=(3.0, 0.3))
    train, test = y < 30, y >= 30  # fit on 30 people, verify the 10 never seen
    before = verification_metrics(*pair_distances(torch.nn.functional.normalize(torch.tensor(x[test]).float(), dim=1),
                                                  y[test]))
    a, b = fit_wccn(x[train], y[train], 0.1)
    z = torch.nn.functional.normalize(torch.tensor(x[test]).float() @ a + b, dim=1)
    after = verification_metrics(*pair_distances(z, y[test]))
    assert before["eer"] > 0.3 and after["eer"] < 0.06 and after["auc"] > 0.99


@pytest.mark.realdata
def test_run_with_wccn_stores_the_layer_and_every_command_uses_it(faces, tmp_path):
    cfg = load_config(None, [f"data.root={faces}", f"out_dir={tmp_path}", "train.epochs=1", "data.image_size=[56,46]",
                             "model.embedding_dim=32", "model.wccn=0.5", "train.tta=true"], model=SiameseRunConfig)
    run = S.train(cfg, progress=False)
    best = run / "checkpoints" / "best.safetensors"
    model, meta, _ = S.load_model(best)
    assert meta["wccn"] == {"shrinkage": 0.5, "people": 22, "images": 220, "views": 2, "dim": 32}
    w = model.whiten.weight.detach()
    assert not torch.allclose(w, torch.eye(32), atol=1e-2) and torch.allclose(w, w.T, atol=1e-5)
    assert not any(p.requires_grad for p in model.whiten.parameters())
    from vislab.labs.siamese.data import load_data
    data = load_data(cfg, progress=False)
    tr = data.split.train
    again = fit_model(model, data.images[tr], data.labels[tr], meta["mean"], meta["std"], 0.5, tta=True)
    assert again["dim"] == 32 and torch.allclose(model.whiten.weight, w, atol=1e-4)  # refitting is idempotent
    m = json.loads((run / "metrics.json").read_text())
    ev = S.evaluate(best, out=tmp_path / "again", progress=False)
    assert ev["auc"] == pytest.approx(m["auc"], abs=1e-6) and ev["eer"] == pytest.approx(m["eer"], abs=1e-6)
    model.whiten = None  # the same network without the layer scores the test people otherwise
    e, lab, _ = S.split_embeddings(model, data, meta["mean"], meta["std"], "test", tta=True)
    assert verification_metrics(*pair_distances(e, lab))["auc"] != pytest.approx(m["auc"], abs=1e-4)
    files = [data.images[data.split.test[0]], data.images[data.split.test[1]]]
    from PIL import Image
    for k, f in enumerate(files):
        Image.fromarray(f.transpose(1, 2, 0)).save(tmp_path / f"{k}.png")
    v = S.verify(best, tmp_path / "0.png", tmp_path / "1.png")
    full, _, _ = S.load_model(best)
    ew = S.embed(full, np.stack(files), meta["mean"], meta["std"], tta=True)
    assert v["distance"] == pytest.approx(float((ew[0] - ew[1]).norm()), abs=1e-4)
    base = S.evaluate_pretrained(cfg, tmp_path / "base", progress=False, data=data)
    plain = S.evaluate_pretrained(cfg.model_copy(update={"model": cfg.model.model_copy(update={"wccn": None})}),
                                  tmp_path / "plain", progress=False, data=data)
    assert "WCCN" in base["loss"] and "WCCN" not in plain["loss"]
    assert base["val_eer"] < plain["val_eer"]  # fit on the 22 training people, better on the 5 validation people


def test_augmented_views_are_seeded_and_differ_from_the_images():
    from vislab.core.transforms import BatchTransform
    from vislab.labs.siamese.model import EmbeddingNet
    from vislab.labs.siamese.whiten import augmented_embeddings
    torch.manual_seed(0)
    net = EmbeddingNet("resnet18", 8, pretrained=False, image_size=(32, 32)).eval()
    imgs = np.random.default_rng(0).integers(0, 255, (5, 3, 32, 32), dtype=np.uint8)
    aug = BatchTransform([0.5] * 3, [0.5] * 3, augment=True, max_rotate=10)
    a = augmented_embeddings(net, imgs, aug, views=3, seed=1)
    assert a.shape == (15, 8) and torch.equal(a, augmented_embeddings(net, imgs, aug, views=3, seed=1))
    assert not torch.allclose(a, augmented_embeddings(net, imgs, aug, views=3, seed=2))
    plain = S.embed(net, imgs, [0.5] * 3, [0.5] * 3)
    assert not torch.allclose(a[:5], plain, atol=1e-3) and not torch.allclose(a[:5], a[5:10], atol=1e-3)


@pytest.mark.realdata
def test_without_fine_tuning_the_checkpoint_is_the_whitened_imagenet_features(faces, tmp_path):
    cfg = load_config(None, [f"data.root={faces}", f"out_dir={tmp_path}", "data.image_size=[56,46]",
                             "model.fine_tune=false", "model.wccn=0.3", "model.wccn_views=2", "train.tta=true"],
                      model=SiameseRunConfig)
    run = S.train(cfg, progress=False)
    model, meta, _ = S.load_model(run / "checkpoints" / "best.safetensors")
    assert meta["epoch"] == 0 and isinstance(model.proj, torch.nn.Identity) and model.embedding_dim == 1280
    assert meta["wccn"]["views"] == 4 and meta["wccn"]["dim"] == 1280  # image, mirror and 2 augmented views
    m = json.loads((run / "metrics.json").read_text())
    assert "no fine-tuning" in m["loss"] and "2 augmented views" in m["loss"] and not (run / "history.csv").exists()
    base = S.evaluate_pretrained(cfg, tmp_path / "base", progress=False)  # the same fit, by the baseline's path
    assert base["auc"] == pytest.approx(m["auc"], abs=1e-6) and base["eer"] == pytest.approx(m["eer"], abs=1e-6)
    plain = S.evaluate_pretrained(cfg.model_copy(update={"model": cfg.model.model_copy(update={"wccn": None})}),
                                  tmp_path / "plain", progress=False)
    assert m["val_eer"] < plain["val_eer"]


def test_data_scale_sets_the_zoom_of_training_and_wccn_views():
    """data.scale is the zoom range of the training augmentation (and so of the WCCN views): an image of a centred
    square zoomed by up to 30% changes the square's size far more than with up to 2%; 1 or below 0 is refused."""
    sq = np.zeros((64, 3, 40, 40), dtype=np.uint8)
    sq[:, :, 12:28, 12:28] = 255
    sizes = {}
    for scale in (0.02, 0.3):
        cfg = SiameseRunConfig(data={"scale": scale})
        aug = S.augmentation(cfg, [0.0] * 3, [1 / 255] * 3).train()
        aug.max_shift, aug.jitter, aug.flip = 0.0, 0.0, False
        out = aug(torch.from_numpy(sq), generator=torch.Generator().manual_seed(0))
        sizes[scale] = (out[:, 0] > 127).sum((1, 2)).float()  # the square's area in pixels
    assert sizes[0.02].std() < 15 and sizes[0.3].std() > 40  # 0.3: areas from ~0.5x to ~1.7x of 256
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError):
            SiameseRunConfig(data={"scale": bad})


def test_feature_level_pools_an_intermediate_map_into_a_grid():
    """model.feature_level/feature_grid: the embedding is that timm feature map average-pooled into grid x grid
    cells of a 2x2 grid are means over their quarter of the map, one cell the whole map's mean; a level the
    backbone lacks is refused."""
    from vislab.labs.siamese.model import EmbeddingNet
    torch.manual_seed(0)
    kw = dict(pretrained=False, normalize=False, project=False, image_size=(64, 48))
    g2 = EmbeddingNet("tf_efficientnet_lite0", feature_level=3, grid=2, **kw).eval()
    g1 = EmbeddingNet(g2.backbone, feature_level=3, grid=1, **kw).eval()
    assert g2.embedding_dim == 112 * 4 and g1.embedding_dim == 112
    x = torch.randn(3, 3, 64, 48)  # level 3 (stride 16): a 4x3 map; 2x2 cells of 2x2 and 2x1 positions
    with torch.no_grad():
        cells = g2(x).view(3, 112, 2, 2)
        (fmap,) = g2.backbone.forward_intermediates(x, indices=[3], intermediates_only=True)
        assert fmap.shape == (3, 112, 4, 3)
        assert torch.allclose(cells[..., 0, 0], fmap[..., :2, :2].mean((-2, -1)), atol=1e-5)
        assert torch.allclose(g1(x), fmap.mean((-2, -1)), atol=1e-5)
    with pytest.raises(ValueError, match="feature level 5 is not one of"):
        EmbeddingNet("tf_efficientnet_lite0", feature_level=5, **kw)
    for bad in ("model.feature_grid=0", "model.feature_level=-1"):
        with pytest.raises(ConfigError):
            load_config(None, [bad], model=SiameseRunConfig)


@pytest.mark.realdata
def test_grid_features_run_round_trips_through_the_checkpoint(faces, tmp_path):
    cfg = load_config(None, [f"data.root={faces}", f"out_dir={tmp_path}", "data.image_size=[64,52]",
                             "model.fine_tune=false", "model.wccn=0.3", "model.feature_level=3",
                             "model.feature_grid=2"], model=SiameseRunConfig)
    run = S.train(cfg, progress=False)
    model, meta, _ = S.load_model(run / "checkpoints" / "best.safetensors")
    assert model.embedding_dim == 448 and meta["wccn"]["dim"] == 448 and model.grid == 2
    m = json.loads((run / "metrics.json").read_text())
    assert "feature level 3 pooled 2x2" in m["loss"] and 0.5 < m["auc"] <= 1.0
    a, b = sorted((faces / "s10").glob("*.pgm"))[:2]
    assert S.verify(run, a, b)["distance"] >= 0
