"""Row scores as small pure functions: what judges report to QC and what TabGRAA aligns the model with.

- `indistinguishability`: a classifier says φ = P(real | x); s = 1 − 2|0.5 − φ| is 1 when it cannot tell,
  and low both for obvious fakes (φ → 0) and rows that look "too real" (φ → 1, often memorised).
- `dcr_reward`: classifier-free; min(DCR, τ)/τ with τ the median DCR (rows too close to a real row score low).
- `classifier_rewards` / `dcr_rewards`: the same two scores for a whole synthetic table, with *scorer
  separation*: the scorer learns from one half of the real rows (`split_real`); the other half is kept
  to measure, honestly, how distinguishable the samples are (``heldout_auc``).
- `cllm_scores`: CLLM's curation signal (Seedat et al. 2024) from a boosted model trained on real data:
  over its first e = 1..E stages, p_e = P(row's own label | x); confidence = mean_e p_e,
  aleatoric = mean_e p_e (1 − p_e). `cllm_keep` keeps the "easy" rows.

Example:
    >>> indistinguishability(np.array([0.5, 0.9, 0.1])).round(2).tolist()
    [1.0, 0.2, 0.2]
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from tabline.eval.features import distance_features, model_columns, tree_features
from tabline.eval.privacy import nearest_distance
from tabline.schema import Schema

REWARDS = ("classifier", "dcr", "random")


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


def split_real(real: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two disjoint random halves of the real rows: (scorer half, held-out half).

    Example:
        >>> a, b = split_real(pd.DataFrame({"x": range(10)}), seed=0)
        >>> len(a), len(b), set(a.x) & set(b.x)
        (5, 5, set())
    """
    perm = np.random.default_rng(seed).permutation(len(real))
    half = len(real) // 2
    return real.iloc[np.sort(perm[:half])].reset_index(drop=True), real.iloc[np.sort(perm[half:])].reset_index(drop=True)


def classifier_rewards(scorer_real: pd.DataFrame, heldout_real: pd.DataFrame, synthetic: pd.DataFrame,
                       schema: Schema, *, seed: int = 0, trees: int = 100) -> tuple[np.ndarray, dict[str, float]]:
    """TabGRAA's default reward for every synthetic row: s = 1 − 2|0.5 − φ|, φ = P(real | x) from a random
    forest (``trees`` trees) trained on ``scorer_real`` (1) vs synthetic rows (0).

    Cross-fitted: the synthetic rows are split in two folds and each fold is scored by the forest trained
    on the other, so no row is scored by a model that saw it (a forest's in-sample φ is ~0 for every
    synthetic row). Returns (rewards (N,), {"heldout_auc": AUC of the forests on ``heldout_real`` vs the
    synthetic rows, 0.5 = indistinguishable}).
    """
    cols = model_columns(schema)
    (x_real, x_held, x_syn), _ = tree_features([scorer_real, heldout_real, synthetic], cols)
    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(x_syn)) % 2  # (N,) fold of each synthetic row
    phi = np.zeros(len(x_syn))
    phi_held = np.zeros(len(x_held))
    for k in (0, 1):
        train_syn = x_syn[fold != k] if (fold != k).any() else x_syn
        x = np.vstack([x_real, train_syn])  # (n_real + n_k, F)
        y = np.r_[np.ones(len(x_real)), np.zeros(len(train_syn))]
        forest = RandomForestClassifier(n_estimators=trees, min_samples_leaf=2, random_state=seed + k,
                                        n_jobs=1).fit(x, y)
        if (fold == k).any():
            phi[fold == k] = forest.predict_proba(x_syn[fold == k])[:, 1]
        phi_held += forest.predict_proba(x_held)[:, 1] / 2 if len(x_held) else 0.0
    info = {}
    if len(x_held) and len(x_syn):
        y = np.r_[np.ones(len(x_held)), np.zeros(len(x_syn))]
        info["heldout_auc"] = float(roc_auc_score(y, np.r_[phi_held, phi]))
    return indistinguishability(phi), info


def dcr_rewards(scorer_real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> tuple[np.ndarray, dict[str, float]]:
    """Classifier-free reward for every synthetic row: min(DCR, τ)/τ, DCR = L1 distance to the nearest row
    of ``scorer_real`` (numerics scaled by range, categories one-hot; `tabline.eval.features`)."""
    cols = model_columns(schema)
    x_real, x_syn = distance_features([scorer_real, synthetic], cols, reference=scorer_real)
    dcr = nearest_distance(x_syn, x_real)  # (N,)
    return dcr_reward(dcr), {"median_dcr": float(np.median(dcr)), "copies": float(np.mean(dcr == 0))}


def random_rewards(n: int, seed: int) -> tuple[np.ndarray, dict[str, float]]:
    """Uniform noise: the ablation that should teach the model nothing."""
    return np.random.default_rng(seed).random(n), {}
