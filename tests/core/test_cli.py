"""The shared CLI pieces: engine options added once for every train command, and the one config builder's
precedence (defaults < base < YAML < implied < flags < overrides)."""
from __future__ import annotations

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
