"""Losses and groups against values worked out by hand (σ(1) = 0.7310586, σ(2) = 0.8807971, σ(3) = 0.9525741)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tabline.training.groups import dpo_pairs, epoch_batches, reward_groups
from tabline.training.losses import dpo_loss, graa_loss, kto_loss, kto_reference_point, npo_loss

T = torch.tensor
SIG3 = 0.9525741268224334


def test_graa_sigmoid_form_by_hand():
    # r_H = mean([1-0, 3-2]) = 1; r_L = mean([0-1, -2+1]) = -1; β = 2: z = 1 - 2·(-1) = 3; L = 2 - 2σ(3)
    loss, m = graa_loss(T([1.0, 3.0]), T([0.0, 2.0]), T([0.0, -2.0]), T([1.0, -1.0]), beta=2.0)
    assert loss.item() == pytest.approx(2 - 2 * SIG3, abs=1e-6)
    assert (m["reward_high"], m["reward_low"], m["margin"]) == pytest.approx((1.0, -1.0, 3.0))


def test_graa_logsigmoid_form_by_hand():
    loss, _ = graa_loss(T([1.0, 3.0]), T([0.0, 2.0]), T([0.0, -2.0]), T([1.0, -1.0]), beta=2.0, form="logsigmoid")
    assert loss.item() == pytest.approx(math.log1p(math.exp(-3)), abs=1e-6)  # -log σ(3)


def test_graa_explicit_b_and_s():
    loss, _ = graa_loss(T([1.0]), T([0.0]), T([0.0]), T([0.0]), beta=1.0, b=1.0, s=0.5)
    assert loss.item() == pytest.approx(1 - 0.5 * 0.7310586, abs=1e-6)


def test_graa_takes_group_means_before_the_sigmoid():
    # Same group means, different spread: identical loss (a per-row sigmoid would differ).
    spread, _ = graa_loss(T([2.0, 0.0]), T([0.0, 0.0]), T([0.5, -0.5]), T([0.0, 0.0]), beta=1.0)
    flat, _ = graa_loss(T([1.0, 1.0]), T([0.0, 0.0]), T([0.0, 0.0]), T([0.0, 0.0]), beta=1.0)
    per_row = (2 - torch.sigmoid(T([2.0, 0.0]) - T([0.5, -0.5]))).mean()
    assert spread.item() == pytest.approx(flat.item(), abs=1e-7)
    assert abs(per_row.item() - spread.item()) > 1e-3


def test_graa_rejects_an_unknown_form():
    with pytest.raises(ValueError, match="unknown GRAA form 'tanh'"):
        graa_loss(T([0.0]), T([0.0]), T([0.0]), T([0.0]), beta=1.0, form="tanh")


def test_dpo_by_hand():
    # r_chosen = [1, .5], r_rejected = [-1, .5]; β = .5: β·margin = [1, 0] → mean(-log σ(1), log 2)
    loss, m = dpo_loss(T([1.0, 0.5]), T([0.0, 0.0]), T([-1.0, 0.5]), T([0.0, 0.0]), beta=0.5)
    assert loss.item() == pytest.approx((math.log1p(math.exp(-1)) + math.log(2)) / 2, abs=1e-6)
    assert m["margin"] == pytest.approx(1.0)


@pytest.mark.parametrize("weights, expected", [
    pytest.param((1.0, 1.0), ((1 - 0.7310586) + (1 - SIG3)) / 2, id="equal-weights"),
    pytest.param((2.0, 1.0), (2 * (1 - 0.7310586) + (1 - SIG3)) / 2, id="desirable-doubled"),
])
def test_kto_by_hand(weights, expected):
    # r_c = 1, r_r = -1, z0 = .5, β = 2: 1 - σ(2(1 - .5)) = 1 - σ(1); 1 - σ(2(.5 + 1)) = 1 - σ(3)
    loss, _ = kto_loss(T([1.0]), T([0.0]), T([-1.0]), T([0.0]), beta=2.0, kl=0.5,
                       desirable_weight=weights[0], undesirable_weight=weights[1])
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_kto_reference_point_is_the_clipped_detached_mean_log_ratio():
    pol = T([1.0, 3.0], requires_grad=True)
    z0 = kto_reference_point(pol, T([0.0, 0.0]))
    assert z0.item() == pytest.approx(2.0) and not z0.requires_grad
    assert kto_reference_point(T([-1.0]), T([0.0])).item() == 0.0


def test_npo_by_hand():
    # r = [0, 1], β = 1: (2/β)·mean(softplus(r)) = log 2 + log(1 + e)
    loss, _ = npo_loss(T([0.0, 1.0]), T([0.0, 0.0]), beta=1.0)
    assert loss.item() == pytest.approx(math.log(2) + math.log1p(math.e), abs=1e-6)


def test_npo_pushes_the_low_group_down():
    pol = T([0.0, 0.0], requires_grad=True)
    npo_loss(pol, T([0.0, 0.0]), beta=1.0)[0].backward()
    assert (pol.grad > 0).all()  # gradient descent lowers log π_θ of low-reward rows


def test_reward_groups_split_sorted_halves_and_drop_the_middle_of_odd_n():
    high, low = reward_groups(np.array([0.3, 0.9, 0.1, 0.5, 0.7]))
    assert high.tolist() == [1, 4] and low.tolist() == [0, 2]  # 0.5 (the median row) is left out


def test_dpo_pairs_rank_i_with_rank_n_plus_1_minus_i():
    chosen, rejected = dpo_pairs(np.array([0.4, 0.1, 0.9, 0.6, 0.2, 0.8]))  # ranks: 2, 5, 3, 0, 3...
    assert chosen.tolist() == [2, 5, 3] and rejected.tolist() == [1, 4, 0]


def test_epoch_batches_cover_each_row_at_most_once():
    batches = epoch_batches(10, 3, np.random.default_rng(0))
    flat = np.concatenate(batches)
    assert [len(b) for b in batches] == [3, 3, 3] and len(set(flat.tolist())) == 9
