"""Training levers of issue 18: class-balanced cross-entropy, progressive resizing, partial fine-tuning."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import tiny_overrides
from vislab.core import checkpoint as ckpt
from vislab.core.engine import seed_all
from vislab.core.objectives import ClassificationObjective, class_balance_weights
from vislab.core.transforms import BatchTransform, resize_scale, scaled_size
from vislab.labs.fashion import lab as fashion
from vislab.labs.fashion.config import load_config
from vislab.labs.fashion.model import MultiTaskNet


def test_class_balance_weights_equalise_class_totals_and_keep_the_mean():
    y = np.array([0] * 90 + [1] * 9 + [2] * 1 + [-1] * 5)
    w = class_balance_weights(y, 4, 1.0).numpy()
    counts = np.array([90, 9, 1])
    totals = counts * w[:3]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)      # power 1: every class weighs the same in total
    assert (counts * w[:3]).sum() / counts.sum() == pytest.approx(1.0)  # mean weight over the samples is 1
    assert w[3] == pytest.approx(w[2])                               # an absent class counts as one sample
    np.testing.assert_allclose(class_balance_weights(y, 4, 0.0).numpy(), 1.0)
    half = class_balance_weights(y, 4, 0.5).numpy()
    assert half[2] / half[0] == pytest.approx(np.sqrt(90), rel=1e-5)


def test_objective_with_class_weights_is_weighted_cross_entropy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.3, 0.2]])
    y = torch.tensor([[0], [1], [1], [-1]])
    w = torch.tensor([0.25, 3.0])
    loss, parts = ClassificationObjective({"a": 2}, class_weights={"a": w})({"a": logits}, y)
    want = torch.nn.functional.cross_entropy(logits, y[:, 0], weight=w, ignore_index=-1)
    plain = torch.nn.functional.cross_entropy(logits, y[:, 0], ignore_index=-1)
    assert float(loss) == pytest.approx(float(want)) and abs(float(loss) - float(plain)) > 0.05
    with pytest.raises(ValueError, match="3 values for a task of 2 classes"):
        ClassificationObjective({"a": 2}, class_weights={"a": torch.ones(3)})


def test_fashion_training_uses_the_class_balance_of_its_training_split(synthetic_root, tmp_path, monkeypatch):
    seen = {}

    class Spy(ClassificationObjective):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            seen.setdefault("weights", self.class_weights)  # the training objective is built first

    monkeypatch.setattr(fashion, "ClassificationObjective", Spy)
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="cb", **{"train.class_balance": 0.5,
                                                                                   "train.max_steps": 2}))
    fashion.train(cfg, progress=False, report=False)
    prepared = fashion.prepare_data(cfg, progress=False)
    tr = prepared.splits["train"]
    assert set(seen["weights"]) == set(prepared.tasks)
    for j, (t, n) in enumerate(prepared.tasks.items()):
        np.testing.assert_allclose(seen["weights"][t].cpu().numpy(),
                                   class_balance_weights(prepared.targets[tr, j], n, 0.5).numpy())
    assert any(float(w.max() / w.min()) > 1.5 for w in seen["weights"].values())  # the synthetic set is unbalanced


def test_resize_schedule_ramps_to_full_size():
    assert [resize_scale(e, 4, 0.5, 0.5) for e in range(1, 5)] == [0.5, 0.75, 1.0, 1.0]
    assert [resize_scale(e, 16, 0.75, 0.5) for e in (1, 5, 9, 16)] == [0.75, 0.875, 1.0, 1.0]
    assert resize_scale(1, 3, None) == 1.0
    assert scaled_size((128, 96), 0.75) == (96, 72) and scaled_size((20, 12), 0.3) == (8, 8)


def test_batch_transform_shrinks_only_training_batches():
    t = BatchTransform([0.5] * 3, [0.25] * 3, augment=True)
    x = torch.full((4, 3, 128, 96), 200, dtype=torch.uint8)
    t.scale = 0.75
    small = t.train()(x, torch.Generator().manual_seed(0))
    assert small.shape[-2:] == (96, 72)
    full = t.eval()(x)
    assert full.shape[-2:] == (128, 96)
    # a uniform photo stays uniform after the antialiased resize: the pixel values are not distorted
    plain = BatchTransform([0.5] * 3, [0.25] * 3, augment=False)
    plain.scale = 0.5
    out = plain.train()(x)
    assert out.shape[-2:] == (64, 48)
    np.testing.assert_allclose(out.numpy(), (200 / 255 - 0.5) / 0.25, atol=1e-5)


def test_progressive_resizing_trains_small_then_full_and_validates_full(synthetic_root, tmp_path, monkeypatch):
    shapes = []
    real = MultiTaskNet.forward_features

    def spy(self, x):
        shapes.append((self.training, tuple(x.shape[-2:])))
        return real(self, x)

    monkeypatch.setattr(MultiTaskNet, "forward_features", spy)
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="prog", **{
        "data.image_size": "[64,48]", "train.epochs": 2, "train.resize_start": 0.5, "train.resize_full_at": 0.5}))
    run = fashion.train(cfg, progress=False, report=False)
    train_sizes = [s for training, s in shapes if training]
    assert (32, 24) in train_sizes and (64, 48) in train_sizes
    assert train_sizes.index((64, 48)) > len([s for s in train_sizes if s == (32, 24)]) - 1  # small first
    assert all(s == (64, 48) for training, s in shapes if not training)
    import csv
    rows = list(csv.DictReader(open(run / "history.csv")))
    assert [float(r["train_scale"]) for r in rows] == [0.5, 1.0]


def test_progressive_resizing_needs_image_batches(synthetic_root, tmp_path):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="frozen", **{
        "train.resize_start": 0.5, "model.freeze_backbone": "true", "train.max_steps": 1}))
    with pytest.raises(ValueError, match="resize_start"):
        fashion.train(cfg, progress=False, report=False)
    with pytest.raises(ValueError, match="resize_start"):
        load_config(None, tiny_overrides(synthetic_root, tmp_path, **{"train.resize_start": 1.5}))


def test_partial_fine_tuning_trains_only_the_last_stages_and_keeps_frozen_statistics(synthetic_root, tmp_path):
    cfg = load_config(None, tiny_overrides(synthetic_root, tmp_path, name="partial", **{
        "model.train_blocks": 2, "train.max_steps": 3, "train.epochs": 1}))
    run = fashion.train(cfg, progress=False, report=False)
    prepared = fashion.prepare_data(cfg, progress=False)
    seed_all(cfg.train.seed)  # the same initial weights as the run's
    start = fashion.build_model(cfg, prepared.tasks).state_dict()
    trained, _ = ckpt.load_checked(run / "checkpoints" / "last.safetensors", "fashion")
    n = len(fashion.build_model(cfg, prepared.tasks).backbone.blocks)  # test_efficientnet: 5 stages
    frozen = [k for k in start if k.startswith(("backbone.conv_stem", "backbone.bn1"))
              or any(k.startswith(f"backbone.blocks.{i}.") for i in range(n - 2))]
    trainable = [k for k in start if k.startswith(f"backbone.blocks.{n - 1}.") and k.endswith("weight")]
    assert frozen and trainable and any("running_mean" in k for k in frozen)
    for k in frozen:  # weights and BatchNorm running statistics both untouched
        assert torch.equal(trained[k], start[k]), k
    assert any(not torch.equal(trained[k], start[k]) for k in trainable)
    assert not torch.equal(trained["heads.gender.1.weight"], start["heads.gender.1.weight"])
    stats = [k for k in start if k.startswith(f"backbone.blocks.{n - 1}.") and k.endswith("running_mean")]
    assert any(not torch.equal(trained[k], start[k]) for k in stats)  # a trained stage's BatchNorm still adapts


def test_partial_fine_tuning_rejects_more_stages_than_the_backbone_has_before_reading_data(tmp_path):
    cfg = load_config(None, tiny_overrides(tmp_path / "no-such-data", tmp_path, name="bad", **{
        "model.train_blocks": 6}))
    with pytest.raises(ValueError, match="between 0 and 5"):
        fashion.train(cfg, progress=False, report=False)
    assert not (tmp_path / "bad").exists()
