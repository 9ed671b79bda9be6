"""`EmbeddingNet` (registered as 'embedding'): a timm backbone -> Linear(embedding_dim), optional ReLU and
L2 normalisation, optional WCCN whitening (fit after training), with backbone/head parameter groups.
`feature_level`/`grid`: instead of the pooled final features, one intermediate feature map (timm's
`forward_intermediates`) average-pooled into a grid x grid layout of cells, concatenated."""
from __future__ import annotations

import torch
from torch import nn

from vislab.core.models import backbone_data_config, create_backbone, freeze_stages, input_size_kwargs, register_model
from vislab.labs.siamese.whiten import whitening_layer


class EmbeddingNet(nn.Module):
    """Siamese lab: a timm backbone (pooled features) -> Linear(embedding_dim) [-> ReLU] [-> L2 normalise].

    The original experiment used efficientnet_b0 with a ReLU after the projection; the default
    here is tf_efficientnet_lite0 with its offline ImageNet weights. Both branches of a Siamese
    pair share this one network (`embed(a)`, `embed(b)`)."""

    def __init__(self, backbone: str | nn.Module = "tf_efficientnet_lite0", embedding_dim: int = 128,
                 pretrained: bool = True, relu: bool = False, normalize: bool = True,
                 image_size: tuple[int, int] | None = None, freeze_bn: bool = False,
                 train_blocks: int | None = None, loss_head: nn.Module | None = None, head_lr_mult: float = 1.0,
                 whiten: bool = False, project: bool = True, feature_level: int | None = None, grid: int = 1):
        super().__init__()
        self.freeze_bn = freeze_bn
        if embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {embedding_dim}")
        self.backbone = (create_backbone(backbone, pretrained=pretrained, **input_size_kwargs(backbone, image_size))
                         if isinstance(backbone, str) else backbone)
        self.backbone_name = backbone if isinstance(backbone, str) else type(backbone).__name__
        self.feature_level, self.grid = feature_level, grid
        features = self._feature_dim()
        if not project:  # the backbone features are the embedding (model.fine_tune false)
            embedding_dim = features
        self.embedding_dim, self.relu, self.normalize = embedding_dim, relu, normalize
        self.proj = nn.Linear(features, embedding_dim) if project else nn.Identity()
        self.data_config = backbone_data_config(self.backbone)
        self.loss_head, self.head_lr_mult = loss_head, head_lr_mult
        """A loss's learned weights (ArcFace/CosFace: one per training person): trained and checkpointed with the
        network so that --resume is exact; never used to embed."""
        self.whiten = whitening_layer(embedding_dim) if whiten else None
        """WCCN (`whiten.py`): the identity while training, fit in closed form on the training people after it."""
        if train_blocks is not None:
            freeze_stages(self.backbone, train_blocks)

    def _feature_dim(self) -> int:
        if self.grid < 1:
            raise ValueError(f"feature grid must be >= 1, got {self.grid}")
        if self.feature_level is None:
            return self.backbone.num_features
        info = getattr(self.backbone, "feature_info", None)
        if not hasattr(self.backbone, "forward_intermediates") or not info:
            raise ValueError(f"{self.backbone_name} has no intermediate feature maps (timm forward_intermediates)")
        if not 0 <= self.feature_level < len(info):
            raise ValueError(f"feature level {self.feature_level} is not one of {self.backbone_name}'s 0-"
                             f"{len(info) - 1} (timm feature_info: {[i['module'] for i in info]})")
        return int(info[self.feature_level]["num_chs"]) * self.grid ** 2

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's pooled features, or the feature_level map pooled into grid x grid cells (N, C*grid^2)."""
        if self.feature_level is None:
            return self.backbone(x)
        (f,) = self.backbone.forward_intermediates(x, indices=[self.feature_level], intermediates_only=True,
                                                   stop_early=True)
        return nn.functional.adaptive_avg_pool2d(f, self.grid).flatten(1)

    def train(self, mode: bool = True):
        """With freeze_bn the backbone's BatchNorm layers stay in eval mode while training: they keep their
        ImageNet statistics instead of batch statistics (small batches of pairs would otherwise shift them)."""
        super().train(mode)
        if mode and self.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.proj(self.features(x))
        if self.relu:
            z = torch.relu(z)
        if self.normalize:
            z = nn.functional.normalize(z, dim=-1)
        if self.whiten is not None:
            z = self.whiten(z)
            if self.normalize:
                z = nn.functional.normalize(z, dim=-1)
        return z

    def param_groups(self, lr: float, backbone_lr_mult: float = 1.0) -> list[dict]:
        groups = [{"params": list(self.proj.parameters()), "lr": lr, "name": "head"}]
        if self.loss_head is not None:
            groups.append({"params": list(self.loss_head.parameters()), "lr": lr * self.head_lr_mult,
                           "name": "loss"})
        bb = [p for p in self.backbone.parameters() if p.requires_grad]
        if bb:
            groups.insert(0, {"params": bb, "lr": lr * backbone_lr_mult, "name": "backbone"})
        return groups


@register_model("embedding")
def _embedding(backbone: str = "tf_efficientnet_lite0", embedding_dim: int = 128, pretrained: bool = True,
               relu: bool = False, normalize: bool = True, image_size: tuple[int, int] | None = None,
               freeze_bn: bool = False) -> EmbeddingNet:
    return EmbeddingNet(backbone, embedding_dim, pretrained=pretrained, relu=relu, normalize=normalize,
                        image_size=image_size, freeze_bn=freeze_bn)
