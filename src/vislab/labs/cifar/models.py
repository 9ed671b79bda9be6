"""CIFAR-10 models: every one takes (N, 3, 32, 32) images and returns logits (N, num_classes).

    net = create_cifar_model("blocks:ABCDEABC")      # or mlp, cnn, cnn-bn, transfer:vgg16, fastnet, ...
    net(x) -> logits;  net.forward_features(x) -> (N, D);  net.stages(x) -> [(name, feature map), ...]
    net(x) == net.forward_head(net.forward_features(x))   (timm's split; the ONNX export uses it)

Families (`CIFAR_MODELS`, `vislab cifar models`):

- ``mlp``: flatten -> 256 -> 128 -> classes, ReLU. `stages` is empty (no conv stage).
- ``cnn``: three stages [conv3x3, ReLU, conv3x3, ReLU, maxpool2] of widths 32-64, 128-128, 256-256,
  flatten (256*4*4), linear. ``cnn-bn`` adds, after each pool, BatchNorm then Dropout(0.2)
  (pool -> BN -> Dropout: normalise the pooled map, then drop).
- ``blocks:<8 letters A-E>``: stem of three conv3x3(bias)-BN-ReLU (3->32->64->128), eight blocks
  128,128,256,256,256,512,512,512 wide, max-pool 2 after blocks 3, 5 and 8, global average pool,
  Dropout(0.25), linear. Convs have no bias except the stem's and B's gate. The blocks:

  A  conv3x3 - BN - ReLU.
  B  A, then a spatial attention gate: x * sigmoid(conv1x1(x) -> 1 channel, with bias).
  C  A, then squeeze-and-excitation: GAP -> FC(C, C/16) -> ReLU -> FC(C/16, C) -> sigmoid -> scale;
     both FC layers have a bias.
  D  residual: ReLU(BN(conv3x3(x)) + shortcut(x)); the shortcut is a bare 1x1 conv (no BN, no bias)
     when the width changes, else identity. ``separable=True`` (or the spec suffix ``-sep``) makes
     the 3x3 conv depthwise (3x3, groups=in) + pointwise (1x1), with the one BN after the pointwise
     conv only. It applies to D blocks; other letters ignore it.
  E  bottleneck: 1x1 reduce to out/4 - BN - ReLU - grouped 3x3 (out/4 -> out/4, groups = in//8)
     - BN - ReLU - 1x1 expand - BN, added to the shortcut (bare 1x1 projection as in D), ReLU.
     groups = in//8 (16, 32 or 64 here) divides out/4 (32, 64 or 128) for every block of the net.

  These choices reproduce the original experiment's trainable parameter counts exactly:
  A 7,771,658; B 7,774,226; C 7,901,354; D 7,935,498; D separable 1,139,338; E 752,266
  (stem 93,696 + head 5,130 + blocks; tests/labs/cifar/test_cifar_models.py checks each).
- ``transfer:vgg16``: torchvision VGG16 ``features`` (ImageNet weights when pretrained; 512x1x1 on
  32x32 input), the first ``freeze=19`` feature layers frozen (conv1_1 .. conv3_3 and their
  pools/ReLUs, i.e. the 8 first convs), then 512 -> 256 -> 128 -> classes, each hidden linear
  followed by ReLU and Dropout(0.5). Expects ImageNet mean/std (also when trained from scratch, so a
  reloaded checkpoint normalises the same way).
- ``transfer:efficientnet_lite0``: timm ``tf_efficientnet_lite0`` (offline ImageNet weights via
  `models.create_backbone`), Dropout(0.2) + linear head. Its "units" are the stem, the 7 stages of
  ``blocks`` and the 1x1 head conv; ``freeze=k`` freezes the first k units (default 3: stem and the
  first two stages), frozen BatchNorms also keep their running statistics (eval mode). Inputs are
  upsampled inside `forward` to ``input_size`` (default 64, bilinear); mean/std 0.5 (its pretrained
  config).
- ``fastnet``: vislab's fast net in the spirit of airbench94 (Keller Jordan): 2x2 conv stem to 24
  channels (no padding, bias) + GELU, three blocks [conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN -
  GELU] of ``widths=(64, 256, 256)``, global max-pool, linear without bias scaled by 1/9.
  `init_whitening(images)` sets the stem to a patch-whitening filter bank (eigenvectors of the 2x2
  patch covariance, +/-), as the original does.

Transfer models have `param_groups(lr, backbone_lr_mult)` (unfrozen backbone at lr*mult, the new head
at lr), which the engine uses. Models only use out-of-place ops and accept channels_last inputs.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.models import PretrainedUnavailable, backbone_data_config, create_backbone
from vislab.labs.cifar.specs import BLOCK_DOCS, BLOCK_WIDTHS, CIFAR_MODELS, check_spec, parse_blocks  # noqa: F401

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Stages = list[tuple[str, torch.Tensor]]


# --------------------------------------------------------------------------- mlp / cnn


class MLP(nn.Module):
    """flatten -> 256 -> 128 -> classes (ReLU)."""

    def __init__(self, num_classes: int = 10, hidden: tuple[int, ...] = (256, 128), in_features: int = 3 * 32 * 32):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(in_features, h), nn.ReLU()]
            in_features = h
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(in_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        """No conv stage: an empty list."""
        return []


class SimpleCNN(nn.Module):
    """Three stages of two 3x3 convs + max-pool; `bn=True` adds BN and Dropout(0.2) after each pool."""

    def __init__(self, num_classes: int = 10, widths: tuple[tuple[int, int], ...] = ((32, 64), (128, 128), (256, 256)),
                 bn: bool = False, drop: float = 0.2):
        super().__init__()
        stages, cin = [], 3
        for w1, w2 in widths:
            layers = [nn.Conv2d(cin, w1, 3, padding=1), nn.ReLU(), nn.Conv2d(w1, w2, 3, padding=1), nn.ReLU(),
                      nn.MaxPool2d(2)]
            if bn:
                layers += [nn.BatchNorm2d(w2), nn.Dropout(drop)]
            stages.append(nn.Sequential(*layers))
            cin = w2
        self.features = nn.Sequential(*stages)
        side = 32 // 2 ** len(widths)
        self.fc = nn.Linear(cin * side * side, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        out = []
        for i, s in enumerate(self.features, 1):
            x = s(x)
            out.append((f"stage{i}", x))
        return out


# --------------------------------------------------------------------------- blocks A-E


def conv_bn(cin: int, cout: int, k: int = 3, bias: bool = False, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias, groups=groups), nn.BatchNorm2d(cout)]


def projection(cin: int, cout: int) -> nn.Module:
    """Shortcut: identity, or a bare 1x1 conv (no BN, no bias) when the width changes."""
    return nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)


class BlockA(nn.Sequential):
    """conv3x3 - BN - ReLU."""

    def __init__(self, cin: int, cout: int, **_):
        super().__init__(*conv_bn(cin, cout), nn.ReLU())


class SpatialGate(nn.Module):
    """x * sigmoid(conv1x1(x)): one attention weight per pixel."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class SqueezeExcite(nn.Module):
    """Channel attention: GAP -> FC(c, c/r) -> ReLU -> FC(c/r, c) -> sigmoid, scales x (FCs with bias)."""

    def __init__(self, c: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Linear(c, c // reduction)
        self.fc2 = nn.Linear(c // reduction, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3))))))
        return x * w[:, :, None, None]


class BlockB(nn.Sequential):
    """A + spatial attention gate."""

    def __init__(self, cin: int, cout: int, **_):
        super().__init__(*conv_bn(cin, cout), nn.ReLU(), SpatialGate(cout))


class BlockC(nn.Sequential):
    """A + squeeze-and-excitation (reduction 16)."""

    def __init__(self, cin: int, cout: int, **_):
        super().__init__(*conv_bn(cin, cout), nn.ReLU(), SqueezeExcite(cout, 16))


class BlockD(nn.Module):
    """Residual: ReLU(BN(conv3x3(x)) + shortcut(x)); `separable`: depthwise 3x3 + pointwise 1x1, then BN."""

    def __init__(self, cin: int, cout: int, separable: bool = False, **_):
        super().__init__()
        if separable:
            self.conv = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
                                      nn.Conv2d(cin, cout, 1, bias=False))
        else:
            self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.shortcut = projection(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)) + self.shortcut(x))


