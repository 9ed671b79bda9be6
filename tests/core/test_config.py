"""Config files: `_base_` inheritance, packaged `LAB/NAME` configs, the recipe registry, lab-checked loading."""
from __future__ import annotations

import pytest
import torch

import vislab
from vislab.core import checkpoint as ckpt
from vislab.core.config import load_config, packaged_configs, read_config, resolve_config
from vislab.core.recipes import RECIPES, recipes, register_recipe
from vislab.labs.cifar.config import CifarRunConfig
from vislab.labs.vae.classifier import SHIPPED
from vislab.labs.vae.config import VaeRunConfig


def test_base_chain_merges_and_own_values_win(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\ntrain:\n  epochs: 3\n  lr: 0.1\nmodel:\n  name: cnn\n")
    (tmp_path / "b.yaml").write_text("_base_: a\nname: b\ntrain:\n  lr: 0.2\n")
    (tmp_path / "c.yaml").write_text("_base_: [b, cifar/fast]\nname: c\n")
    b = read_config(tmp_path / "b.yaml")
    assert b == {"name": "b", "train": {"epochs": 3, "lr": 0.2}, "model": {"name": "cnn"}}
    c = load_config(tmp_path / "c.yaml", ["train.epochs=9"], model=CifarRunConfig)
    # the later base (cifar/fast) overrides the earlier one; the file's own name and the override win
    assert c.name == "c" and c.model.name == "transfer:efficientnet_lite0" and c.train.lr == 0.05
    assert c.train.epochs == 9 and c.data.val_per_class == 200


def test_base_cycle_and_missing_base_are_clear_errors(tmp_path):
    (tmp_path / "x.yaml").write_text("_base_: y\n")
    (tmp_path / "y.yaml").write_text("_base_: x\n")
    with pytest.raises(ValueError, match="_base_ cycle"):
        read_config(tmp_path / "x.yaml")
    (tmp_path / "z.yaml").write_text("_base_: nowhere\n")
    with pytest.raises(FileNotFoundError, match="config file nowhere does not exist"):
        read_config(tmp_path / "z.yaml")


def test_packaged_names_work_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config("cifar/fast").name == "fast.yaml"
    assert resolve_config("cifar/fast.yaml") == resolve_config("cifar/fast")
    w128 = load_config("vae/cvae-w128-beta0.5", model=VaeRunConfig)  # three levels of _base_
    assert (w128.model.name, w128.model.width, w128.model.beta, w128.train.epochs, w128.train.scheduler) == \
        ("cvae", 128, 0.5, 40, "cosine")
    with pytest.raises(FileNotFoundError, match="the cifar lab ships cifar/default, cifar/fast"):
        resolve_config("cifar/nope")
    assert {"fashion/demo", "siamese/cv", "vae/classifier"} <= set(packaged_configs())
    assert packaged_configs("cifar") == ["cifar/default", "cifar/fast"]
    with pytest.raises(TypeError, match="model="):
        load_config("cifar/fast")


def test_recipe_registry_per_lab_and_guarded():
    assert "fast" in recipes("cifar") and "tuned" not in recipes("cifar") and "tuned" in recipes("fashion")
    assert recipes() == sorted(RECIPES) and len(RECIPES) == 10
    with pytest.raises(ValueError, match="unknown fields"):
        register_recipe("bad", "test", learning_rate=1.0)
    with pytest.raises(ValueError, match="registered twice"):
        register_recipe("fast", "cifar", lr=1.0)
    assert RECIPES["fast"]["lr"] == 0.2  # the refused re-registration changed nothing
    from vislab.core.recipes import recipe_doc
    doc = recipe_doc("fast")
    assert register_recipe("fast", "cifar", doc, **RECIPES["fast"]) == RECIPES["fast"]  # a module imported twice
    assert recipe_doc("fast") == doc


def test_lab_checked_loading_and_vislab_load_dispatch(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    state, meta = ckpt.load_weights(SHIPPED)
    ckpt.save_weights(run / "checkpoints" / "best.safetensors", state, {k: v for k, v in meta.items()
                                                                       if k not in ("format", "versions")})
    with pytest.raises(ckpt.CheckpointError, match="is a 'fmnist-classifier' checkpoint, not a CIFAR one"):
        ckpt.load_checked(run, "cifar", "CIFAR")
    assert ckpt.resolve(run) == (run / "checkpoints" / "best.safetensors", run)
    with pytest.raises(FileNotFoundError, match="no such run folder or checkpoint"):
        ckpt.resolve(tmp_path / "missing")
    model, meta2 = vislab.load(run)  # a run folder: its best checkpoint, loaded by the lab it names
    assert meta2["lab"] == "fmnist-classifier"
    x = torch.zeros(2, 1, 28, 28)
    assert model(x).shape == (2, 10) and not model.training
