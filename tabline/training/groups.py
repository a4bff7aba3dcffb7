"""How scored rows become training groups: high/low halves, DPO pairs and one epoch of mini-batches.

Example:
    >>> import numpy as np
    >>> high, low = reward_groups(np.array([0.1, 0.9, 0.5, 0.7]))
    >>> high.tolist(), low.tolist()
    ([1, 3], [0, 2])
    >>> chosen, rejected = dpo_pairs(np.array([0.1, 0.9, 0.5, 0.7]))  # rank i with rank N+1−i
    >>> chosen.tolist(), rejected.tolist()
    ([1, 3], [0, 2])
"""
from __future__ import annotations

import numpy as np


def _ranked(rewards: np.ndarray) -> np.ndarray:
    """Row indices from best to worst reward; ties keep row order (stable). (N,) -> (N,)"""
    return np.argsort(-np.asarray(rewards, dtype=float), kind="stable")


def reward_groups(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """High group = the top half by reward, low group = the bottom half (the middle row of an odd N is left
    out). (N,) -> (N//2,), (N//2,), each sorted by row index."""
    ranked = _ranked(rewards)
    half = len(ranked) // 2
    return np.sort(ranked[:half]), np.sort(ranked[len(ranked) - half:])


def dpo_pairs(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DPO pairs rank i (chosen) with rank N+1−i (rejected) for i ≤ N/2. (N,) -> (N//2,), (N//2,)"""
    ranked = _ranked(rewards)
    half = len(ranked) // 2
    return ranked[:half], ranked[::-1][:half]


def epoch_batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One shuffled epoch over ``n`` items in batches of ``batch`` (a short last batch is dropped, so every
    step sees the same number of rows); at least one batch when n > 0.

    Example:
        >>> [len(b) for b in epoch_batches(10, 4, np.random.default_rng(0))]
        [4, 4]
    """
    if n <= 0:
        return []
    perm = rng.permutation(n)
    steps = max(1, n // batch)
    return [perm[i * batch:(i + 1) * batch] for i in range(steps)]


__all__ = ["dpo_pairs", "epoch_batches", "reward_groups"]