class BlockE(nn.Module):
    """Bottleneck: 1x1 reduce (out/4) - grouped 3x3 (groups = in//8) - 1x1 expand, BN after each, + shortcut."""

    def __init__(self, cin: int, cout: int, **_):
        super().__init__()
        mid, groups = cout // 4, max(1, cin // 8)
        if mid % groups:
            raise ValueError(f"block E {cin}->{cout}: groups {groups} (= in//8) do not divide the reduced width {mid}")
        self.reduce = nn.Sequential(*conv_bn(cin, mid, 1), nn.ReLU())
        self.grouped = nn.Sequential(*conv_bn(mid, mid, 3, groups=groups), nn.ReLU())
        self.expand = nn.Sequential(*conv_bn(mid, cout, 1))
        self.shortcut = projection(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.expand(self.grouped(self.reduce(x))) + self.shortcut(x))


BLOCKS: dict[str, Callable[..., nn.Module]] = {"A": BlockA, "B": BlockB, "C": BlockC, "D": BlockD, "E": BlockE}
POOL_AFTER = (3, 5, 8)  # 1-based block indices followed by max-pool 2


class BlockNet(nn.Module):
    """Stem (3 x conv-BN-ReLU to 128) + 8 lettered blocks (pool after 3, 5, 8) + GAP, dropout, linear."""

    def __init__(self, letters: str, num_classes: int = 10, separable: bool = False, drop: float = 0.25):
        super().__init__()
        self.letters = letters
        stem, cin = [], 3
        for c in (32, 64, 128):
            stem += [*conv_bn(cin, c, bias=True), nn.ReLU()]
            cin = c
        self.stem = nn.Sequential(*stem)
        blocks = []
        for i, (letter, cout) in enumerate(zip(letters, BLOCK_WIDTHS), 1):
            b = BLOCKS[letter](cin, cout, separable=separable)
            blocks.append(nn.Sequential(b, nn.MaxPool2d(2)) if i in POOL_AFTER else b)
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(cin, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).mean((2, 3))

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        """The stem, then each block (after its pool, if any)."""
        x = self.stem(x)
        out = [("stem", x)]
        for i, (letter, b) in enumerate(zip(self.letters, self.blocks), 1):
            x = b(x)
            out.append((f"block{i}_{letter}", x))
        return out


