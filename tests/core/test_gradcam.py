"""Grad-CAM on hooks: a map that peaks where the evidence is, the target layer chosen per backbone and size,
clear errors, the deletion test, and (where `grad-cam` is installed) agreement with that library."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vislab.core.errors import UsageError
from vislab.core.gradcam import GradCAM, choose_layer, deletion_test


class RedDetector(nn.Module):
    """A hand-set two-class net: 'red' scores the average redness (R - G - B, rectified) of the image."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 2, 1, bias=False)
        self.blocks = nn.Sequential(nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1, bias=False), nn.ReLU())
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.stem.weight.copy_(torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, 1.0]]).view(2, 3, 1, 1))
            self.blocks[1].weight.zero_()
            self.blocks[1].weight[0, 0] = 1 / 9
            self.blocks[1].weight[1, 1] = 1 / 9
            self.fc.weight.copy_(torch.tensor([[0.0, 1.0], [80.0, 0.0]]))  # class 1 = red

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).mean((2, 3)))


def patch_image(top: int, left: int, size: int = 8, hw=(32, 24)) -> torch.Tensor:
    """A dark image whose only content is a red square."""
    x = torch.zeros(1, 3, *hw)
    x[0, 0, top:top + size, left:left + size] = 1.0
    return x


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
@pytest.mark.parametrize("where", [(2, 3), (20, 14), (12, 0)])
def test_the_map_peaks_on_the_only_content(method, where):
    net = RedDetector().eval()
    x = patch_image(*where)
    res = GradCAM(net, "blocks", method)(x, {"class": [1]})["class"]
    m = res.maps[0]
    assert m.shape == (32, 24) and float(m.max()) == pytest.approx(1.0) and float(m.min()) >= 0
    top, left = where
    inside = torch.zeros_like(m, dtype=torch.bool)
    inside[top:top + 8, left:left + 8] = True
    r, c = divmod(int(m.argmax()), 24)
    assert top <= r < top + 8 and left <= c < left + 8  # not transposed, not mirrored
    assert float(m[inside].mean()) > 4 * float(m[~inside].mean())
    assert res.classes.tolist() == [1] and res.layer == "blocks"


def test_predicted_class_scores_and_batches():
    net = RedDetector().eval()
    x = torch.cat([patch_image(2, 2), patch_image(20, 10)])
    res = GradCAM(net, "blocks")(x)["class"]  # None: the predicted class, plain logits -> task "class"
    probs = net(x).softmax(1)
    assert res.classes.tolist() == probs.argmax(1).tolist() == [1, 1]
    assert res.scores.numpy() == pytest.approx(probs.max(1).values.detach().numpy(), abs=1e-6)
    a, b = res.maps
    assert int(a.argmax()) // 24 < 10 and int(b.argmax()) // 24 >= 20  # each image its own map


def test_layer_choice_per_backbone_and_size():
    from vislab.core.models import create_backbone
    lite0 = create_backbone("tf_efficientnet_lite0", pretrained=False).eval()
    # the last stride-16 stage at 96x72 (6x5), finer than the final 3x3 map; the final stage at 224
    assert choose_layer(lite0, torch.zeros(1, 3, 96, 72))[0] == "blocks.4"
    assert choose_layer(lite0, torch.zeros(1, 3, 128, 96))[0] == "blocks.4"
    assert choose_layer(lite0, torch.zeros(1, 3, 224, 224))[0] == "bn2"

    class Wrapped(nn.Module):  # the fashion and CIFAR transfer nets keep it as .backbone
        def __init__(self):
            super().__init__()
            self.backbone = lite0

        def forward(self, x):
            return self.backbone(x)

    assert choose_layer(Wrapped(), torch.zeros(1, 3, 96, 72))[0] == "backbone.blocks.4"
    assert choose_layer(RedDetector(), torch.zeros(1, 3, 32, 24))[0] == "blocks.2"


def test_bad_layers_and_tasks_are_one_line():
    with pytest.raises(UsageError, match=r"no such module in RedDetector \(stages: stem, blocks.0"):
        GradCAM(RedDetector(), "backbone.blocks.9")(patch_image(0, 0))
    with pytest.raises(UsageError, match="no convolutional stage"):
        GradCAM(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 24, 2)))(patch_image(0, 0))
    with pytest.raises(UsageError, match="--task 'colour'"):
        GradCAM(RedDetector(), "blocks")(patch_image(0, 0), {"colour": None})
    with pytest.raises(UsageError, match="--method"):
        GradCAM(RedDetector(), method="cam")


def test_deletion_removes_what_the_model_uses():
    """Removing the salient 20% (the red square) takes the 'red' confidence away; 20% at random barely moves it."""
    net = RedDetector().eval()
    rng = np.random.default_rng(0)
    imgs = np.zeros((16, 3, 32, 24), np.uint8)
    for i in range(16):
        r, c = rng.integers(0, 24), rng.integers(0, 16)
        imgs[i, 0, r:r + 8, c:c + 8] = 255
    cam = GradCAM(net, "blocks")
    out = deletion_test(cam, torch.from_numpy(imgs), lambda u8: u8.float() / 255, fraction=0.2, fill=(0, 0, 0))
    m = out["class"]
    assert m["images"] == 16 and m["confidence"] > 0.9
    assert m["drop_salient"] > 0.3 and m["drop_salient"] > 3 * max(m["drop_random"], 0.01)
    assert m["salient_wins"] == 1.0
    with pytest.raises(UsageError, match="between 0 and 1"):
        deletion_test(cam, torch.from_numpy(imgs), lambda u8: u8.float(), fraction=1.5)


def test_agrees_with_the_grad_cam_library():
    """Development cross-check (pip install grad-cam): the same maps as pytorch-grad-cam's GradCAM and
    GradCAMPlusPlus on the ImageNet-weighted Lite0 (random weights give maps that are almost all zero)."""
    lib = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from vislab.core.models import create_backbone
    torch.manual_seed(0)
    net = create_backbone("tf_efficientnet_lite0", pretrained=True, num_classes=7).eval()
    x = torch.randn(3, 3, 96, 72)
    for mine, theirs in (("gradcam", lib.GradCAM), ("gradcam++", lib.GradCAMPlusPlus)):
        ours = GradCAM(net, "blocks.4", mine)(x, {"class": [1, 4, 6]})["class"].maps.numpy()
        with theirs(model=net, target_layers=[net.blocks[4]]) as c:
            ref = c(input_tensor=x, targets=[ClassifierOutputTarget(k) for k in (1, 4, 6)])
        for a, b in zip(ours, ref):
            # the library resizes with OpenCV and rescales min..max; compare shapes of the maps
            a = (a - a.min()) / max(a.max() - a.min(), 1e-9)
            assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999
