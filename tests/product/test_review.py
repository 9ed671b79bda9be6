"""Review thresholds: chosen on validation for a stated precision, stored in the checkpoint, shown in
the report, resolved in the right order, and parsed from --threshold."""
from __future__ import annotations

import numpy as np
import pytest

from vislab.core import checkpoint as ckpt
from vislab.core.errors import UsageError
from vislab.labs.fashion.review import (
    accepted,
    choose_threshold,
    choose_thresholds,
    coverage_curve,
    parse_threshold,
    resolve,
)


def test_choose_threshold_is_the_lowest_that_keeps_the_precision():
    conf = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 1, 1, 0, 1, 0, 0], bool)
    # accepted from the top: 1, 1, 1, 1 (4/4), 4/5, 5/6, 5/7, 5/8
    got = choose_threshold(conf, correct, 0.8)
    assert got["threshold"] == 0.6 and got["coverage"] == 6 / 8 and got["precision"] == pytest.approx(5 / 6)
    assert choose_threshold(conf, correct, 1.0)["threshold"] == 0.8
    assert choose_threshold(conf, correct, 0.5)["threshold"] == 0.4  # everything accepted
    none = choose_threshold(conf, ~correct, 0.9)
    assert none["threshold"] is None and none["coverage"] == 0.0
    assert not accepted(conf, None).any() and accepted(conf, 0.6).sum() == 6


def test_ties_are_accepted_or_refused_together():
    conf = np.array([0.9, 0.9, 0.9, 0.5])
    correct = np.array([1, 1, 0, 1], bool)
    # a threshold of 0.9 accepts all three 0.9s (2/3 right): for precision 0.9 nothing qualifies
    assert choose_threshold(conf, correct, 0.9)["threshold"] is None
    assert choose_threshold(conf, correct, 0.6)["threshold"] == 0.5


def test_coverage_curve_ends_at_full_coverage_with_overall_accuracy():
    rng = np.random.default_rng(0)
    conf = rng.random(500)
    correct = rng.random(500) < conf  # confident predictions are right more often
    cov, acc = coverage_curve(conf, correct)
    assert cov[-1] == 1.0 and acc[-1] == pytest.approx(correct.mean())
    assert acc[: len(acc) // 4].mean() > acc[-1]  # the most confident quarter is more accurate


def test_training_stores_thresholds_chosen_on_validation(tiny_run):
    run_dir, cfg = tiny_run
    path = run_dir / "checkpoints" / "best.safetensors"
    review = ckpt.read_meta(path)["review"]
    assert review["precision_target"] == cfg.review.precision == 0.98 and review["split"] == "val"
    assert set(review["thresholds"]) == set(cfg.data.label_cols)
    assert sum(review["n"].values()) == len(cfg.data.label_cols) * ckpt.read_meta(path)["split_sizes"]["val"]
    for t, th in review["thresholds"].items():
        if th is None:
            assert review["coverage"][t] == 0.0
        else:
            assert 0 < th <= 1 and review["precision"][t] >= 0.98 and 0 < review["coverage"][t] <= 1
    # the same choice again from the checkpoint's validation outputs
    import torch

    from vislab.labs.fashion import lab
    from vislab.labs.fashion.data import prepare
    prepared = prepare(cfg.data, progress=False)
    _, raw = lab.evaluate_checkpoint(path, prepared, prepared.splits["val"])
    probs = {t: torch.from_numpy(v).float().softmax(-1).numpy() for t, v in raw["outputs"].items()}
    again = choose_thresholds(probs, raw["targets"], 0.98)
    assert again["thresholds"] == pytest.approx(review["thresholds"])
    html = (run_dir / "report.html").read_text()
    assert "<h2>Review thresholds" in html and (run_dir / "figures" / "review.png").stat().st_size > 10_000


def test_calibrate_rechooses_and_keeps_the_weights(tiny_run, tmp_path):
    import shutil

    from safetensors.numpy import load_file

    from vislab.labs.fashion import lab
    run_dir, _ = tiny_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    path = copy / "checkpoints" / "best.safetensors"
    before = load_file(str(path))
    loose = lab.calibrate(copy, precision=0.5, progress=False)
    strict = ckpt.read_meta(run_dir / "checkpoints" / "best.safetensors")["review"]
    assert ckpt.read_meta(path)["review"] == loose and loose["precision_target"] == 0.5
    for t in loose["thresholds"]:  # a lower precision never needs a higher threshold
        if strict["thresholds"][t] is not None:
            assert loose["thresholds"][t] <= strict["thresholds"][t]
            assert loose["coverage"][t] >= strict["coverage"][t]
    after = load_file(str(path))
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_resolve_order_and_parse():
    meta = {"encoders": {"a": ["x"], "b": ["y"], "c": ["z"]}, "review": {"thresholds": {"a": 0.7, "b": None}},
            "config": {"review": {"thresholds": {"b": 0.4}}}}
    assert resolve(meta, default=0.6) == {"a": 0.7, "b": 0.4, "c": 0.6}
    assert resolve(meta, {"a": 0.1}) == {"a": 0.1, "b": 0.4, "c": None}
    assert parse_threshold("0.55", ["a", "b"]) == {"a": 0.55, "b": 0.55}
    assert parse_threshold("a=0.9, b=0.2", ["a", "b"]) == {"a": 0.9, "b": 0.2}
    for bad, msg in (("x=0.5", "unknown attribute 'x'"), ("1.5", "outside 0..1"), ("a=hi", "not a number")):
        with pytest.raises(UsageError, match=msg):
            parse_threshold(bad, ["a", "b"])
