"""The neighbour vote of a fashion checkpoint (`knn.k`, `vislab fashion knn`): chosen on validation with only the
training images voting, stored in the checkpoint, and the same blend in evaluation, calibration and prediction."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import run_cli, tiny_overrides
from vislab.core import checkpoint as ckpt
from vislab.labs.fashion import knn
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config
from vislab.labs.fashion.features import pooled_features
from vislab.labs.fashion.predict import Predictor


def _copy(run, dest):
    (dest / "checkpoints").mkdir(parents=True)
    for f in (run / "checkpoints").glob("best.*"):
        shutil.copy(f, dest / "checkpoints" / f.name)
    return dest


def _hand_vote(bank, bank_y, query, k, temperature, n):
    """Numpy: cosine top-k, softmax(similarity / T) weights, label shares."""
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    s = q @ b.T
    idx = np.argsort(-s, axis=1)[:, :k]
    top = np.take_along_axis(s, idx, 1) / temperature
    w = np.exp(top - top.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    out = np.zeros((len(q), n))
    for i in range(len(q)):
        np.add.at(out[i], bank_y[idx[i]], w[i])
    return out


def test_vote_chosen_on_validation_is_stored_and_blended_in_evaluation_and_prediction(tiny_run, tmp_path):
    run, cfg = tiny_run
    path = _copy(run, tmp_path / "voted") / "checkpoints" / "best.safetensors"
    info = fashion.add_vote(path.parent.parent, k=5, temperature=0.1, bank="train+val", progress=False)
    prepared = fashion.prepare_data(cfg, progress=False)
    tr, va, te = (np.sort(prepared.splits[s]) for s in ("train", "val", "test"))
    meta = ckpt.read_meta(path)
    assert meta["knn"] == info and info["bank"] == "train+val" and info["bank_size"] == len(tr) + len(va)
    stored = load_file(str(path))
    assert stored["knn.features"].dtype == torch.float16 and stored["knn.features"].shape[0] == len(tr) + len(va)
    assert np.array_equal(stored["knn.targets"].numpy(), prepared.targets[np.concatenate([tr, va])])
    assert stored["knn.split"].tolist() == [0] * len(tr) + [1] * len(va)
    assert any(w > 0 for w in info["weights"].values())  # the vote helps somewhere on these images

    # test split: the evaluation's blend is the hand-computed one (the stored fp16 bank, fresh query features)
    net, _ = fashion.load_model(path)
    tta = bool(cfg.train.filled().tta)
    bank = stored["knn.features"].float().numpy()
    bank_y = stored["knn.targets"].long().numpy()
    q = pooled_features(net, prepared.images, te, tta).numpy()
    with torch.no_grad():
        heads = {t: v.softmax(-1).numpy() for t, v in net.forward_heads(torch.from_numpy(q)).items()}
    metrics, _ = fashion.evaluate_checkpoint(path, prepared, te, tta=tta)
    plain, _ = fashion.evaluate_checkpoint(run / "checkpoints" / "best.safetensors", prepared, te, tta=tta)
    for j, (t, n) in enumerate(meta["tasks"].items()):
        w = info["weights"][t]
        p = (1 - w) * heads[t] + w * _hand_vote(bank, bank_y[:, j], q, 5, 0.1, n)
        assert metrics[t]["accuracy"] == pytest.approx((p.argmax(1) == prepared.targets[te, j]).mean(), abs=1e-6)
        if w == 0:
            assert metrics[t]["accuracy"] == pytest.approx(plain[t]["accuracy"], abs=1e-6)

    # the validation split is scored with the training images voting only: each validation image would otherwise
    # find itself (similarity 1) in the bank
    sims, rows = knn.vote_of(path, meta)[0].neighbours(pooled_features(net, prepared.images, va[:20], tta))
    assert (sims[:, 0] > 0.999).all() and (rows[:, 0].numpy() == len(tr) + np.arange(20)).all()
    review = meta["review"]["thresholds"]
    # the same as training's (which reused the vote's own validation pass): validation not voting
    again = fashion.calibrate(path, progress=False)["thresholds"]
    assert again.keys() == review.keys() and all(
        (again[t] is None) == (review[t] is None) and (review[t] is None or abs(again[t] - review[t]) < 1e-5)
        for t in review)
    leaked, _ = fashion.evaluate_checkpoint(path, prepared, va, tta=tta, vote_splits=("train", "val"))
    honest, _ = fashion.evaluate_checkpoint(path, prepared, va, tta=tta, vote_splits=("train",))
    voted = [t for t, w in info["weights"].items() if w > 0]
    assert sum(leaked[t]["accuracy"] for t in voted) > sum(honest[t]["accuracy"] for t in voted)

    # as a distillation teacher the voted checkpoint scores its own bank's images with its heads alone
    from vislab.labs.fashion.distill import ensemble_probs
    heads_only = ensemble_probs([path], cfg.data, prepared, tr[:40], vote_splits=None)
    unvoted = ensemble_probs([run / "checkpoints" / "best.safetensors"], cfg.data, prepared, tr[:40])
    voted_tr = ensemble_probs([path], cfg.data, prepared, tr[:40])
    t = voted[0]
    assert np.allclose(heads_only[t], unvoted[t], atol=1e-6) and not np.allclose(voted_tr[t], unvoted[t], atol=1e-3)

    # the predictor (tag, serve) blends the same vote into its confidences: one view by default
    predictor = Predictor.load(path, top_k=1)
    x = torch.from_numpy(np.asarray(prepared.images[te[:8]]))
    preds = predictor.predict_arrays(x)
    q1 = pooled_features(net, prepared.images, te[:8], tta=False).numpy()
    with torch.no_grad():
        h1 = {t: v.softmax(-1).numpy() for t, v in net.forward_heads(torch.from_numpy(q1)).items()}
    for j, (t, n) in enumerate(meta["tasks"].items()):
        w = info["weights"][t]
        p = (1 - w) * h1[t] + w * _hand_vote(bank, bank_y[:, j], q1, 5, 0.1, n)
        assert [pr.confidences[t] for pr in preds] == pytest.approx(p.max(1).tolist(), abs=1e-4)
    # and with --tta it answers what evaluate scores (the test split's blend above, with the mirror)
    both = Predictor.load(path, top_k=1, tta=True).predict_arrays(x)
    _, raw = fashion.evaluate_checkpoint(path, prepared, te[:8], tta=True)
    for t, logp in raw["outputs"].items():
        best = torch.from_numpy(logp).float().softmax(-1).max(-1)
        assert [pr.labels[t] for pr in both] == [meta["encoders"][t][j] for j in best.indices.tolist()]
        assert [pr.confidences[t] for pr in both] == pytest.approx(best.values.tolist(), abs=1e-4)


def test_training_with_a_vote_and_the_knn_command_refusals(synthetic_root, tmp_path, tiny_run):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="v", **{
        "knn.k": 3, "knn.bank": "train"}))
    run = fashion.train(cfg, progress=False, report=False)
    info = ckpt.read_meta(run / "checkpoints" / "best.safetensors")["knn"]
    prepared = fashion.prepare_data(cfg, progress=False)
    assert info["bank"] == "train" and info["bank_size"] == len(prepared.splits["train"]) and info["k"] == 3
    assert not ckpt.read_meta(run / "checkpoints" / "last.safetensors").get("knn")  # only the best gets it

    r = run_cli("fashion", "knn", str(tiny_run[0]), "--bank", "val")
    assert r.returncode == 2 and "--bank must be one of train, train+val" in r.stderr
    r = run_cli("fashion", "knn", str(tiny_run[0]), "-k", "100000")
    assert r.returncode != 0 and "knn.k must lie between 1 and the" in r.stderr
    assert not ckpt.read_meta(tiny_run[0] / "checkpoints" / "best.safetensors").get("knn")  # refused: untouched
