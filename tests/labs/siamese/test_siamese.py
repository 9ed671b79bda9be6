"""Siamese lab foundations: contrastive (both forms) and triplet losses against hand-computed
values, the pair/triplet samplers, and the split by person (also on the real faces)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from vislab.labs.siamese.losses import ContrastiveLoss, contrastive_loss, euclidean, triplet_loss
from vislab.labs.siamese.pairs import PairSampler, TripletSampler, drop_singletons, split_people

# distances 5, 1, 0.5, 3 between a and b; only the first pair is of one person
A = torch.zeros(4, 2)
B = torch.tensor([[3.0, 4.0], [0.0, 1.0], [0.5, 0.0], [3.0, 0.0]])
Y = torch.tensor([1, 0, 0, 0])


def test_contrastive_original_form_by_hand():
    # y=1: d^2 = 25; y=0: max(0, 4 - 1) = 3, max(0, 4 - 0.25) = 3.75, max(0, 4 - 9) = 0
    assert ContrastiveLoss(margin=2.0, form="original")(A, B, Y).item() == pytest.approx((25 + 3 + 3.75 + 0) / 4)


def test_contrastive_hadsell_form_by_hand():
    # y=1: 25; y=0: (2 - 1)^2 = 1, (2 - 0.5)^2 = 2.25, max(0, 2 - 3)^2 = 0
    assert ContrastiveLoss(margin=2.0, form="hadsell")(A, B, Y).item() == pytest.approx((25 + 1 + 2.25 + 0) / 4)


def test_contrastive_forms_agree_on_positives_and_differ_on_negatives():
    d = torch.tensor([0.3, 1.7])
    pos, neg = torch.ones(2), torch.zeros(2)
    assert (contrastive_loss(d, pos, 1.5, "original").item()
            == pytest.approx(contrastive_loss(d, pos, 1.5, "hadsell").item()))
    assert contrastive_loss(d, neg, 1.5, "original").item() == pytest.approx((2.25 - 0.09) / 2)
    assert contrastive_loss(d, neg, 1.5, "hadsell").item() == pytest.approx(1.2 ** 2 / 2)


def test_contrastive_gradient_is_finite_for_identical_embeddings():
    a = torch.ones(3, 4, requires_grad=True)
    loss = ContrastiveLoss(1.0, "hadsell")(a, a.detach().clone(), torch.tensor([1, 0, 1]))
    loss.backward()
    assert loss.item() == pytest.approx(1 / 3, rel=1e-5)  # the negative pair at d = 0 costs m^2
    assert torch.isfinite(a.grad).all()


def test_triplet_euclidean_and_cosine_by_hand():
    a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    n = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    # max(1 - 2 + 1, 0) = 0; max(3 - 1 + 1, 0) = 3
    assert triplet_loss(1.0, "euclidean")(a, p, n).item() == pytest.approx(1.5, rel=1e-5)
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = torch.tensor([[0.0, 2.0], [3.0, 0.0]])
    n = torch.tensor([[5.0, 0.0], [-1.0, 0.0]])
    # cosine distances: d(a,p) = 1, d(a,n) = 0 -> 1.5; d(a,p) = 0, d(a,n) = 2 -> 0
    assert triplet_loss(0.5, "cosine")(a, p, n).item() == pytest.approx(0.75, rel=1e-5)


def test_euclidean_matches_torch_cdist():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    assert torch.allclose(euclidean(a, b), torch.cdist(a, b).diagonal(), atol=1e-5)


@pytest.mark.parametrize("bad", [dict(margin=0.0), dict(margin=-1.0), dict(form="squared")])
def test_loss_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        ContrastiveLoss(**{"margin": 1.0, **bad})
    if "margin" in bad:
        with pytest.raises(ValueError):
            triplet_loss(bad["margin"])
    with pytest.raises(ValueError, match="unknown distance"):
        triplet_loss(1.0, "manhattan")


LABELS = np.repeat(np.arange(20), 10)  # 20 people x 10 images


def test_pair_sampler_rate_no_self_pairs_and_reproducible():
    s = PairSampler(LABELS, seed=3)
    rates = []
    for epoch in range(20):
        a, b, same = s.pairs(epoch)
        assert len(a) == len(LABELS) and (a != b).all()
        assert (LABELS[a][same == 1] == LABELS[b][same == 1]).all()
        assert (LABELS[a][same == 0] != LABELS[b][same == 0]).all()
        rates.append(same.mean())
    assert abs(np.mean(rates) - 0.5) < 0.035  # 4,000 Bernoulli(0.5) draws: sd 0.008, so > 4 sd
    a1, b1, s1 = s.pairs(1)
    a1b, b1b, s1b = PairSampler(LABELS, seed=3).pairs(1)
    assert (b1 == b1b).all() and (s1 == s1b).all()
    assert (s.pairs(2)[1] != b1).any()  # redrawn every epoch


def test_pair_sampler_stays_inside_its_split():
    split = split_people(LABELS, seed=0)
    a, b, _ = PairSampler(LABELS, split.val, seed=0).pairs(0)
    assert set(a) | set(b) <= set(split.val)


def test_triplet_sampler():
    a, p, n = TripletSampler(LABELS, seed=1).triplets(0)
    assert (a != p).all() and (LABELS[a] == LABELS[p]).all() and (LABELS[a] != LABELS[n]).all()


def test_samplers_need_two_images_per_person_and_two_people():
    with pytest.raises(ValueError, match="fewer than 2 images"):
        PairSampler(np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="at least 2 people"):
        PairSampler(np.array([0, 0, 0]))
    keep, dropped = drop_singletons(np.array([0, 0, 1, 2, 2, 3]))
    assert dropped == [1, 3] and keep.tolist() == [0, 1, 3, 4]


def test_split_by_person_is_disjoint_and_complete():
    labels = np.repeat(np.arange(31), 10)
    sp = split_people(labels, (0.7, 0.15, 0.15), seed=0)
    people = [set(sp.people[k]) for k in ("train", "val", "test")]
    assert not (people[0] & people[1] or people[0] & people[2] or people[1] & people[2])
    assert set().union(*people) == set(range(31))
    assert all(len(p) >= 1 for p in people) and len(people[0]) == 22
    assert sorted(np.concatenate([sp.train, sp.val, sp.test]).tolist()) == list(range(310))
    assert sp.sizes()["train"] == {"people": 22, "images": 220}
    assert split_people(labels, seed=0).people == sp.people and split_people(labels, seed=1).people != sp.people
    with pytest.raises(ValueError):
        split_people(np.array([0, 0, 1, 1]))  # 2 people cannot fill 3 splits


@pytest.mark.realdata
def test_real_faces_split_by_person(faces, tmp_path):
    from vislab.core.data.folders import load_folder
    ds = load_folder(faces, size=(112, 92), cache_dir=str(tmp_path), progress=False)
    assert ds.images.shape == (310, 3, 112, 92) and len(ds.classes) == 31
    keep, dropped = drop_singletons(ds.labels)
    assert dropped == [] and len(keep) == 310
    sp = split_people(ds.labels, seed=0)
    names = {k: {ds.classes[p] for p in v} for k, v in sp.people.items()}
    assert not (names["train"] & names["test"]) and not (names["val"] & names["test"])
    a, b, same = PairSampler(ds.labels, sp.test, seed=0).pairs(0)
    assert len(a) == len(sp.test) and set(ds.labels[a]) == set(sp.people["test"])


@pytest.mark.parametrize("relu,normalize", [(False, True), (True, False), (True, True)])
def test_embedding_net_shapes_relu_and_norm(relu, normalize):
    from vislab.core.models import create_model
    net = create_model("embedding", embedding_dim=16, pretrained=False, relu=relu, normalize=normalize).eval()
    with torch.no_grad():
        z = net(torch.randn(3, 3, 64, 64))
    assert z.shape == (3, 16)
    if relu:
        assert (z >= 0).all()
    if normalize:
        assert torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-5)
    else:
        assert not torch.allclose(z.norm(dim=1), torch.ones(3), atol=1e-3)
    names = [g["name"] for g in net.param_groups(1e-3, 0.1)]
    assert names == ["backbone", "head"] and net.param_groups(1e-3, 0.1)[0]["lr"] == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        create_model("embedding", embedding_dim=0, pretrained=False)
