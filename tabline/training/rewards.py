"""Row scores as small pure functions: what judges report to QC and what TabGRAA aligns the model with.

- `indistinguishability`: a classifier says φ = P(real | x); s = 1 − 2|0.5 − φ| is 1 when it cannot tell,
  and low both for obvious fakes (φ → 0) and rows that look "too real" (φ → 1, often memorised).
- `dcr_reward`: classifier-free; min(DCR, τ)/τ with τ the median DCR (rows too close to a real row score low).
- `cllm_scores`: CLLM's curation signal (Seedat et al. 2024) from a boosted model trained on real data:
  over its first e = 1..E stages, p_e = P(row's own label | x); confidence = mean_e p_e,
  aleatoric = mean_e p_e (1 − p_e). `cllm_keep` keeps the "easy" rows.

Example:
    >>> indistinguishability(np.array([0.5, 0.9, 0.1])).round(2).tolist()
    [1.0, 0.2, 0.2]
"""
from __future__ import annotations

import numpy as np


def indistinguishability(phi: np.ndarray) -> np.ndarray:
    """s = 1 − 2|0.5 − φ| for classifier probabilities φ = P(real | x); (N,) -> (N,) in [0, 1]."""
    return 1.0 - 2.0 * np.abs(0.5 - np.clip(np.asarray(phi, dtype=float), 0.0, 1.0))


def dcr_reward(dcr: np.ndarray, tau: float | None = None) -> np.ndarray:
    """min(DCR, τ)/τ per row; τ defaults to the median DCR. (N,) -> (N,) in [0, 1].

    Example:
        >>> dcr_reward(np.array([0.0, 1.0, 2.0, 4.0])).tolist()  # median 1.5
        [0.0, 0.6666666666666666, 1.0, 1.0]
    """
    dcr = np.asarray(dcr, dtype=float)
    tau = float(np.median(dcr)) if tau is None else float(tau)
    if tau <= 0:
        return (dcr > 0).astype(float)  # most rows copy a real row: only the others earn a reward
    return np.minimum(dcr, tau) / tau


def cllm_scores(staged_probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CLLM confidence and aleatoric uncertainty.

    staged_probs (E, N, C): class probabilities after each of E boosting stages; labels (N,): class indices.
    Returns confidence (N,) = mean_e p_e and aleatoric (N,) = mean_e p_e (1 − p_e), p_e = staged_probs[e, n, y_n].

    Example:
        >>> probs = np.array([[[0.6, 0.4]], [[0.8, 0.2]]])  # 2 stages, 1 row, 2 classes
        >>> conf, alea = cllm_scores(probs, np.array([0]))
        >>> conf.round(4).tolist(), alea.round(4).tolist()
        ([0.7], [0.2])
    """
    probs = np.asarray(staged_probs, dtype=float)  # (E, N, C)
    labels = np.asarray(labels, dtype=int)  # (N,)
    p = probs[:, np.arange(probs.shape[1]), labels]  # (E, N)
    return p.mean(axis=0), (p * (1.0 - p)).mean(axis=0)


def cllm_keep(confidence: np.ndarray, aleatoric: np.ndarray, tau_conf: float = 0.2,
              tau_alea: float = 0.2) -> np.ndarray:
    """CLLM's "easy" rows: confidence ≥ 1 − τ_c and aleatoric ≤ τ_a. (N,), (N,) -> (N,) bool."""
    return (np.asarray(confidence) >= 1.0 - tau_conf) & (np.asarray(aleatoric) <= tau_alea)
