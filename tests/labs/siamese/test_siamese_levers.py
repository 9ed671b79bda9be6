"""Issue-19 levers of the Siamese lab: class losses (ArcFace, CosFace, SubCenter-ArcFace) and multi-similarity from
pytorch-metric-learning, partial fine-tuning, face rotation augmentation, flip TTA of the embedding, and a short
real run with them that reloads and evaluates."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vislab.core.config import load_config
from vislab.core.transforms import BatchTransform
from vislab.labs.siamese import lab as S
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.model import EmbeddingNet
from vislab.labs.siamese.objective import SiameseObjective, loss_head


def _cfg(*extra):
    return load_config(None, ["model.embedding_dim=8", *extra], model=SiameseRunConfig)


@pytest.mark.parametrize("loss", ["arcface", "cosface", "subcenter-arcface"])
def test_class_losses_score_training_people_by_their_class_index(loss):
    from pytorch_metric_learning import losses
    head = loss_head(_cfg(f"loss.loss={loss}", "loss.scale=30"), classes=3)
    assert head.W.shape[-1] == 3 * getattr(head, "sub_centers", 1) and head.scale == 30
    obj = SiameseObjective(loss, head=head, train_people=[4, 7, 9])  # global person ids of the 3 classes
    emb = torch.nn.functional.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    lab = torch.tensor([4, 4, 7, 7, 9, 9])
    got = obj(emb, lab)[0]
    assert got.item() == pytest.approx(head(emb, torch.tensor([0, 0, 1, 1, 2, 2])).item(), rel=1e-6)
    wrong = head(emb, torch.tensor([1, 1, 2, 2, 0, 0]))  # a different class assignment scores differently
    assert abs(wrong.item() - got.item()) > 1e-3
    assert torch.isnan(obj(emb, torch.tensor([4, 5, 7, 7, 9, 9]))[0])  # a validation person: no class, no loss
    m = obj.make_metrics(train=False)
    m.update(emb, lab)
    assert set(m.compute()["average"]) == {"auc", "eer"}
    assert isinstance(head, {"arcface": losses.ArcFaceLoss, "cosface": losses.CosFaceLoss,
                             "subcenter-arcface": losses.SubCenterArcFaceLoss}[loss])
    with pytest.raises(ValueError, match="needs its head"):
        SiameseObjective(loss).labelled_loss(emb, lab)


def test_arcface_margin_and_training_lower_the_loss():
    torch.manual_seed(0)
    head = loss_head(_cfg("loss.loss=arcface", "loss.class_margin=10", "loss.scale=16"), classes=4)
    assert head.margin == pytest.approx(10 * np.pi / 180)  # degrees in the config, radians in the loss
    obj = SiameseObjective("arcface", head=head, train_people=[0, 1, 2, 3])
    emb = torch.randn(16, 8, requires_grad=True)
    lab = torch.arange(4).repeat(4)
    opt = torch.optim.Adam([emb, *head.parameters()], lr=0.05)
    first = None
    for _ in range(60):
        loss = obj(torch.nn.functional.normalize(emb, dim=-1), lab)[0]
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


def test_multi_similarity_is_pml_loss_with_its_miner():
    from pytorch_metric_learning import losses, miners
    emb = torch.nn.functional.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    lab = torch.arange(3).repeat(4)
    obj = SiameseObjective("multi-similarity")
    want = losses.MultiSimilarityLoss()(emb, lab, miners.MultiSimilarityMiner()(emb, lab))
    assert obj(emb, lab)[0].item() == pytest.approx(want.item(), rel=1e-6) and want.item() > 0
    m = obj.make_metrics(train=False)
    m.update(emb, lab)
    assert m.compute()["average"]["loss"] == pytest.approx(losses.MultiSimilarityLoss()(emb, lab).item(), rel=1e-6)


def test_partial_fine_tuning_freezes_all_but_the_last_stages():
    net = EmbeddingNet("tf_efficientnet_lite0", 8, pretrained=False, train_blocks=2)
    bb = net.backbone
    n = len(bb.blocks)
    assert all(not p.requires_grad for b in bb.blocks[:n - 2] for p in b.parameters())
    assert all(p.requires_grad for b in bb.blocks[n - 2:] for p in b.parameters())
    assert not any(p.requires_grad for p in bb.conv_stem.parameters())
    assert all(p.requires_grad for p in bb.conv_head.parameters())
    trainable = sum(p.numel() for g in net.param_groups(1e-3) for p in g["params"])
    assert trainable == sum(p.numel() for p in net.parameters() if p.requires_grad) < sum(
        p.numel() for p in net.parameters())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.SGD([p for g in net.param_groups(0.1) for p in g["params"]], lr=0.1)
    net.train()
    net(torch.randn(2, 3, 64, 64)).sum().backward()
    opt.step()
    after = net.state_dict()
    assert torch.equal(before["backbone.blocks.0.0.conv_dw.weight"], after["backbone.blocks.0.0.conv_dw.weight"])
    assert not torch.equal(before["backbone.conv_head.weight"], after["backbone.conv_head.weight"])
    full = EmbeddingNet("tf_efficientnet_lite0", 8, pretrained=False, train_blocks=n)
    assert all(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match="between 0 and 7"):
        EmbeddingNet("tf_efficientnet_lite0", 8, pretrained=False, train_blocks=9)


def test_rotation_augmentation_tilts_a_vertical_line_and_is_off_by_default():
    x = torch.zeros(64, 3, 48, 48, dtype=torch.uint8)
    x[:, :, :, 23:25] = 255  # a vertical white line
    plain = dict(mean=[0, 0, 0], std=[1, 1, 1], augment=True, flip=False, max_shift=0, max_scale=0, jitter=0,
                 channels_last=False)
    same = BatchTransform(**plain).train()(x, torch.Generator().manual_seed(0))
    assert torch.allclose(same, x.float() / 255, atol=1e-5)  # no rotation: the identity here
    out = BatchTransform(**plain, max_rotate=10).train()(x, torch.Generator().manual_seed(0))[:, 0]
    cols = torch.arange(48).float()
    top = (out[:, 4] * cols).sum(-1) / out[:, 4].sum(-1)
    bottom = (out[:, -5] * cols).sum(-1) / out[:, -5].sum(-1)
    tilt = torch.rad2deg(torch.atan((top - bottom).abs() / 38))
    assert tilt.max() <= 10.5 and tilt.mean() > 2  # uniform in [-10, 10] degrees: mean |angle| 5


def test_flip_tta_embeds_the_mean_of_image_and_mirror():
    torch.manual_seed(0)
    net = EmbeddingNet("tf_efficientnet_lite0", 8, pretrained=False).eval()
    imgs = np.random.default_rng(0).integers(0, 255, (3, 3, 32, 32), dtype=np.uint8)
    mean, std = [0.5] * 3, [0.5] * 3
    got = S.embed(net, imgs, mean, std, tta=True)
    x = BatchTransform(mean, std).eval()(torch.from_numpy(imgs))
    with torch.no_grad():
        want = torch.nn.functional.normalize(net(x) + net(x.flip(-1)), dim=-1)
    assert torch.allclose(got, want, atol=1e-5) and not torch.allclose(got, S.embed(net, imgs, mean, std), atol=1e-3)
    sym = np.concatenate([imgs[..., :16], imgs[..., :16][..., ::-1]], axis=-1)  # mirror-symmetric images
    assert torch.allclose(S.embed(net, sym, mean, std, tta=True), S.embed(net, sym, mean, std), atol=1e-4)


@pytest.mark.realdata
def test_short_arcface_run_with_partial_fine_tuning_reloads_and_evaluates(faces, tmp_path):
    cfg = load_config(None, [f"data.root={faces}", f"out_dir={tmp_path}", "train.epochs=2", "loss.loss=arcface",
                             "loss.scale=16", "model.train_blocks=3", "data.rotate=8", "train.tta=true",
                             "loss.m_per_class=4", "train.batch_size=32"], model=SiameseRunConfig)
    run = S.train(cfg, progress=False)
    m = json.loads((run / "metrics.json").read_text())
    assert m["tta"] is True and m["auc"] > 0.8 and m["test_people"] == 4
    model, meta, _ = S.load_model(run / "checkpoints" / "best.safetensors")
    assert model.loss_head is not None and model.loss_head.W.shape == (128, 22)  # one weight per training person
    hist = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert "val_auc" in hist and "val_loss" not in hist
    again = S.evaluate(run / "checkpoints" / "best.safetensors", out=tmp_path / "again", progress=False)
    assert again["auc"] == pytest.approx(m["auc"], abs=1e-6)


def test_person_folds_validate_every_training_person_once_and_keep_the_test_people():
    from vislab.labs.siamese.pairs import person_folds, split_people
    labels = np.repeat(np.arange(31), 3)
    split = split_people(labels, (0.7, 0.15, 0.15), seed=1)
    pool = sorted(split.people["train"] + split.people["val"])
    folds = person_folds(split, labels, 3, seed=1)
    seen = sorted(p for f in folds for p in f.people["val"])
    assert len(folds) == 3 and seen == pool and len(pool) == 27  # each pool person validates exactly once
    for f in folds:
        assert not set(f.people["train"]) & set(f.people["val"])
        assert sorted(f.people["train"] + f.people["val"]) == pool
        assert f.people["test"] == split.people["test"] and np.array_equal(f.test, split.test)
        assert np.array_equal(np.unique(labels[f.val]), f.people["val"]) and len(f.val) == 3 * len(f.people["val"])
        assert len(f.people["val"]) == 9
    again = person_folds(split, labels, 3, seed=1)
    assert [f.people["val"] for f in again] == [f.people["val"] for f in folds]  # seeded
    assert [f.people["val"] for f in person_folds(split, labels, 3, seed=2)] != [f.people["val"] for f in folds]
    with pytest.raises(ValueError, match="use 2 to 13"):
        person_folds(split, labels, 14)
    with pytest.raises(ValueError, match="use 2 to 13"):
        person_folds(split, labels, 1)


@pytest.mark.realdata
def test_cross_validation_scores_each_fold_on_its_held_out_people_with_the_last_checkpoint(faces, tmp_path):
    from vislab.labs.siamese.crossval import repeat_cv
    from vislab.labs.siamese.data import load_data
    from vislab.labs.siamese.metrics import pair_distances, verification_metrics
    cfg = load_config(None, [f"data.root={faces}", f"out_dir={tmp_path}", "train.epochs=2", "data.image_size=[56,46]",
                             "model.embedding_dim=16", "train.tta=true"], model=SiameseRunConfig)
    with pytest.raises(ValueError, match="use 2 to 13"):  # checked before any training
        repeat_cv(cfg, seeds=(42,), folds=14)
    out = repeat_cv(cfg, seeds=(42,), folds=2)
    res = json.loads((out / "cv.json").read_text())
    row = res["splits"][0]
    assert res["folds"] == 2 and len(row["folds"]) == 2 and res["seeds"] == [42]
    assert row["cv_eer"] == pytest.approx(np.mean([f["eer"] for f in row["folds"]]))
    assert res["summary"]["trained"]["auc"]["mean"] == pytest.approx(row["cv_auc"]) and 0.5 < row["cv_auc"] <= 1
    assert res["summary"]["pretrained, no training"]["eer"]["mean"] == pytest.approx(row["cv_baseline_eer"])
    data = load_data(cfg, progress=False)
    test_people = {data.people[p] for p in data.split.people["test"]}
    val_people = []
    for k, f in enumerate(row["folds"]):
        run = out / "seed-42" / f"fold-{k}" / "checkpoints"
        model, meta, _ = S.load_model(run / "last.safetensors")
        sp = meta["split_people"]
        assert set(sp["test"]) == test_people and set(sp["val"]) == set(f["val_people"])
        assert not set(sp["val"]) & (set(sp["train"]) | test_people)
        val_people += sp["val"]
        idx = np.flatnonzero(np.isin(data.labels, [data.people.index(p) for p in sp["val"]]))
        e = S.embed(model, data.images[idx], meta["mean"], meta["std"], tta=True)
        assert verification_metrics(*pair_distances(e, data.labels[idx]))["eer"] == pytest.approx(f["eer"], abs=1e-6)
        feats, fmeta = S.pretrained_features(cfg)  # the untrained baseline on the same held-out people
        e0 = S.embed(feats, data.images[idx], fmeta["mean"], fmeta["std"])
        assert verification_metrics(*pair_distances(e0, data.labels[idx]))["auc"] == pytest.approx(f["baseline_auc"])
        assert meta["epoch"] == 2  # the last epoch, not the one its own held-out people liked best
    assert len(val_people) == len(set(val_people)) == 27  # 31 people - 4 test people, each validated once
    assert "CV EER %" in (out / "report.html").read_text()


def test_default_config_is_the_cross_validated_choice_and_margins_refuse_a_loss_without_margin(tmp_path):
    from helpers import run_cli
    d, im, ms, old = (load_config(f"siamese/{n}", [], model=SiameseRunConfig)
                      for n in ("default", "imagenet", "multisim", "contrastive"))
    assert (d.model.backbone, d.model.fine_tune, d.model.wccn, d.train.filled().tta, d.data.image_size,
            d.model.feature_level) == ("dlib_face_resnet", False, None, True, (112, 92), None)
    assert (im.model.backbone, im.model.fine_tune, im.model.wccn, im.model.wccn_views, im.train.filled().tta,
            im.data.image_size, im.model.feature_level, im.model.feature_grid, im.data.blur) == (
        "tf_efficientnet_lite0", False, 0.1, 6, True, (224, 184), 4, 3, 8)
    assert (ms.loss.loss, ms.train.filled().epochs, ms.train.filled().step_size) == ("multi-similarity", 20, 10)
    assert ms.model.fine_tune and ms.model.wccn is None
    assert (old.loss.loss, old.loss.form, old.train.filled().epochs) == ("contrastive", "hadsell", 10)
    r = run_cli("siamese", "margins", "-c", "siamese/multisim", "--data", tmp_path)
    assert r.returncode == 2 and "has no margin to study" in r.stderr + r.stdout
    for cmd in (["search"], ["margins", "--loss", "contrastive"], ["train", "--epochs", "2"]):  # nothing to tune
        r = run_cli("siamese", *cmd, "-c", "siamese/default", "--data", tmp_path)
        out = r.stderr + r.stdout
        assert r.returncode == 2 and "model.fine_tune=false" in out and "siamese/multisim" in out
    r = run_cli("siamese", "cv", "--folds", "1", "--data", tmp_path)
    assert r.returncode == 2 and "--folds" in r.stderr + r.stdout
