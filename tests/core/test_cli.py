"""The shared CLI pieces: engine options added once for every train command, and the one config builder's
precedence (defaults < base < YAML < implied < flags < overrides)."""
from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from vislab.cli import app as root
from vislab.core.cli import ENGINE_FLAGS, ENGINE_OPTIONS, build_config, engine_options
from vislab.labs.cifar.cli import FLAGS as CIFAR_FLAGS
from vislab.labs.cifar.config import CifarRunConfig


def test_engine_options_reach_the_command_as_one_dict():
    app = typer.Typer()
    seen = {}

    @app.command()
    @engine_options
    def train(name: str = "x", engine: dict | None = None):
        seen.update(name=name, engine={k: v for k, v in engine.items() if v is not None})

    res = CliRunner().invoke(app, ["--name", "run", "--epochs", "3", "--lr", "0.1", "--devices", "2", "--fast"])
    assert res.exit_code == 0, res.output
    assert seen == {"name": "run", "engine": {"epochs": 3, "lr": 0.1, "devices": "2", "deterministic": False}}
    assert set(ENGINE_OPTIONS) <= set(ENGINE_FLAGS)


def test_every_train_command_takes_every_engine_option():
    import typer.main
    group = typer.main.get_command(root)
    for lab in ("fashion", "cifar", "siamese", "vae"):
        opts = {o for p in group.commands[lab].commands["train"].params for o in p.opts}
        assert {"--epochs", "--max-steps", "--batch-size", "--lr", "--accelerator", "--devices", "--strategy",
                "--precision", "--seed", "--deterministic"} <= opts, lab


def test_config_builder_precedence(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("_base_: cifar/fast\ntrain:\n  lr: 0.1\n  epochs: 2\n")
    base = {"name": "from-checkpoint", "train": {"lr": 0.01, "grad_clip": 0.5}}
    cfg = build_config(CifarRunConfig, CIFAR_FLAGS, str(y), ["train.epochs=9"], base, lr=0.2, epochs=4, name=None)
    assert cfg.name == "cifar-fast"            # the YAML (via its base) over the checkpoint's
    assert cfg.train.grad_clip == 0.5          # the base where nothing else says
    assert cfg.train.lr == 0.2                 # a flag over the YAML
    assert cfg.train.epochs == 9               # an override over the flag
    # a model chosen by flag brings its own recipe unless one is given
    own = build_config(CifarRunConfig, CIFAR_FLAGS, "cifar/fast", None, implied={"train": {"recipe": None}},
                       model="mlp")
    assert own.model.name == "mlp" and own.train.recipe == "mlp-sgd"


def _vislab(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "vislab", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "COLUMNS": "200"})


def test_bad_values_fail_fast_with_the_flag_and_the_range(tmp_path):
    res = _vislab("fashion", "train", "--epochs", "-1", "--batch-size", "0", "--lr", "-1", "--limit", "0",
                  "--out", tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    for part in ("train.epochs (--epochs): Input should be greater than or equal to 1 (got -1)",
                 "train.batch_size (--batch-size)", "train.lr (--lr): Input should be greater than 0",
                 "data.limit (--limit)"):
        assert part in res.stderr, res.stderr
    assert not any(tmp_path.iterdir())  # nothing was read or written


def test_unknown_fields_and_choices_suggest_the_nearest(tmp_path):
    res = _vislab("fashion", "train", "train.epoch=3")
    assert res.returncode == 1
    assert "train.epoch: unknown field; did you mean train.epochs or train.stop_epoch?" in res.stderr
    res = _vislab("cifar", "train", "model.nmae=cnn")
    assert res.returncode == 1 and "did you mean model.name?" in res.stderr
    res = _vislab("fashion", "evaluate", tmp_path / "x.safetensors", "--split", "tset")
    expected = "--split must be one of test, val, train, all; got 'tset' (did you mean test?)"
    assert res.returncode == 2 and expected in res.stderr
    res = _vislab("siamese", "train", "--accelerator", "gpux")
    assert res.returncode == 2 and "did you mean gpu?" in res.stderr


def test_accelerator_without_the_hardware_is_one_clear_line(monkeypatch):
    import torch

    from vislab.core.cli import check_accelerator
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(typer.Exit) as e:
        check_accelerator("gpu")
    assert e.value.exit_code == 1
    check_accelerator("cpu")
    check_accelerator(None)