# --------------------------------------------------------------------------- transfer


class TransferNet(nn.Module):
    """A (partly frozen) pretrained backbone and a new head; subclasses define `backbone_parameters`."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def freeze_units(self, units: list[nn.Module], k: int) -> None:
        """Freeze the first k units (a plain list, so the state dict does not list them twice)."""
        if not 0 <= k <= len(units):
            raise ValueError(f"freeze must be in 0..{len(units)}, got {k}")
        self.frozen_units = list(units[:k])
        for u in self.frozen_units:
            u.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        """Frozen layers stay in eval mode (BatchNorm running statistics fixed)."""
        super().train(mode)
        for u in getattr(self, "frozen_units", []):
            u.eval()
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        raise NotImplementedError

    def param_groups(self, lr: float, backbone_lr_mult: float = 1.0) -> list[dict]:
        """[unfrozen backbone at lr * mult (omitted when all frozen), new head at lr]."""
        backbone = {id(p) for p in self.backbone_parameters()}
        groups = [{"params": [p for p in self.parameters() if id(p) not in backbone], "lr": lr, "name": "heads"}]
        bb = [p for p in self.backbone_parameters() if p.requires_grad]
        if bb:
            groups.insert(0, {"params": bb, "lr": lr * backbone_lr_mult, "name": "backbone"})
        return groups


class VGGTransfer(TransferNet):
    """torchvision VGG16 features (first `freeze` layers frozen) + 512-256-128-classes head."""

    def __init__(self, num_classes: int = 10, pretrained: bool = True, freeze: int = 19, drop: float = 0.5):
        super().__init__()
        from torchvision.models.vgg import VGG16_Weights, cfgs, make_layers
        self.features = make_layers(cfgs["D"])  # = vgg16().features, without building its 120M-param classifier
        if pretrained:
            try:
                sd = VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
            except Exception as e:  # offline, download failed
                raise PretrainedUnavailable(
                    f"ImageNet weights for transfer:vgg16 could not be downloaded ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200] if str(e) else ''}). Connect to the internet, or pass "
                    f"--no-pretrained (model.pretrained=false) to train from scratch.") from None
            self.features.load_state_dict({k[len("features."):]: v for k, v in sd.items() if k.startswith("features.")})
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(drop),
                                  nn.Linear(256, 128), nn.ReLU())
        self.drop = nn.Dropout(drop)
        self.fc = nn.Linear(128, num_classes)
        self.freeze_units(list(self.features), freeze)
        self.mean, self.std = IMAGENET_MEAN, IMAGENET_STD

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.features.parameters())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d input of the last linear layer."""
        return self.head(self.features(x))

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        """The output of each of the 5 VGG stages (after its max-pool)."""
        out = []
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                out.append((f"stage{len(out) + 1}", x))
        return out


