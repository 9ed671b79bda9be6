"""Two more training levers of issue 18: mixup / CutMix batches and learned (uncertainty) task weights."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from helpers import tiny_overrides
from vislab.core import checkpoint as ckpt
from vislab.core.config import TrainConfig
from vislab.core.engine import Trainer
from vislab.core.mixing import BatchMixing, mixed_loss
from vislab.core.objectives import ClassificationObjective, TaskUncertainty
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config


def test_mixed_loss_equals_cross_entropy_against_the_blended_labels():
    """lam * CE(a) + (1 - lam) * CE(b) is cross-entropy against the target distribution lam * a + (1 - lam) * b,
    per task, with label smoothing too: checked against torch's cross-entropy with probability targets."""
    g = torch.Generator().manual_seed(0)
    out = {"a": torch.randn(6, 4, generator=g), "b": torch.randn(6, 3, generator=g)}
    y = torch.stack([torch.randint(0, 4, (6,), generator=g), torch.randint(0, 3, (6,), generator=g)], 1)
    obj = ClassificationObjective({"a": 4, "b": 3}, label_smoothing=0.1)
    total, parts = mixed_loss(obj, out, y, 0.3)
    for j, (t, n) in enumerate(obj.tasks.items()):
        soft = 0.3 * torch.nn.functional.one_hot(y[:, j], n) + 0.7 * torch.nn.functional.one_hot(y.flip(0)[:, j], n)
        want = torch.nn.functional.cross_entropy(out[t], soft.float(), label_smoothing=0.1)
        assert float(parts[t]) == pytest.approx(float(want), rel=1e-5)
    assert float(total) == pytest.approx(sum(float(v) for v in parts.values()), rel=1e-6)
    plain, _ = obj(out, y)
    assert float(mixed_loss(obj, out, y, 1.0)[0]) == float(plain) and abs(float(total) - float(plain)) > 0.05


def test_mixup_blends_and_cutmix_pastes_a_box_whose_area_is_the_label_share():
    x = torch.arange(4 * 3 * 20 * 16, dtype=torch.float32).view(4, 3, 20, 16)
    np.random.seed(0)
    mixed, lam = BatchMixing(mixup=0.4)(x)
    assert 0.0 < lam < 1.0
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x.flip(0))
    fracs = []
    for seed in range(20):
        np.random.seed(seed)
        cut, lam = BatchMixing(cutmix=1.0)(x)
        from_b = (cut == x.flip(0)) & (x != x.flip(0))
        assert torch.equal(cut[~from_b], x[~from_b])          # every other pixel is the image's own
        assert from_b.float().mean().item() == pytest.approx(1 - lam, abs=1e-6)  # the box's area is 1 - lam
        fracs.append(1 - lam)
    assert min(fracs) < 0.2 and max(fracs) > 0.5               # box sizes vary with Beta(1, 1)
    np.random.seed(1)
    lams = [BatchMixing(mixup=0.4, prob=0.5)(x)[1] for _ in range(400)]
    assert 150 < sum(v == 1.0 for v in lams) < 250               # half the batches stay unmixed (binomial, 5 sd)
    with pytest.raises(ValueError, match="image batches"):
        BatchMixing(cutmix=1.0)(torch.zeros(4, 8))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        BatchMixing(mixup=0.2, prob=0.0)


def test_uncertainty_weights_settle_at_one_over_twice_each_tasks_loss():
    """With fixed task losses 0.2 and 2.0, minimising sum exp(-s) L + s / 2 over s gives weights 1 / (2 L):
    the noisier task (higher loss) is weighted 10 times less."""
    u = TaskUncertainty(["easy", "hard"])
    opt = torch.optim.Adam(u.parameters(), lr=0.05)
    losses = {"easy": torch.tensor(0.2), "hard": torch.tensor(2.0)}
    for _ in range(600):
        opt.zero_grad()
        u(losses).backward()
        opt.step()
    w = u.weights()
    assert w["easy"] == pytest.approx(2.5, rel=0.02) and w["hard"] == pytest.approx(0.25, rel=0.02)
    obj = ClassificationObjective({"a": 2, "b": 2}, uncertainty=True)
    assert obj.log_row() == {"task_weight_a": 1.0, "task_weight_b": 1.0}   # every weight starts at 1
    assert ClassificationObjective({"a": 2}).log_row() == {}


def test_fashion_run_learns_task_weights_and_mixes_batches(synthetic_root, tmp_path, monkeypatch):
    lams = []
    real = BatchMixing.__call__

    def spy(self, x):
        mixed, lam = real(self, x)
        lams.append(lam)
        return mixed, lam

    monkeypatch.setattr(BatchMixing, "__call__", spy)
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="mix", **{
        "train.task_weighting": "uncertainty", "train.mixup": 0.4, "train.cutmix": 1.0, "train.lr": 0.05}))
    run = fashion.train(cfg, progress=False, report=False)
    assert lams and all(0.0 < v < 1.0 for v in lams)       # prob 1: every training batch mixed
    rows = list(csv.DictReader(open(run / "history.csv")))
    tasks = cfg.data.label_cols
    weights = [[float(r[f"task_weight_{t}"]) for t in tasks] for r in rows]
    assert len(weights) == 2 and all(w != 1.0 for w in weights[-1])   # learned, logged per epoch
    state = ckpt.load_state(run / "checkpoints" / "last.state.pt")
    np.testing.assert_allclose(torch.exp(-state["objective"]["log_vars"]).numpy(), weights[-1], rtol=1e-4)


def test_mixing_and_learned_weights_are_refused_where_they_mean_nothing(synthetic_root, tmp_path):
    with pytest.raises(ValueError, match="leave train.task_weights empty"):
        TrainConfig(task_weighting="uncertainty", task_weights={"gender": 2.0})
    with pytest.raises(ValueError, match="freeze_backbone"):
        load_config(None, tiny_overrides(synthetic_root, tmp_path, **{"train.cutmix": 1.0,
                                                                      "model.freeze_backbone": "true"}))
    with pytest.raises(ValueError, match="two or more"):
        load_config(None, tiny_overrides(synthetic_root, tmp_path, **{"train.task_weighting": "uncertainty",
                                                                      "data.label_cols": "[gender]"}))

    class PairLoss:  # e.g. the Siamese lab's objective: no labels to blend, no task weights
        def __call__(self, out, y):
            return out.sum(), {"loss": out.sum()}

        def make_metrics(self, train=False):
            raise AssertionError("not reached")

    model = torch.nn.Linear(2, 1)
    loader = [(torch.zeros(2, 2), torch.zeros(2))]
    for field in ({"mixup": 0.2}, {"task_weighting": "uncertainty"}):
        trainer = Trainer(TrainConfig(epochs=1, accelerator="cpu", **field), tmp_path / "t", progress=False)
        with pytest.raises(ValueError, match="mixup|task weights"):
            trainer.fit(model, PairLoss(), loader, loader)
