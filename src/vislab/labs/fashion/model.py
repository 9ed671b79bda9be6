"""`MultiTaskNet` (registered as 'multitask'): one shared timm backbone, one linear head per task; and
`HeadsOnly` for linear-probe training on cached features."""
from __future__ import annotations

import torch
from torch import nn

from vislab.core.models import (
    backbone_data_config,
    create_backbone,
    freeze_frozen_bn,
    freeze_stages,
    input_size_kwargs,
    register_model,
)


class MultiTaskNet(nn.Module):
    """One shared backbone (timm, num_classes=0, pooled features) and one linear head per task."""

    def __init__(self, backbone: str | nn.Module, tasks: dict[str, int], pretrained: bool = True,
                 drop_rate: float = 0.2, image_size: tuple[int, int] | None = None, train_blocks: int | None = None):
        super().__init__()
        self.backbone = (create_backbone(backbone, pretrained=pretrained, **input_size_kwargs(backbone, image_size))
                         if isinstance(backbone, str) else backbone)
        self.backbone_name = backbone if isinstance(backbone, str) else type(backbone).__name__
        self.tasks = dict(tasks)
        self.num_features = self.backbone.num_features
        self.heads = nn.ModuleDict({t: nn.Sequential(nn.Dropout(drop_rate), nn.Linear(self.num_features, n))
                                    for t, n in tasks.items()})
        self.data_config = backbone_data_config(self.backbone)
        if train_blocks is not None:
            freeze_stages(self.backbone, train_blocks)

    def train(self, mode: bool = True):
        """Frozen layers (partial fine-tuning, a frozen backbone) keep their BatchNorm statistics while training."""
        super().train(mode)
        if mode:
            freeze_frozen_bn(self.backbone)
        return self

    def forward_features(self, x: torch.Tensor, tta: bool = False) -> torch.Tensor:
        """Pooled backbone features (N, D); `tta`: the mean over the photo and its mirror. The heads are linear,
        so the heads of that mean are the mean of the two views' logits (flip test-time augmentation)."""
        f = self.backbone(x)
        return (f + self.backbone(x.flip(-1))) / 2 if tta else f

    def forward_heads(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: h(f) for t, h in self.heads.items()}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_heads(self.forward_features(x))

    def param_groups(self, lr: float, backbone_lr_mult: float = 1.0) -> list[dict]:
        groups = [{"params": list(self.heads.parameters()), "lr": lr, "name": "heads"}]
        bb = [p for p in self.backbone.parameters() if p.requires_grad]
        if bb:
            groups.insert(0, {"params": bb, "lr": lr * backbone_lr_mult, "name": "backbone"})
        return groups


class HeadsOnly(nn.Module):
    """The heads of a MultiTaskNet applied to precomputed features (linear-probe training)."""

    def __init__(self, net: MultiTaskNet):
        super().__init__()
        self.heads = net.heads

    def forward(self, f: torch.Tensor) -> dict[str, torch.Tensor]:
        return {t: h(f) for t, h in self.heads.items()}

    def param_groups(self, lr: float, backbone_lr_mult: float = 1.0) -> list[dict]:
        return [{"params": list(self.heads.parameters()), "lr": lr, "name": "heads"}]


@register_model("multitask")
def _multitask(backbone: str = "tf_efficientnet_lite0", tasks: dict[str, int] | None = None,
               pretrained: bool = True, drop_rate: float = 0.2,
               image_size: tuple[int, int] | None = None, train_blocks: int | None = None) -> MultiTaskNet:
    if not tasks:
        raise ValueError("multitask model needs tasks={name: num_classes}")
    return MultiTaskNet(backbone, tasks, pretrained=pretrained, drop_rate=drop_rate, image_size=image_size,
                        train_blocks=train_blocks)