class EfficientNetTransfer(TransferNet):
    """timm tf_efficientnet_lite0 (offline ImageNet weights), inputs upsampled to `input_size`, linear head."""

    def __init__(self, num_classes: int = 10, pretrained: bool = True, freeze: int = 3, input_size: int = 64,
                 drop: float = 0.2):
        super().__init__()
        self.backbone = create_backbone("tf_efficientnet_lite0", pretrained=pretrained, num_classes=0)
        b = self.backbone
        self.input_size = input_size
        self.head = nn.Sequential(nn.Dropout(drop), nn.Linear(b.num_features, num_classes))
        # units: stem, the 7 stages, the 1x1 head conv
        self.units = [nn.Sequential(b.conv_stem, b.bn1), *b.blocks, nn.Sequential(b.conv_head, b.bn2)]
        self.freeze_units(self.units, freeze)
        cfg = backbone_data_config(b)
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    def resize(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled 1280-d backbone features."""
        return self.backbone(self.resize(x))

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        """Stem, each of the 7 stages, the head conv (at `input_size` resolution)."""
        x = self.resize(x)
        names = ["stem", *[f"stage{i}" for i in range(1, 8)], "head"]
        out = []
        for name, u in zip(names, self.units):
            x = u(x)
            out.append((name, x))
        return out


# --------------------------------------------------------------------------- fastnet


class FastBlock(nn.Module):
    """conv3x3 - maxpool2 - BN - GELU - conv3x3 - BN - GELU (airbench's ConvGroup)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.bn2(self.conv2(x)))


class FastNet(nn.Module):
    """2x2 conv stem (24 ch, no padding) + GELU, 3 FastBlocks, global max-pool, bias-free linear x 1/9."""

    def __init__(self, num_classes: int = 10, widths: tuple[int, ...] = (64, 256, 256), scale: float = 1 / 9):
        super().__init__()
        self.stem = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        cin, blocks = 24, []
        for w in widths:
            blocks.append(FastBlock(cin, w))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes, bias=False)
        self.scale = scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Stem filters = whitening of 2x2 patches of `images` (N, 3, H, W float, normalised): the 12
        eigenvectors of the patch covariance scaled by 1/sqrt(eigenvalue + eps), and their negatives."""
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, 3, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        patches = patches - patches.mean(0)
        cov = patches.T @ patches / len(patches)
        eigval, eigvec = torch.linalg.eigh(cov.double())
        w = (eigvec.T / torch.sqrt(eigval.clamp_min(0) + eps)[:, None]).float().reshape(12, 3, 2, 2)
        self.stem.weight.copy_(torch.cat([w, -w]).to(self.stem.weight))
        self.stem.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Global max-pooled last block (widths[-1])."""
        return self.blocks(F.gelu(self.stem(x))).amax((2, 3))

    def forward_head(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(f) * self.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def stages(self, x: torch.Tensor) -> Stages:
        x = F.gelu(self.stem(x))
        out = [("stem", x)]
        for i, b in enumerate(self.blocks, 1):
            x = b(x)
            out.append((f"block{i}", x))
        return out


# --------------------------------------------------------------------------- factory


def create_cifar_model(spec: str, num_classes: int = 10, **opts) -> nn.Module:
    """A CIFAR model from its spec (see `CIFAR_MODELS`); `opts` go to its constructor
    (separable, pretrained, freeze, input_size, widths, ...)."""
    name = spec.strip()
    if name == "mlp":
        return MLP(num_classes, **opts)
    if name in ("cnn", "cnn-bn"):
        return SimpleCNN(num_classes, bn=name == "cnn-bn", **opts)
    if name.startswith("blocks:"):
        letters, sep = parse_blocks(name)
        return BlockNet(letters, num_classes, separable=opts.pop("separable", False) or sep, **opts)
    if name == "transfer:vgg16":
        return VGGTransfer(num_classes, **opts)
    if name == "transfer:efficientnet_lite0":
        return EfficientNetTransfer(num_classes, **opts)
    if name == "fastnet":
        return FastNet(num_classes, **opts)
    check_spec(name)  # raises for an unknown spec (with the valid ones)
    raise AssertionError(f"{name!r} passed check_spec but has no constructor")


TABLE_SPECS = ["mlp", "cnn", "cnn-bn", *[f"blocks:{c * 8}" for c in "ABCDE"], "blocks:DDDDDDDD-sep", "blocks:ABCDEABC",
               "transfer:vgg16", "transfer:efficientnet_lite0", "fastnet"]


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def cifar_model_table(num_classes: int = 10) -> list[dict]:
    """One row per model (the uniform block nets and a mixed one): model, description, trainable params.
    Built on the meta device: no memory, no weights, no download."""
    rows = []
    for spec in TABLE_SPECS:
        opts = {"pretrained": False} if spec.startswith("transfer:") else {}
        with torch.device("meta"):
            model = create_cifar_model(spec, num_classes, **opts)
        if spec.startswith("blocks:"):
            letters, sep = parse_blocks(spec)
            kinds = dict.fromkeys(letters)
            desc = (f"8 x {letters[0]}: {BLOCK_DOCS[letters[0]]}" if len(kinds) == 1 else
                    "mixed: " + ", ".join(f"{c} {BLOCK_DOCS[c]}" for c in kinds)) + (", separable" if sep else "")
        else:
            desc = CIFAR_MODELS[spec]
        rows.append({"model": spec, "description": desc, "trainable params": trainable_params(model)})
    return rows
