"""Refit (`vislab fashion refit RUN`): the final model on the training + validation images, with the choices its
source run made on the validation split."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from helpers import run_cli as run
from helpers import tiny_overrides
from vislab.core.checkpoint import load_weights, read_meta
from vislab.core.errors import ConfigError, DataError, UsageError
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion import refit
from vislab.labs.fashion.config import FashionRunConfig, load_config
from vislab.labs.fashion.data import prepare
from vislab.labs.fashion.features import pooled_features
from vislab.labs.fashion.knn import PREFIX


@pytest.fixture(scope="module")
def source(synthetic_root, tmp_path_factory):
    """A tiny run with a neighbour vote, trained on the training split alone: the refit's source."""
    out = tmp_path_factory.mktemp("refit-src")
    cfg = load_config(None, tiny_overrides(synthetic_root, out, name="src", **{
        "train.epochs": 3, "knn.k": 3, "train.monitor": "val_accuracy"}))
    return fashion.train(cfg, progress=False, report=False) / "checkpoints" / "best.safetensors"


@pytest.fixture(scope="module")
def refitted(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("refit-out")
    r = run("fashion", "refit", source.parent.parent, "--out", out, "--name", "final", "--no-progress")
    assert r.returncode == 0, r.stderr + r.stdout
    return out / "final"


def test_refit_trains_on_train_and_val_until_the_sources_best_epoch(source, refitted):
    src, meta = read_meta(source), read_meta(refitted / "checkpoints" / "best.safetensors")
    cfg = FashionRunConfig.model_validate(meta["config"])
    assert cfg.refit.source == str(source.resolve())
    assert cfg.train.stop_epoch == src["epoch"] and cfg.train.epochs == 3
    assert meta["epoch"] == src["epoch"] and len(meta["history"]) == src["epoch"]  # the last epoch is the model
    prepared = prepare(cfg.data, progress=False)
    n_tr, n_va = len(prepared.splits["train"]), len(prepared.splits["val"])
    steps = (n_tr + n_va) // 32  # batch 32, drop_last: every training and validation image in each epoch
    assert [h["step"] for h in meta["history"]] == [steps * (e + 1) for e in range(src["epoch"])]
    assert (n_tr + n_va) // 32 > n_tr // 32  # the source's epochs were shorter
    metrics = json.loads((refitted / "metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["n"] == len(prepared.splits["test"])


def test_refit_takes_the_sources_vote_weights_and_thresholds_over(source, refitted):
    src = read_meta(source)
    path = refitted / "checkpoints" / "best.safetensors"
    weights, meta = load_weights(path)
    assert meta["knn"]["weights"] == src["knn"]["weights"]
    assert (meta["knn"]["k"], meta["knn"]["temperature"], meta["knn"]["tta"]) == (
        src["knn"]["k"], src["knn"]["temperature"], src["knn"]["tta"])
    assert meta["review"]["thresholds"] == src["review"]["thresholds"]
    assert meta["review"]["chosen_by"] == str(source)
    cfg = FashionRunConfig.model_validate(meta["config"])
    prepared = prepare(cfg.data, progress=False)
    tr, va = np.sort(prepared.splits["train"]), np.sort(prepared.splits["val"])
    assert meta["knn"]["bank"] == "train+val" and meta["knn"]["bank_size"] == len(tr) + len(va)
    split = weights[PREFIX + "split"].numpy()
    assert (split == 0).sum() == len(tr) and (split == 1).sum() == len(va)
    net, _ = fashion.load_model(path)  # the bank holds the refit network's features, not the source's
    expect = pooled_features(net, prepared.images, np.concatenate([tr, va])[:8], meta["knn"]["tta"], 8)
    torch.testing.assert_close(weights[PREFIX + "features"][:8].float(), expect, atol=2e-3, rtol=2e-3)
    np.testing.assert_array_equal(weights[PREFIX + "targets"].numpy(), prepared.targets[np.concatenate([tr, va])])


def test_the_stop_epoch_keeps_the_schedule_of_all_epochs(source, synthetic_root, tmp_path):
    """`train.stop_epoch=1` of a 3-epoch run: one epoch, with the lr the 3-epoch schedule has after it (not the
    end of a 1-epoch schedule), and the same weights as the source's 3-epoch run after its first epoch."""
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="stop", **{
        "train.epochs": 3, "train.stop_epoch": 1, "train.monitor": "val_accuracy"}))
    run_dir = fashion.train(cfg, progress=False, report=False)
    history, src = read_meta(run_dir / "checkpoints" / "last.safetensors")["history"], read_meta(source)["history"]
    assert len(history) == 1
    assert history[0]["lr"] == pytest.approx(src[0]["lr"], rel=1e-6)
    assert history[0]["lr"] > 10 * src[-1]["lr"]  # one-cycle ends near 0: this is mid-schedule
    assert history[0]["val_accuracy"] == pytest.approx(src[0]["val_accuracy"], abs=1e-6)


def test_validation_choices_on_a_refit_are_refused(source, refitted, synthetic_root, tmp_path):
    path = refitted / "checkpoints" / "best.safetensors"
    for args in (("fashion", "evaluate", path, "--split", "val"), ("fashion", "calibrate", path),
                 ("fashion", "knn", path), ("fashion", "ensemble", source, path, "--out", tmp_path / "e.json"),
                 ("fashion", "refit", refitted, "--out", tmp_path)):
        r = run(*args)
        assert r.returncode != 0 and "refit" in (r.stdout + r.stderr), args
        assert len((r.stdout + r.stderr).strip().splitlines()) <= 3, r.stdout + r.stderr  # one clear error
    assert not (tmp_path / "e.json").exists() and not list(tmp_path.glob("*-refit*"))
    with pytest.raises(DataError, match="refit"):
        refit.refuse(read_meta(path), "x")
    refit.refuse(read_meta(source), "x")  # the source chose on images it never trained on: allowed
    teacher = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="kd",
                                               **{"distill.teachers": f"[{path}]"}))
    with pytest.raises(DataError, match="refit"):
        fashion.train(teacher, progress=False, report=False)
    assert not (tmp_path / "kd").exists()


