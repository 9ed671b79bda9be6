"""Models (registry, offline pretrained weights, MultiTaskNet), metrics vs scikit-learn, configs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from vislab.core.metrics import ClassificationMetrics, MultiTaskMetrics, majority_baseline
from vislab.core.models import PretrainedUnavailable, create_backbone, create_model, offline_state_dict
from vislab.labs.fashion.model import MultiTaskNet


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
    assert r["precision"] == pytest.approx(skm.precision_score(yt, yp, average="macro", labels=labels,
                                                               zero_division=0), abs=1e-5)
    assert r["recall"] == pytest.approx(skm.recall_score(yt, yp, average="macro", labels=labels, zero_division=0),
                                        abs=1e-5)
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




def test_backbone_names_are_read_without_importing_timm_and_match_it():
    """core.backbones reads timm's registered names from its source files (no torch import, milliseconds); the
    set must be exactly what timm registers, so a timm release that registers models differently fails here."""
    import timm

    from vislab.core.backbones import check_backbone, timm_names
    names = timm_names()
    assert set(timm.list_models()) <= names  # every current model ...
    assert all(timm.is_model(n) for n in names)  # ... and nothing timm does not know (deprecated aliases too)
    assert check_backbone("convnext_tiny.fb_in22k") == "convnext_tiny.fb_in22k"  # a pretrained tag
    assert check_backbone("hf-hub:timm/resnet18.a1_in1k").startswith("hf-hub:")
    with pytest.raises(ValueError, match="did you mean tf_efficientnet_lite0"):
        check_backbone("tf_efficientnet_lite0x")
