import math

import numpy as np
import pytest

from tabline.agents.bandit import PartitionBandit, blend_reward, thompson_draw, ucb1_index
from tabline.errors import InvalidArgumentError


def test_ucb1_index_by_hand():
    # t = 10 plays; arm 0: 4 plays, mean 0.5; arm 1: 6 plays, mean 0.6; c = 2
    got = ucb1_index(np.array([4, 6]), np.array([0.5, 0.6]), t=10, c=2.0)
    expected = [0.5 + 2 * math.sqrt(math.log(10) / 4), 0.6 + 2 * math.sqrt(math.log(10) / 6)]
    assert got == pytest.approx(expected)  # 2.0174, 1.8389: the less-played arm wins despite its lower mean
    assert got[0] > got[1]


def test_unplayed_arms_come_first():
    assert np.isinf(ucb1_index(np.array([3, 0]), np.array([0.9, 0.0]), t=3))[1]


def test_ucb_bandit_walkthrough_matches_hand_computation():
    b = PartitionBandit(arms=["a", "b", "c"], policy="ucb1", c=2.0)
    rewards = {0: 0.2, 1: 0.9, 2: 0.5}
    plays = []
    for _ in range(3):  # first each arm once, in index order
        arm = b.select()
        plays.append(arm)
        b.update(arm, rewards[arm])
    assert plays == [0, 1, 2]
    # t = 3: indexes = r + 2*sqrt(ln 3 / 1) → the best mean wins among equal counts
    assert b.select() == 1
    b.update(1, 0.9)
    # t = 4: a: 0.2 + 2*sqrt(ln4/1) = 2.5548; b: 0.9 + 2*sqrt(ln4/2) = 2.5651; c: 0.5 + 2.3548 = 2.8548
    assert b.select() == 2


def test_thompson_prefers_the_better_arm_and_is_seeded():
    b = PartitionBandit(arms=["x", "y"], policy="thompson", seed=3)
    b.counts, b.reward_sums = [50, 50], [5.0, 45.0]
    picks = [b.select() for _ in range(200)]
    assert np.mean(picks) > 0.95
    again = PartitionBandit(arms=["x", "y"], policy="thompson", seed=3, counts=[50, 50], reward_sums=[5.0, 45.0])
    assert [again.select() for _ in range(200)] == picks


def test_state_survives_a_round_trip():
    b = PartitionBandit(arms=["a", "b"], policy="thompson", seed=1)
    for arm, r in [(0, 0.3), (1, 0.8), (1, 0.7)]:
        b.update(arm, r)
    b.select()
    restored = PartitionBandit.model_validate(b.model_dump())
    assert restored == b and restored.select() == b.select()


def test_thompson_draw_shape_and_range():
    x = thompson_draw(np.array([0, 10.0]), np.array([10.0, 0]), np.random.default_rng(0))
    assert x.shape == (2,) and 0 <= x[0] < x[1] <= 1


def test_blend_reward_by_hand_and_bad_weights():
    assert blend_reward(0.5, 0.8, 0.2, (1, 1, 2)) == pytest.approx((0.5 + 0.8 + 0.4) / 4)
    assert blend_reward(2.0, -1.0, 0.5, (1, 1, 0)) == pytest.approx(0.5)  # parts are clipped to [0, 1]
    with pytest.raises(InvalidArgumentError):
        blend_reward(0.5, 0.5, 0.5, (0, 0, 0))


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"arms": []}, "at least one arm", id="no-arms"),
    pytest.param({"arms": ["a", "a"]}, "unique", id="duplicate-arms"),
    pytest.param({"arms": ["a"], "polcy": "ucb1"}, "Extra inputs", id="typo"),
])
def test_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PartitionBandit(**kwargs)


def test_update_rejects_unknown_arm_and_nan():
    b = PartitionBandit(arms=["a"])
    with pytest.raises(InvalidArgumentError):
        b.update(3, 0.5)
    with pytest.raises(InvalidArgumentError):
        b.update(0, float("nan"))
