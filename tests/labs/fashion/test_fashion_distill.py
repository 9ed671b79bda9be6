"""Distillation from your own fashion models (`distill.teachers`): the student learns the teachers'
probabilities, which are computed once and cached in the run folder; bad teachers fail before any work."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_overrides
from vislab.core.errors import ConfigError
from vislab.labs.fashion import distill
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config


def _train(root, out, name, **extra):
    cfg = load_config(None, tiny_overrides(root, out, name=name, **{"train.epochs": 5, "train.seed": 1, **extra}))
    return fashion.train(cfg, progress=False, report=False), cfg


def test_student_learns_the_teachers_mistakes_from_cached_probabilities(tiny_run, synthetic_root, tmp_path,
                                                                        monkeypatch):
    teacher, tcfg = tiny_run
    labels_run, _ = _train(synthetic_root, tmp_path, "labels")
    kd_run, kd_cfg = _train(synthetic_root, tmp_path, "kd", **{
        "distill.teachers": f"[{teacher}]", "distill.weight": 1.0, "distill.temperature": 2.0})
    prepared = fashion.prepare_data(tcfg, progress=False)
    tr = np.sort(prepared.splits["train"])

    # the cache: the teacher's tempered probabilities on the training rows, zeros elsewhere
    cached = load_file(str(kd_run / distill.CACHE))
    direct = distill.ensemble_probs([teacher / "checkpoints" / "best.safetensors"], tcfg.data, prepared, tr,
                                    temperature=2.0)
    others = np.setdiff1d(np.arange(len(prepared.targets)), tr)
    for t in prepared.encoders:
        assert np.allclose(cached[t][tr].numpy(), direct[t], atol=1e-6)
        assert np.allclose(cached[t][tr].sum(1).numpy(), 1.0, atol=1e-5)
        assert float(cached[t][others].abs().sum()) == 0.0

    # on the rows where the teacher is wrong, the distilled student follows the teacher, not the label
    preds = {n: distill.ensemble_probs([r / "checkpoints" / "best.safetensors"], tcfg.data, prepared, tr, tta=False)
             for n, r in (("teacher", teacher), ("labels", labels_run), ("kd", kd_run))}
    follows_label, follows_teacher = {"labels": [], "kd": []}, {"labels": [], "kd": []}
    for j, t in enumerate(prepared.encoders):
        y, tp = prepared.targets[tr, j], preds["teacher"][t].argmax(1)
        wrong = tp != y
        for n in ("labels", "kd"):
            p = preds[n][t].argmax(1)[wrong]
            follows_label[n].append((p == y[wrong]).mean())
            follows_teacher[n].append((p == tp[wrong]).mean())
    assert np.mean(follows_label["kd"]) < 0.6 * np.mean(follows_label["labels"])
    assert np.mean(follows_teacher["kd"]) > np.mean(follows_teacher["labels"]) + 0.1

    # a resumed run reads the cache: the teachers are not needed again
    monkeypatch.setattr(distill, "resolve_teachers", lambda cfg: pytest.fail("teachers scored again"))
    again = distill.teacher_targets(kd_cfg, prepared, tr, kd_run)
    assert all(torch.equal(again[t], cached[t]) for t in cached)


def test_a_teacher_of_another_split_or_a_missing_one_fails_before_a_run_folder(tiny_run, synthetic_root, tmp_path):
    teacher, _ = tiny_run
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="s", **{
        "data.seed": 7, "distill.teachers": f"[{teacher}]"}))
    with pytest.raises(ConfigError, match=r"another split \(data.seed differ"):
        fashion.train(cfg, progress=False)
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="s", **{
        "distill.teachers": f"[{tmp_path / 'nowhere'}]"}))
    with pytest.raises(ConfigError, match="distill.teachers: .*nowhere: no such run folder"):
        fashion.train(cfg, progress=False)
    assert not (tmp_path / "s").exists()
