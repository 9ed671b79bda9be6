"""`vislab.core.knn`: the neighbour vote, the blend and the choice of its weight, against hand computations."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vislab.core.knn import NeighbourVote, blend, choose_weights


def test_vote_shares_are_softmax_weighted_labels_of_the_k_nearest():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    targets = torch.tensor([[0, 1], [1, -1], [1, 0], [0, 0]])  # -1: the second image's label of task b is unknown
    vote = NeighbourVote(bank * 3, targets, {"a": 2, "b": 2}, k=3, temperature=0.5)  # norms do not matter
    p = vote.probs(torch.tensor([[2.0, 1.0]]))
    q = np.array([2.0, 1.0]) / math.sqrt(5)
    sims = {i: float(q @ (b / np.linalg.norm(b))) for i, b in enumerate(bank.numpy()) if i != 3}  # 3 is farthest
    w = {i: math.exp(s / 0.5) for i, s in sims.items()}
    z = sum(w.values())
    assert p["a"][0].tolist() == pytest.approx([w[0] / z, (w[1] + w[2]) / z], abs=1e-6)
    zb = w[0] + w[2]  # the unknown label casts no vote; the rest is renormalised
    assert p["b"][0].tolist() == pytest.approx([w[2] / zb, w[0] / zb], abs=1e-6)
    sims_t, rows = vote.neighbours(torch.tensor([[2.0, 1.0]]))
    assert rows[0].tolist() == [2, 0, 1]  # most similar first
    assert sims_t[0, 0] == pytest.approx(sims[2], abs=1e-6)


def test_blend_and_the_weight_chosen_on_labelled_rows():
    model = {"a": torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8]])}
    right = {"a": torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])}
    y = np.array([[1], [1], [1]])  # the model gets 1 of 3, the vote 3 of 3
    weights, scores = choose_weights(model, right, y)
    assert weights == {"a": 0.2}  # the smallest grid weight that flips 0.6/0.4: (1-w)0.6 < (1-w)0.4 + w, w > 1/6
    assert scores["a"] == {"model": pytest.approx(1 / 3), "blend": 1.0}
    mixed = blend(model, right, {"a": 0.25})["a"]
    assert torch.allclose(mixed, 0.75 * model["a"] + 0.25 * right["a"])
    assert torch.equal(blend(model, right, {})["a"], model["a"])
    useless = {"a": torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])}
    assert choose_weights(model, useless, np.array([[0], [0], [1]]))[0] == {"a": 0.0}  # ties: the model alone


def test_vote_refuses_a_bad_k_or_temperature_or_mismatched_targets():
    bank, targets = torch.randn(5, 3), torch.zeros(5, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="k must lie between 1 and the bank's 5"):
        NeighbourVote(bank, targets, {"a": 2}, k=6)
    with pytest.raises(ValueError, match="temperature"):
        NeighbourVote(bank, targets, {"a": 2}, k=2, temperature=0)
    with pytest.raises(ValueError, match="do not fit 2 tasks"):
        NeighbourVote(bank, targets, {"a": 2, "b": 3}, k=2)
