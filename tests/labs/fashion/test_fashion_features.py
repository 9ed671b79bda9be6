"""Pooled backbone features (`vislab.labs.fashion.features`): the one loop behind the linear probe and the
neighbour vote gives each chosen row its own photo's features, mirrored on request, and is cached once."""
from __future__ import annotations

import numpy as np
import torch

from vislab.labs.fashion.features import backbone_features, pooled_features
from vislab.labs.fashion.model import MultiTaskNet


def _net():
    torch.manual_seed(0)
    return MultiTaskNet("test_efficientnet", {"a": 3, "b": 2}, pretrained=False, image_size=(32, 24)).eval()


def _by_hand(net, images):
    """One photo at a time, contiguous NCHW (the images are stored NCHW uint8), normalised by hand."""
    mean = torch.tensor(net.data_config["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(net.data_config["std"]).view(1, 3, 1, 1)
    x = (torch.from_numpy(images).float() / 255 - mean) / std
    with torch.no_grad():
        return torch.cat([net.forward_features(x[i:i + 1]) for i in range(len(x))])


def test_rows_order_and_mirror_mean():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (11, 3, 32, 24), dtype=np.uint8)
    net = _net()
    rows = np.array([7, 2, 9, 0, 5])
    plain = pooled_features(net, images, rows, tta=False, batch_size=2)
    torch.testing.assert_close(plain, _by_hand(net, images[rows]), atol=1e-4, rtol=1e-4)
    both = pooled_features(net, images, rows, tta=True, batch_size=3)
    mirrored = _by_hand(net, images[rows][..., ::-1].copy())
    torch.testing.assert_close(both, (plain + mirrored) / 2, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(both, plain, atol=1e-3)  # the mirror changes the features of these photos
    # the heads are linear, so the heads of the mean features are the mean of the two views' logits
    with torch.no_grad():
        h = net.forward_heads(both)["a"]
        two = (net.forward_heads(plain)["a"] + net.forward_heads(mirrored)["a"]) / 2
    torch.testing.assert_close(h, two, atol=1e-4, rtol=1e-4)
    assert pooled_features(net, images, np.array([], int)).shape == (0, net.num_features)


def test_probe_features_are_cached_once(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3, 32, 24), dtype=np.uint8)
    first = backbone_features(_net(), images, "cpu", "k1", str(tmp_path), batch_size=4, progress=False)
    torch.testing.assert_close(first, _by_hand(_net(), images), atol=1e-4, rtol=1e-4)
    assert first.requires_grad is False and not first.is_inference()  # the probe's heads train on them
    other = MultiTaskNet("test_efficientnet", {"a": 3}, pretrained=False, image_size=(32, 24))
    torch.testing.assert_close(backbone_features(other, images, "cpu", "k1", str(tmp_path), progress=False), first)
    assert not torch.allclose(backbone_features(other, images, "cpu", None, None, progress=False), first)
