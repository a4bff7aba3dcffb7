"""DATE's arm selection: which data partition to generate for next.

The maths are small pure functions (index computations and updates on arrays); `PartitionBandit` only holds
the statistics, in a JSON-serialisable form so a LangGraph checkpointer can store them and a resumed run
continues with the same counts.

- UCB1 (DATE's code uses c = 2): index_i = mean_i + c * sqrt(ln t / n_i); an arm never played scores +inf, so
  every arm is tried once before any is repeated.
- Thompson sampling for rewards in [0, 1]: a Beta(1 + Σr, 1 + Σ(1 − r)) posterior per arm (the fractional
  "Bernoulli trick"), one draw per arm, pick the largest.

Example:
    >>> bandit = PartitionBandit(arms=["cheap", "premium"], policy="ucb1", seed=0)
    >>> first, second = bandit.select(), None
    >>> bandit.update(first, 0.9)
    >>> second = bandit.select()
    >>> sorted([first, second])  # each arm is tried once before any repeats
    [0, 1]
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tabline.errors import InvalidArgumentError


def ucb1_index(counts: np.ndarray, means: np.ndarray, t: int, c: float = 2.0) -> np.ndarray:
    """UCB1 index per arm. counts, means: (K,); t: plays so far (≥ 1). Returns (K,), +inf for unplayed arms.

    Example:
        >>> ucb1_index(np.array([1, 3]), np.array([0.5, 0.8]), t=4, c=2.0).round(3).tolist()
        [2.855, 2.16]
    """
    counts = np.asarray(counts, dtype=float)  # (K,)
    bonus = c * np.sqrt(math.log(max(t, 1)) / np.maximum(counts, 1))  # (K,)
    return np.where(counts > 0, np.asarray(means, dtype=float) + bonus, np.inf)


def thompson_draw(successes: np.ndarray, failures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per arm from Beta(1 + successes, 1 + failures); (K,) -> (K,)."""
    return rng.beta(1.0 + np.asarray(successes, float), 1.0 + np.asarray(failures, float))


def blend_reward(qc_yield: float, quality: float, diversity: float | None,
                 weights: tuple[float, float, float] = (0.4, 0.4, 0.2)) -> float:
    """The bandit's reward for one batch, in [0, 1]: a weighted mean of the share of rows QC accepted, the
    judges' mean score of accepted rows, and the batch's diversity gain (each already in [0, 1]). A line that
    does not measure coverage (one arm, no diversity threshold) passes ``diversity=None``: the other two
    parts keep their weights.

    Example:
        >>> round(blend_reward(0.5, 1.0, 0.0), 6)
        0.6
        >>> round(blend_reward(0.5, 1.0, None), 6)
        0.75
    """
    w = np.asarray(weights, dtype=float)
    if (w < 0).any() or w.sum() <= 0:
        raise InvalidArgumentError(f"reward weights must be non-negative and not all zero, got {weights}")
    if diversity is None:
        w = w[:2] if w[:2].sum() > 0 else np.ones(2)
        return float(np.dot(np.clip([qc_yield, quality], 0.0, 1.0), w) / w.sum())
    parts = np.clip([qc_yield, quality, diversity], 0.0, 1.0)
    return float(np.dot(parts, w) / w.sum())


class PartitionBandit(BaseModel):
    """Statistics and choice rule over the arms (data partitions). Serialise with ``model_dump()``."""

    model_config = ConfigDict(extra="forbid")

    arms: list[str]
    # "uniform" and "greedy" (play each arm once, then the best mean) are the ablation's baselines.
    policy: Literal["ucb1", "thompson", "uniform", "greedy"] = "ucb1"
    c: float = Field(2.0, ge=0)
    seed: int = 0
    counts: list[int] = []
    reward_sums: list[float] = []
    draws: int = 0  # Thompson draws made so far: with the seed it fixes the next draw, also after a resume

    @model_validator(mode="after")
    def _shape(self) -> "PartitionBandit":
        if not self.arms:
            raise ValueError("a bandit needs at least one arm")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arm names must be unique: {self.arms}")
        k = len(self.arms)
        self.counts = self.counts or [0] * k
        self.reward_sums = self.reward_sums or [0.0] * k
        if len(self.counts) != k or len(self.reward_sums) != k:
            raise ValueError(f"counts and reward_sums need one entry per arm ({k})")
        return self

    @property
    def means(self) -> np.ndarray:
        counts = np.asarray(self.counts, float)
        return np.divide(self.reward_sums, np.maximum(counts, 1.0))

    def select(self, allowed: list[bool] | None = None) -> int:
        """Index of the arm to play next among the ``allowed`` ones (all by default; ties go to the lowest index)."""
        mask = np.ones(len(self.arms), bool) if allowed is None else np.asarray(allowed, bool)
        if mask.shape != (len(self.arms),) or not mask.any():
            raise InvalidArgumentError(f"allowed must mark at least one of the {len(self.arms)} arms, got {allowed}")
        counts = np.asarray(self.counts)
        if self.policy == "ucb1":
            index = ucb1_index(counts, self.means, sum(self.counts) or 1, self.c)
        elif self.policy == "greedy":
            index = np.where(counts > 0, self.means, np.inf)
        else:
            rng = np.random.default_rng([self.seed, self.draws])
            self.draws += 1
            if self.policy == "uniform":
                index = rng.random(len(self.arms))
            else:
                sums = np.asarray(self.reward_sums)
                index = thompson_draw(sums, counts - sums, rng)
        return int(np.argmax(np.where(mask, index, -np.inf)))

    def update(self, arm: int, reward: float) -> None:
        """Record one batch's reward (clipped to [0, 1]) for ``arm``."""
        if not 0 <= arm < len(self.arms):
            raise InvalidArgumentError(f"no arm {arm}; arms are 0..{len(self.arms) - 1}")
        if not math.isfinite(reward):
            raise InvalidArgumentError(f"reward must be a finite number, got {reward}")
        self.counts[arm] += 1
        self.reward_sums[arm] += float(min(1.0, max(0.0, reward)))