def test_a_refit_of_other_settings_is_refused_before_a_run_folder_exists(source, tmp_path):
    r = run("fashion", "refit", source, "--out", tmp_path, "model.drop_rate=0.5", "train.lr=0.02")
    assert r.returncode != 0
    assert "model.drop_rate" in r.stdout + r.stderr and "train.lr" in r.stdout + r.stderr
    assert not list(tmp_path.iterdir())
    cfg = FashionRunConfig.model_validate({**read_meta(source)["config"], "refit": {"source": str(source)}})
    ok = cfg.model_copy(update={"train": cfg.train.model_copy(update={"eval_batch_size": 7})})
    assert refit.source_of(ok)[0] == source  # evaluation batch size and the like do not change what is learned
    with pytest.raises(ConfigError, match="refit.source"):
        refit.source_of(cfg.model_copy(update={"refit": cfg.refit.model_copy(update={"source": str(tmp_path)})}))


def _refit(source, out, name):
    meta = read_meta(source)
    cfg = FashionRunConfig.model_validate({**meta["config"], "refit": {"source": str(source)}, "out_dir": str(out),
                                           "name": name})
    return fashion.train(cfg, progress=False, report=False) / "checkpoints" / "best.safetensors"


def test_an_ensemble_of_refits_takes_its_sources_thresholds(source, refitted, synthetic_root, tmp_path):
    from vislab.labs.fashion import ensemble as ens
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="src2", **{
        "train.epochs": 3, "train.seed": 1, "data.image_size": "[40,30]"}))
    source2 = fashion.train(cfg, progress=False, report=False) / "checkpoints" / "best.safetensors"
    sources = tmp_path / "sources.json"
    src_doc = ens.build([source, source2], sources, progress=False)
    refit1, refit2 = refitted / "checkpoints" / "best.safetensors", _refit(source2, tmp_path, "r2")
    final = tmp_path / "final.json"
    doc = ens.build([refit1, refit2], final, test=True, progress=False, review_from=sources)
    assert doc["review"]["thresholds"] == src_doc["review"]["thresholds"]
    assert "val" not in doc["scores"] and doc["scores"]["test"]["n"] > 0  # validation is the refits' training data
    assert doc["review_from"]["path"] == "sources.json"
    # the file's test score is the mean of the refits' probabilities, as any ensemble's
    prepared = prepare(FashionRunConfig.model_validate(read_meta(refit2)["config"]).data, progress=False)
    rows = np.sort(prepared.splits["test"])
    probs, _ = ens.score(ens.EnsemblePredictor.load(final, tta=True), prepared.images, rows)
    expect = ens.metrics_of(probs, prepared.targets[rows], prepared.encoders)
    assert doc["scores"]["test"]["ensemble"]["average"]["accuracy"] == pytest.approx(
        expect["average"]["accuracy"], abs=1e-6)
    for members, msg in (([refit2, refit1], "order of their sources"), ([refit1, source2], "not a refit")):
        r = run("fashion", "ensemble", *members, "--review-from", sources, "--out", tmp_path / "bad.json")
        assert r.returncode != 0 and msg in r.stdout + r.stderr, r.stdout + r.stderr
    r = run("fashion", "ensemble", refit1, refit2, "--review-from", sources, "--precision", "0.9",
            "--out", tmp_path / "bad.json")
    assert r.returncode == 2 and "--precision" in r.stdout + r.stderr
    with pytest.raises(UsageError, match="TTA"):  # the thresholds were chosen on the sources' TTA probabilities
        ens.build([refit1, refit2], tmp_path / "bad.json", tta=False, progress=False, review_from=sources)
    assert not (tmp_path / "bad.json").exists()
