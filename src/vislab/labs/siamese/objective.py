"""How Siamese batches reach the engine: pair, triplet and mined loaders, and one objective for every
batch shape (the ratio len(x) / len(y) tells pairs, triplets or labelled images apart)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from vislab.core.metrics import MeanParts
from vislab.labs.siamese.config import CLASS_LOSSES, SiameseRunConfig
from vislab.labs.siamese.data import FaceData
from vislab.labs.siamese.losses import DISTANCES, contrastive_loss, triplet_loss
from vislab.labs.siamese.metrics import VerificationMetrics
from vislab.labs.siamese.pairs import PairSampler, TripletSampler


class TupleSet(torch.utils.data.Dataset):
    """Pairs or triplets of images, redrawn every epoch (`set_epoch`, called by the engine).

    A batch of B tuples is one uint8 tensor [first column; second column; ...] of k*B images and
    the B pair labels (pairs) or ones (triplets)."""

    def __init__(self, images: torch.Tensor, sampler: PairSampler | TripletSampler):
        self.x, self.sampler = images, sampler
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        if isinstance(self.sampler, PairSampler):
            a, b, same = self.sampler.pairs(epoch)
            self.cols, self.y = [torch.from_numpy(a), torch.from_numpy(b)], torch.from_numpy(same)
        else:
            a, p, n = self.sampler.triplets(epoch)
            self.cols, self.y = ([torch.from_numpy(a), torch.from_numpy(p), torch.from_numpy(n)],
                                 torch.ones(len(a), dtype=torch.long))

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.__getitems__([i])

    def __getitems__(self, idxs):
        i = torch.as_tensor(idxs, dtype=torch.long)
        return self.x[torch.cat([c[i] for c in self.cols])], self.y[i]


def _identity(batch):
    return batch


def train_loader(cfg: SiameseRunConfig, data: FaceData, x: torch.Tensor) -> torch.utils.data.DataLoader:
    tc, lc = cfg.train.filled(), cfg.loss
    idx = data.split.train
    bs = tc.batch_size
    if lc.loss == "contrastive" or (lc.loss == "triplet" and lc.miner == "none"):
        sampler = (PairSampler(data.labels, idx, seed=tc.seed, positive_rate=cfg.data.positive_rate)
                   if lc.loss == "contrastive" else TripletSampler(data.labels, idx, seed=tc.seed))
        g = torch.Generator().manual_seed(tc.seed)
        return torch.utils.data.DataLoader(TupleSet(x, sampler), batch_size=bs, shuffle=True, generator=g,
                                           collate_fn=_identity, drop_last=len(idx) > bs, num_workers=tc.num_workers)
    from pytorch_metric_learning.samplers import MPerClassSampler
    m = lc.m_per_class
    bs = max(m, bs - bs % m)
    people = len(np.unique(data.labels[idx]))
    if people * m < bs:
        raise ValueError(f"a mined batch of {bs} with {m} images per person needs {bs // m} people; "
                         f"train has {people}. Lower train.batch_size or loss.m_per_class.")
    sampler = MPerClassSampler(data.labels[idx], m, batch_size=bs, length_before_new_iter=len(idx))
    from vislab.core.data.loaders import ArrayDataset
    return torch.utils.data.DataLoader(ArrayDataset(x, torch.from_numpy(data.labels), idx), batch_size=bs,
                                       sampler=sampler, collate_fn=_identity, drop_last=True,
                                       num_workers=tc.num_workers)


def loss_head(cfg: SiameseRunConfig, classes: int) -> nn.Module | None:
    """pytorch-metric-learning's ArcFace / CosFace / SubCenter-ArcFace loss (it holds a weight per training person,
    trained with the network), or None for the losses that compare embeddings only."""
    lc = cfg.loss
    if lc.loss not in CLASS_LOSSES:
        return None
    from pytorch_metric_learning import losses
    kw = {"num_classes": classes, "embedding_size": cfg.model.embedding_dim, "scale": lc.scale}
    if lc.class_margin is not None:
        kw["margin"] = lc.class_margin
    cls = {"arcface": losses.ArcFaceLoss, "cosface": losses.CosFaceLoss,
           "subcenter-arcface": losses.SubCenterArcFaceLoss}[lc.loss]
    return cls(**kw)


class SiameseObjective:
    """The contrastive, triplet or pytorch-metric-learning loss of a batch, whatever its structure (see the
    module docstring). A class loss (`head`, from `loss_head`) scores labelled batches of training people, whose
    global person ids `train_people` lists in class order."""

    def __init__(self, loss: str = "contrastive", margin: float = 1.0, form: str = "hadsell",
                 distance: str = "euclidean", miner: str = "none", head: nn.Module | None = None,
                 train_people: list[int] | None = None):
        self.loss, self.margin, self.form, self.miner = loss, margin, form, miner
        self.distance = "euclidean" if loss == "contrastive" else distance
        self.dist = DISTANCES[self.distance]
        self.head, self.class_of = head, None
        if loss == "contrastive":
            contrastive_loss(torch.zeros(1), torch.ones(1), margin, form)  # validates
        elif loss == "triplet":
            self.triplet = triplet_loss(margin, self.distance)  # sampled (a, p, n) batches
            self.pml_loss, self.pml_miner = self._pml(miner)  # labelled batches: all or mined triplets
        elif loss == "multi-similarity":
            from pytorch_metric_learning import losses, miners
            self.pml_loss, self.pml_miner = losses.MultiSimilarityLoss(), miners.MultiSimilarityMiner()
        elif head is not None:  # a class loss (CLASS_LOSSES) with its weights
            self.pml_loss, self.pml_miner = head, None
            ids = torch.as_tensor(train_people or [], dtype=torch.long)
            self.class_of = torch.full((int(ids.max()) + 1 if len(ids) else 0,), -1, dtype=torch.long)
            self.class_of[ids] = torch.arange(len(ids))

    @classmethod
    def from_config(cls, cfg: SiameseRunConfig, head: nn.Module | None = None,
                    train_people: list[int] | None = None) -> SiameseObjective:
        lc = cfg.loss
        return cls(lc.loss, lc.margin, lc.form, lc.distance, lc.miner, head, train_people)

    @property
    def has_val_loss(self) -> bool:
        """Class losses have no loss on validation people (they are not classes); the others do."""
        return self.loss not in CLASS_LOSSES

    def describe(self) -> str:
        if self.loss == "contrastive":
            return f"contrastive ({self.form}, margin {self.margin:g})"
        if self.loss == "triplet":
            return f"triplet ({self.distance}, margin {self.margin:g}, miner {self.miner})"
        if self.loss == "multi-similarity":
            return "multi-similarity (pytorch-metric-learning, with its miner)"
        return f"{self.loss} (pytorch-metric-learning)"

    def _pml(self, miner: str):
        """pytorch-metric-learning's triplet loss (mean over triplets, as torch's) and the miner, same distance."""
        from pytorch_metric_learning import distances, losses, miners, reducers
        dist = (distances.LpDistance(normalize_embeddings=False) if self.distance == "euclidean"
                else distances.CosineSimilarity())
        loss = losses.TripletMarginLoss(margin=self.margin, distance=dist, reducer=reducers.MeanReducer())
        if miner == "batch-hard":
            return loss, miners.BatchHardMiner(distance=dist)
        if miner == "semi-hard":
            return loss, miners.TripletMarginMiner(margin=self.margin, type_of_triplets="semihard", distance=dist)
        return loss, None

    def __call__(self, out: torch.Tensor, y: torch.Tensor, mined: bool = True):
        out = out.float()
        n, b = out.shape[0], y.shape[0]
        if n == 2 * b and b > 0 and self.loss == "contrastive":
            loss = contrastive_loss(self.dist(out[:b], out[b:]), y, self.margin, self.form)
        elif n == 3 * b and b > 0 and self.loss == "triplet":
            loss = self.triplet(out[:b], out[b:2 * b], out[2 * b:])
        elif n == b:
            loss = self.labelled_loss(out, y, mined)
        else:
            k = {"contrastive": "2", "triplet": "3"}.get(self.loss)
            raise ValueError(f"batch of {n} embeddings and {b} labels: a {self.loss} objective takes "
                             + (f"{k} embeddings per label, or 1 (labelled images)" if k else
                                "1 embedding per label (labelled images)"))
        return loss, {"loss": loss.detach()}

    def labelled_loss(self, emb: torch.Tensor, labels: torch.Tensor, mined: bool = True) -> torch.Tensor:
        """Loss over a labelled set: contrastive over all its pairs; triplet over all (or mined) triplets."""
        if self.loss == "contrastive":
            i, j = torch.triu_indices(len(emb), len(emb), 1, device=emb.device)
            d = self.dist(emb[i], emb[j])
            return contrastive_loss(d, (labels[i] == labels[j]).long(), self.margin, self.form)
        if self.loss in CLASS_LOSSES and self.head is None:
            raise ValueError(f"a {self.loss} objective needs its head (objective.loss_head, in the model)")
        if self.class_of is not None:  # a class loss: training people only
            labels = labels.cpu()
            cls = torch.full_like(labels, -1)
            inside = labels < len(self.class_of)
            cls[inside] = self.class_of[labels[inside]]
            if (cls < 0).any():  # validation people are no class: no loss (validation scores AUC and EER)
                return emb.new_tensor(float("nan"))
            return self.pml_loss(emb, cls.to(emb.device))
        tuples = self.pml_miner(emb, labels) if mined and self.pml_miner is not None else None
        return self.pml_loss(emb, labels, tuples)

    def make_metrics(self, train: bool = False, sync: bool = True) -> nn.Module:
        """Training: the mean loss; evaluation: verification over all pairs (VerificationMetrics)."""
        return MeanParts() if train else VerificationMetrics(self)
