"""Siamese lab on the engine: verification/retrieval math against scikit-learn and hand-computed
values, the objective on pair/triplet/labelled batches, loaders, bad input, the search (with resume)
and short real-data runs from the Python API and the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score

from helpers import write_people
from vislab.core.config import load_config
from vislab.core.data.images import DataError
from vislab.labs.siamese import lab as S
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.siamese.losses import contrastive_loss, triplet_loss
from vislab.labs.siamese.metrics import (
    accuracy_at,
    choose_threshold,
    nearest,
    pair_distances,
    retrieval_metrics,
    verification_metrics,
)
from vislab.labs.siamese.objective import SiameseObjective, train_loader
from vislab.labs.siamese.studies import _trial_order, compare_margins, repeat_splits, search, with_params

# --------------------------------------------------------------------------- math


def test_pair_distances_counts_and_values():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [1.0, 0.0]])
    d, same = pair_distances(emb, np.array([0, 0, 1, 1]))
    assert len(d) == 6 and same.tolist() == [1, 0, 0, 0, 0, 1]
    assert d[:3] == pytest.approx([5.0, 1.0, 1.0], abs=1e-5) and d[-1] == pytest.approx(2 ** 0.5, abs=1e-5)


def test_verification_auc_matches_sklearn_and_eer_by_hand():
    rng = np.random.default_rng(0)
    same = rng.integers(0, 2, 400)
    d = rng.normal(1.0 - 0.6 * same, 0.3)
    v = verification_metrics(d, same)
    assert v["auc"] == pytest.approx(roc_auc_score(same, -d), abs=1e-6)
    # 4 same-person pairs at 0.1, 0.2, 0.3, 0.9 and 4 different at 0.5 ... 0.8: at threshold 0.3-0.5 one
    # genuine pair is rejected (FNR 1/4) and no impostor accepted; at 0.8 FNR 1/4, FPR 1 -> EER is 0.25
    d = np.array([0.1, 0.2, 0.3, 0.9, 0.5, 0.6, 0.7, 0.8])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    v = verification_metrics(d, y)
    assert v["eer"] == pytest.approx(0.25) and v["auc"] == pytest.approx(roc_auc_score(y, -d))
    with pytest.raises(ValueError, match="same-person and different-person"):
        verification_metrics(d, np.ones(8))


def test_threshold_from_validation_and_accuracy_at_it():
    d = np.array([0.1, 0.2, 0.3, 0.9, 0.5, 0.6, 0.7, 0.8])
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    t = choose_threshold(d, y)
    assert 0.3 < t < 0.5  # best balanced accuracy (7/8): accept 0.1-0.3
    a = accuracy_at(d, y, t)
    assert a["accuracy"] == pytest.approx(7 / 8) and a["tpr"] == pytest.approx(0.75) and a["tnr"] == 1.0
    assert a["balanced_accuracy"] == pytest.approx(0.875)
    sep = choose_threshold(np.array([0.1, 0.2, 1.0, 1.2]), np.array([1, 1, 0, 0]))
    assert accuracy_at(np.array([0.1, 0.2, 1.0, 1.2]), np.array([1, 1, 0, 0]), sep)["accuracy"] == 1.0


def test_retrieval_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1])
    clusters = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [5, 5.1], [5.1, 5]], dtype=np.float32)
    r = retrieval_metrics(clusters, labels)
    assert r["precision_at_1"] == 1.0 and r["map_at_r"] == pytest.approx(1.0)
    # on a line: 0(a) 1(a) 2(b) 3(b); nearest of 1 is 0 or 2 (tie broken either way), of 2 is 1 or 3
    line = np.array([[0.0], [1.0], [2.5], [3.5]], dtype=np.float32)
    r = retrieval_metrics(line, np.array([0, 0, 1, 1]))
    assert r["precision_at_1"] == 1.0
    line = np.array([[0.0], [2.0], [1.0], [3.0]], dtype=np.float32)  # positions of people a a b b
    r = retrieval_metrics(line, np.array([0, 0, 1, 1]))
    # every nearest neighbour (ties included) is the other person: 0->2, 1->2|3, 2->0|1, 3->1
    assert r["precision_at_1"] == 0.0


def test_nearest_excludes_self_and_sorts():
    g = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    idx, dist = nearest(g, g, 2, exclude_self=True)
    assert idx[0].tolist() == [1, 2] and dist[3].tolist() == pytest.approx([3.0, 5.0])


# --------------------------------------------------------------------------- objective


def test_objective_on_pairs_triplets_and_labelled_batches():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(4, 8, generator=g) for _ in range(3))
    y = torch.tensor([1, 0, 1, 0])
    for form in ("original", "hadsell"):
        obj = SiameseObjective("contrastive", 1.3, form)
        loss, parts = obj(torch.cat([a, b]), y)
        assert loss.item() == pytest.approx(contrastive_loss((a - b).norm(dim=1), y, 1.3, form).item(), rel=1e-5)
    obj = SiameseObjective("triplet", 0.7, distance="euclidean")
    loss, _ = obj(torch.cat([a, b, c]), torch.ones(4, dtype=torch.long))
    assert loss.item() == pytest.approx(triplet_loss(0.7)(a, b, c).item(), rel=1e-5)
    # labelled set: contrastive over all 6 pairs of 4 images
    emb, lab = torch.cat([a[:2], b[:2]]), torch.tensor([0, 0, 1, 1])
    obj = SiameseObjective("contrastive", 1.0, "hadsell")
    i, j = torch.triu_indices(4, 4, 1)
    want = contrastive_loss((emb[i] - emb[j]).norm(dim=1), (lab[i] == lab[j]).long(), 1.0, "hadsell")
    assert obj(emb, lab)[0].item() == pytest.approx(want.item(), rel=1e-5)
    # labelled set, triplet without mining = mean over all valid (a, p, n) of the hinge
    obj = SiameseObjective("triplet", 0.5)
    d = torch.cdist(emb, emb)
    hinge = [max(d[x, p] - d[x, n] + 0.5, 0.0) for x in range(4) for p in range(4) for n in range(4)
             if x != p and lab[x] == lab[p] and lab[x] != lab[n]]
    assert obj.labelled_loss(emb, lab, mined=False).item() == pytest.approx(float(np.mean(hinge)), rel=1e-4)
    with pytest.raises(ValueError, match="embeddings per label"):
        obj(torch.randn(5, 8), torch.ones(2))


def test_validation_metrics_score_all_pairs():
    obj = SiameseObjective("contrastive", 1.0)
    m = obj.make_metrics(train=False)
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.2], [1.0, 1.0], [1.0, 1.2], [2.0, 0.0]])
    lab = torch.tensor([0, 0, 1, 1, 2])
    m.update(emb[:3], lab[:3])
    m.update(emb[3:], lab[3:])  # two batches: the same numbers as one
    out = m.compute()["average"]
    d, same = pair_distances(emb, lab)
    assert out["auc"] == pytest.approx(roc_auc_score(same, -d)) and out["auc"] == 1.0 and out["eer"] == 0.0
    assert out["loss"] == pytest.approx(obj(emb, lab)[0].item(), rel=1e-5)


# --------------------------------------------------------------------------- data


def test_load_data_excludes_and_counts_bad_people_and_files(tmp_path):
    root = write_people(tmp_path / "faces", {f"p{k}": 4 for k in range(5)} | {"single": 1})
    (root / "empty").mkdir()
    (root / "p0" / "notes.txt").write_text("not an image")
    (root / "p1" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    Image.new("RGB", (200, 90), (200, 10, 10)).save(root / "p2" / "big_rgb.png")  # other size and mode
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(root / "p3" / "alpha.png")
    cfg = load_config(None, [f"data.root={root}", "data.image_size=[40,32]", f"data.cache_dir={tmp_path / 'c'}"],
                      model=SiameseRunConfig)
    data = S.load_data(cfg, progress=False)
    assert data.images.shape == (22, 3, 40, 32) and data.images.dtype == np.uint8
    assert sorted(data.people) == [f"p{k}" for k in range(5)]
    ex = data.excluded
    assert ex["not an image file (by extension)"] == 1 and ex["unreadable (corrupt or not an image)"] == 1
    assert ex["people with no readable image (empty folders)"] == 1
    assert [v for k, v in ex.items() if k.startswith("people with fewer than 2")] == [1]
    sz = data.split.sizes()
    assert sum(v["people"] for v in sz.values()) == 5 and min(v["people"] for v in sz.values()) >= 1
    with pytest.raises(DataError, match="at least 3"):
        S.load_data(cfg.model_copy(update={"data": cfg.data.model_copy(update={"min_images": 6})}), progress=False)


def test_tuple_loader_redraws_and_mined_loader_has_m_per_person(tmp_path):
    root = write_people(tmp_path / "faces", {f"p{k}": 6 for k in range(12)})
    cfg = load_config(None, [f"data.root={root}", "data.image_size=[40,32]", f"data.cache_dir={tmp_path / 'c'}",
                             "train.batch_size=8"], model=SiameseRunConfig)
    data = S.load_data(cfg, progress=False)
    x = torch.from_numpy(np.array(data.images))
    loader = train_loader(cfg, data, x)
    xb, yb = next(iter(loader))
    assert xb.shape == (16, 3, 40, 32) and yb.shape == (8,) and xb.dtype == torch.uint8
    first = loader.dataset.cols[1].clone()
    loader.dataset.set_epoch(2)
    assert (loader.dataset.cols[1] != first).any()
    trip = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"loss": "triplet"})})
    xb, yb = next(iter(train_loader(trip, data, x)))
    assert xb.shape == (24, 3, 40, 32) and (yb == 1).all()
    mined = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"loss": "triplet", "miner": "semi-hard",
                                                                          "m_per_class": 4})})
    for xb, yb in train_loader(mined, data, x):
        assert xb.shape[0] == 8 and sorted(np.bincount(yb.numpy())[np.bincount(yb.numpy()) > 0].tolist()) == [4, 4]


# --------------------------------------------------------------------------- real faces: API, CLI, search


def _faces_cfg(faces, out, *extra):
    return load_config(None, [f"data.root={faces}", f"out_dir={out}", "train.epochs=2", *extra],
                       model=SiameseRunConfig)


@pytest.fixture(scope="module")
def faces_run(faces, tmp_path_factory):
    """A short real run (Lite0 pretrained, 2 epochs of contrastive pairs): seconds on 2 CPU cores."""
    out = tmp_path_factory.mktemp("siamese")
    return S.train(_faces_cfg(faces, out), progress=False)


@pytest.mark.realdata
def test_short_real_run_verifies_unseen_people(faces_run):
    m = json.loads((faces_run / "metrics.json").read_text())
    assert m["test_people"] == 4 and m["split"]["train"]["people"] == 22
    assert m["auc"] > 0.85 and m["eer"] < 0.25  # chance: AUC 0.5, EER 0.5
    assert m["precision_at_1"] > 0.7 and 0 < m["threshold"] < 2  # L2-normalised: distances in [0, 2]
    assert m["test_pairs"] == {"same": 180, "different": 600}
    for p in ("roc.png", "distances.png", "neighbours.png", "tsne.png", "curves.png"):
        assert (faces_run / "plots" / p).is_file()
    meta = json.loads((faces_run / "verification.json").read_text())
    assert meta["threshold"] == pytest.approx(m["threshold"])
    people = {k: set(v) for k, v in
              __import__("vislab.core.checkpoint", fromlist=["x"]).read_meta(
                  faces_run / "checkpoints" / "best.safetensors")["split_people"].items()}
    assert not (people["train"] & people["test"]) and not (people["val"] & people["test"])


@pytest.mark.realdata
def test_verify_gallery_and_bad_files(faces_run, faces, tmp_path):
    same = S.verify(faces_run, faces / "s10" / "1.pgm", faces / "s10" / "2.pgm")
    other = S.verify(faces_run, faces / "s10" / "1.pgm", faces / "s20" / "1.pgm")
    assert same["distance"] < other["distance"] and 0.5 <= same["confidence"] <= 1
    assert S.verify(faces_run, faces / "s10" / "1.pgm", faces / "s10" / "1.pgm")["distance"] < 1e-3
    with pytest.raises(DataError, match="does not exist"):
        S.verify(faces_run, faces / "s10" / "1.pgm", tmp_path / "missing.pgm")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot be decoded"):
        S.verify(faces_run, tmp_path / "bad.jpg", faces / "s10" / "1.pgm")
    g = S.gallery(faces_run, faces / "s10" / "1.pgm", faces, top=10, out=tmp_path / "g.png")
    assert len(g["matches"]) == 10 and g["matches"][0]["distance"] < 1e-3 and g["matches"][0]["person"] == "s10"
    assert [m["distance"] for m in g["matches"]] == sorted(m["distance"] for m in g["matches"])
    assert (tmp_path / "g.png").is_file()
    with pytest.raises(DataError, match="fewer than --top 11"):
        S.gallery(faces_run, faces / "s10" / "1.pgm", faces / "s10", top=11)


@pytest.mark.realdata
def test_cli_siamese_verify_gallery_evaluate(faces_run, faces, tmp_path):
    from typer.testing import CliRunner

    from vislab.cli import app
    r = CliRunner().invoke(app, ["siamese", "verify", str(faces / "s10" / "1.pgm"), str(faces / "s10" / "3.pgm"),
                                 "--run", str(faces_run), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out) == {"distance", "threshold", "same", "p_same", "confidence"}
    r = CliRunner().invoke(app, ["siamese", "verify", str(faces / "s10" / "1.pgm"), str(tmp_path / "nope.pgm"),
                                 "--run", str(faces_run)])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = CliRunner().invoke(app, ["siamese", "gallery", str(faces / "s12" / "4.pgm"), "--run", str(faces_run),
                                 "--top", "5", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["matches"]) == 5
    r = CliRunner().invoke(app, ["siamese", "evaluate", str(faces_run / "checkpoints" / "best.safetensors"),
                                 "--out", str(tmp_path / "ev"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["auc"] == pytest.approx(
        json.loads((faces_run / "metrics.json").read_text())["auc"], abs=1e-6)


def _people_folder(faces, tmp_path, people):
    import shutil
    folder = tmp_path / "others"
    for p in people:
        shutil.copytree(faces / p, folder / p)
    return folder


@pytest.mark.realdata
def test_evaluate_on_another_folder_tests_every_person_at_the_stored_threshold(faces_run, faces, tmp_path):
    from vislab.core import checkpoint as ckpt
    best = faces_run / "checkpoints" / "best.safetensors"
    own = json.loads((faces_run / "metrics.json").read_text())
    stored = ckpt.read_meta(best)["verification"]  # written by the run's evaluation, travels with the file
    assert stored["threshold"] == pytest.approx(own["threshold"]) and stored["val_auc"] == pytest.approx(own["val_auc"])
    people = sorted(p.name for p in faces.iterdir() if p.is_dir())[:8]
    folder = _people_folder(faces, tmp_path, people)
    m = S.evaluate(best, root=str(folder), progress=False)
    assert m["test_people"] == 8 and m["test_images"] == 80 and m["split"]["train"]["people"] == 0
    assert m["test_pairs"] == {"same": 8 * 45, "different": 80 * 79 // 2 - 8 * 45}
    assert m["threshold"] == pytest.approx(own["threshold"]) and m["threshold_from"].startswith("the checkpoint")
    assert 0.5 < m["auc"] <= 1 and 0 <= m["eer"] < 0.5
    trained = set(ckpt.read_meta(best)["split_people"]["train"]) | set(ckpt.read_meta(best)["split_people"]["val"])
    assert m["seen_people"] == sorted(set(people) & trained)
    out = faces_run / "eval-others"
    assert json.loads((out / "metrics.json").read_text())["auc"] == pytest.approx(m["auc"])
    assert (out / "report.html").is_file() and (out / "plots" / "roc.png").is_file()
    assert json.loads((faces_run / "metrics.json").read_text()) == own  # the run's own results are kept
    # the old behaviour on request: FOLDER re-split by person leaves one test person, which cannot verify
    with pytest.raises(Exception, match="same-person and different-person pairs"):
        S.evaluate(best, root=str(folder), out=tmp_path / "resplit", progress=False, split=True)


@pytest.mark.realdata
def test_a_checkpoint_without_a_threshold_is_refused_before_loading_data(faces_run, faces, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from vislab.cli import app
    from vislab.core import checkpoint as ckpt
    loose = tmp_path / "loose" / "checkpoints" / "best.safetensors"  # no verification.json beside it
    loose.parent.mkdir(parents=True)
    shutil.copy(faces_run / "checkpoints" / "best.safetensors", loose)
    ckpt.update_meta(loose, {"verification": None})
    folder = _people_folder(faces, tmp_path, ["s10", "s11"])
    r = CliRunner().invoke(app, ["siamese", "evaluate", str(loose), "--data", str(folder), "--no-progress"])
    assert r.exit_code == 2 and "holds no validation threshold" in r.output, r.output
    r = CliRunner().invoke(app, ["siamese", "evaluate", str(loose), "--split"])
    assert r.exit_code == 2 and "--split needs --data" in r.output, r.output
    with pytest.raises(Exception, match="holds no validation threshold"):
        S.verify(loose, faces / "s10" / "1.pgm", faces / "s10" / "2.pgm")
    assert S.verify(loose, faces / "s10" / "1.pgm", faces / "s10" / "2.pgm", threshold=5.0)["same"] is True
    g = S.gallery(loose, faces / "s10" / "1.pgm", folder, top=3)
    assert g["threshold"] is None and {m["same"] for m in g["matches"]} == {None}
    # the stored threshold marks gallery matches; the query's own image is within it
    g = S.gallery(faces_run, faces / "s10" / "1.pgm", folder, top=20)
    t = g["threshold"]
    assert g["matches"][0]["same"] is True and all(m["same"] == (m["distance"] <= t) for m in g["matches"])


@pytest.mark.realdata
def test_search_runs_resumes_and_requeues_an_interrupted_trial(faces, tmp_path):
    import optuna
    cfg = _faces_cfg(faces, tmp_path, "data.image_size=[56,46]", "search.epochs=[1]",
                     "search.loss=[contrastive:original,triplet:semi-hard]", "search.embedding_dim=[32]")
    out = search(cfg, trials=2)
    rows = (out / "trials.csv").read_text().splitlines()
    assert len(rows) == 3 and all(",COMPLETE," in r for r in rows[1:])
    best = json.loads((out / "best.json").read_text())
    assert set(best["params"]) == {"lr", "margin", "step_size", "gamma", "epochs", "embedding_dim", "loss"}
    # a search killed inside a trial leaves it RUNNING in the storage: the next call re-runs that point
    study = optuna.load_study(study_name=cfg.name, storage=f"sqlite:///{out / 'optuna.db'}")
    t = study.ask()
    t.suggest_float("lr", 1e-5, 1e-3, log=True)
    search(cfg, trials=3)
    study = optuna.load_study(study_name=cfg.name, storage=f"sqlite:///{out / 'optuna.db'}")
    states = [s.state.name for s in study.trials]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1
    assert study.trials[-1].params["lr"] == pytest.approx(t.params["lr"])  # the interrupted point, run again


@pytest.mark.realdata
@pytest.mark.slow
def test_triplet_mined_and_margin_study(faces, tmp_path):
    cfg = _faces_cfg(faces, tmp_path, "data.image_size=[56,46]", "train.epochs=1", "loss.loss=triplet",
                     "loss.miner=batch-hard")
    run = S.train(cfg, progress=False)
    assert json.loads((run / "metrics.json").read_text())["auc"] > 0.7
    out = compare_margins(_faces_cfg(faces, tmp_path, "data.image_size=[56,46]", "train.epochs=1"), (1.0, 2.0),
                            progress=False)
    res = json.loads((out / "margins.json").read_text())
    assert list(res) == ["margin 1", "margin 2"] and all(0.5 < r["auc"] <= 1 for r in res.values())
    assert (out / "plots" / "distances.png").is_file() and (out / "report.html").is_file()


def test_siamese_config_rejects_bad_values():
    with pytest.raises(ValueError):
        SiameseRunConfig.model_validate({"loss": {"margin": 0}})
    with pytest.raises(ValueError):
        SiameseRunConfig.model_validate({"loss": {"loss": "quadruplet"}})
    c = SiameseRunConfig()
    assert c.train.monitor == "val_auc" and c.train.filled().scheduler == "step"
    with pytest.raises(ValueError, match="search.loss entry"):
        with_params(c, {"loss": "arcface:x"})


def test_queries_come_from_different_people_first():
    labels = np.repeat(np.arange(3), 10)
    q = S._queries(labels, 5, seed=0)
    assert len(set(q.tolist())) == 5 and sorted(set(labels[q[:3]].tolist())) == [0, 1, 2]


def test_frozen_batchnorm_keeps_its_statistics_while_training():
    from vislab.labs.siamese.model import EmbeddingNet
    for freeze in (True, False):
        net = EmbeddingNet("test_efficientnet", 8, pretrained=False, freeze_bn=freeze).train()
        bn = next(m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
        before = bn.running_mean.clone()
        net(torch.randn(4, 3, 32, 32) * 3 + 1)
        assert torch.equal(bn.running_mean, before) == freeze
        assert net.training and net.proj.training and bn.training != freeze


@pytest.mark.realdata
def test_pretrained_baseline_and_repeated_splits(faces, tmp_path):
    cfg = _faces_cfg(faces, tmp_path, "data.image_size=[56,46]", "train.epochs=1", "model.embedding_dim=32")
    b = S.evaluate_pretrained(cfg, tmp_path / "base", progress=False)
    assert b["auc"] > 0.8 and b["test_people"] == 4 and (tmp_path / "base" / "plots" / "roc.png").is_file()
    out = repeat_splits(cfg, seeds=(42, 7), progress=False)
    res = json.loads((out / "splits.json").read_text())
    aucs = [r["auc"] for r in res["runs"]["trained"]]
    assert len(aucs) == 2 and res["summary"]["trained"]["auc"]["mean"] == pytest.approx(np.mean(aucs))
    assert res["summary"]["trained"]["auc"]["std"] == pytest.approx(np.std(aucs, ddof=1))
    assert len(res["runs"]["pretrained, no training"]) == 2
    assert res["runs"]["pretrained, no training"][0]["auc"] == pytest.approx(b["auc"], abs=1e-6)  # seed 42 = same split


@pytest.mark.realdata
def test_search_objective_averages_person_splits(faces, tmp_path):
    import optuna
    cfg = _faces_cfg(faces, tmp_path, "data.image_size=[56,46]", "search.epochs=[1]",
                     "search.loss=[contrastive:hadsell]", "search.embedding_dim=[32]", "search.splits=[42,7]")
    out = search(cfg, trials=1)
    t = optuna.load_study(study_name=cfg.name, storage=f"sqlite:///{out / 'optuna.db'}").trials[0]
    per = t.user_attrs["per_split"]
    assert len(per) == 2 and t.value == pytest.approx(np.mean(per), abs=1e-5)
    assert (out / "trials" / "trial-000" / "split-7" / "checkpoints" / "best.safetensors").is_file()


def test_with_params_applies_a_search_point():
    c = SiameseRunConfig()
    x = with_params(c, {"lr": 1e-4, "margin": 0.7, "step_size": 3, "gamma": 0.2, "epochs": 8, "embedding_dim": 64,
                          "loss": "triplet:semi-hard", "backbone_lr_mult": 0.1})
    assert (x.train.lr, x.train.step_size, x.train.gamma, x.train.epochs) == (1e-4, 3, 0.2, 8)
    assert (x.loss.loss, x.loss.miner, x.loss.margin, x.model.embedding_dim) == ("triplet", "semi-hard", 0.7, 64)
    assert x.train.backbone_lr_mult == 0.1 and c.train.backbone_lr_mult is None
    assert with_params(c, {"loss": "contrastive:original"}).loss.form == "original"
    fixed = load_config(None, ["search.backbone_lr_mult=[1.0]"], model=SiameseRunConfig)
    assert with_params(fixed, {"lr": 1e-3}).train.backbone_lr_mult == 1.0  # one value: applied to every trial
    assert with_params(c, {"lr": 1e-3}).train.filled().backbone_lr_mult == 0.1  # none: the recipe's


def test_search_report_orders_trials_best_first_with_zero_as_a_value():
    values = [0.1, None, 0.0, 0.3]
    assert sorted(values, key=lambda v: _trial_order(v, maximize=False)) == [0.0, 0.1, 0.3, None]  # EER 0 is best
    assert sorted(values, key=lambda v: _trial_order(v, maximize=True)) == [0.3, 0.1, 0.0, None]
