"""QC stage 3, diversity: keep rows that add information the accepted pool does not already have.

Distances use the evaluation's lens (`tabline.eval.features.distance_features`: numerics scaled by the real
range, a category mismatch costs 1), divided by the number of columns so a distance lies in [0, 1].

Row level — **novelty**. Rows are taken in batch order; a row whose nearest neighbour among the accepted
pool and the rows kept before it is closer than ``min_distance`` is a near-duplicate and is rejected. Its
score is min(1, d / (2 · min_distance)).

Batch level — **coverage gain**. The real table is cut into K cells by k-means (fit once). With p the real
share per cell and q the pool's share, D(q) = JS(p ‖ q) (Jensen–Shannon divergence, base 2, in [0, 1]).
gain = D(pool) − D(pool + kept rows): positive when the batch moves the pool towards the real
distribution (fills under-covered cells), negative when it piles onto over-covered ones. If the gain is
below ``min_gain`` every kept row is rejected with the batch's gain as the reason. ``min_gain`` defaults
to −inf (off); T² leaves the threshold open, so it is a setting, and the line reports the gain either way.

Bandit reward — **under-covered share**: the share of the batch's kept rows that fall in cells where the
pool's share is below the real share (`undercovered_share`). A batch that fills gaps earns 1, one that
piles onto over-covered cells earns 0. (The gain itself shrinks like 1/pool size, so it would fade out of
the reward as the run goes on.)

Example:
    >>> round(js_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5])), 6)
    0.0
    >>> round(js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])), 6)
    1.0
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from tabline.eval.features import distance_features, model_columns
from tabline.eval.privacy import nearest_distance
from tabline.qc.verdicts import StageResult
from tabline.schema import Schema


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2) between two distributions over the same cells; (K,), (K,) -> [0, 1]."""
    p = np.asarray(p, float) / max(np.sum(p), 1e-12)
    q = np.asarray(q, float) / max(np.sum(q), 1e-12)
    m = 0.5 * (p + q)  # (K,)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def coverage_gain(real_share: np.ndarray, pool_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """D(pool) − D(pool + batch) with D = JS divergence to the real cell shares. An empty pool counts as
    uniform over the cells (no information yet). Shapes (K,) each.

    Example:
        >>> round(coverage_gain(np.array([0.5, 0.5]), np.array([4, 0]), np.array([0, 4])), 4)
        0.3113
    """
    k = len(real_share)
    before = pool_counts if np.sum(pool_counts) > 0 else np.ones(k)
    return js_divergence(real_share, before) - js_divergence(real_share, np.asarray(pool_counts) + batch_counts)


def _compact(typed: pd.DataFrame) -> pd.DataFrame:
    """The rows that fix the feature layout: each column's min and max, first of every category, first NaN."""
    keep: set = set()
    for name in typed.columns:
        s = typed[name]
        if s.isna().any():
            keep.add(s.index[s.isna()][0])
        present = s.dropna()
        if present.empty:
            continue
        if pd.api.types.is_numeric_dtype(present) or pd.api.types.is_datetime64_any_dtype(present):
            keep.update([present.idxmin(), present.idxmax()])
        else:
            keep.update(present.astype(str).drop_duplicates().index)
    return typed.loc[sorted(keep)]


def undercovered_share(real_share: np.ndarray, pool_counts: np.ndarray, batch_counts: np.ndarray) -> float:
    """Share of the batch's rows in cells where the pool's share is below the real share (the bandit's
    diversity reward, in [0, 1]; an empty pool under-covers every cell). Shapes (K,) each.

    Example:
        >>> undercovered_share(np.array([0.5, 0.5]), np.array([3, 1]), np.array([1, 3]))
        0.75
    """
    total = np.sum(batch_counts)
    if total == 0:
        return 0.0
    pool = np.asarray(pool_counts, float)
    under = pool / pool.sum() < real_share if pool.sum() > 0 else np.ones(len(real_share), bool)
    return float(np.sum(np.asarray(batch_counts)[under]) / total)


class DiversityStage:
    """Fit once on the real table; then score batches against the accepted pool with `__call__`."""

    def __init__(self, real: pd.DataFrame, schema: Schema, *, cells: int = 32, min_distance: float = 0.01,
                 min_gain: float = -math.inf, seed: int = 0):
        self.schema, self.min_distance, self.min_gain = schema, min_distance, min_gain
        self.columns = model_columns(schema)
        typed = schema.coerce(real[schema.names])
        self.reference = typed
        x = self.features(real)
        self.reference = _compact(typed)  # same ranges, categories and missingness: same features, far fewer rows
        k = max(1, min(cells, len(x)))
        self.kmeans = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(x)
        self.real_share = np.bincount(self.kmeans.labels_, minlength=k) / len(x)  # (K,)

    def features(self, df: pd.DataFrame) -> np.ndarray:
        """(rows, features) scaled so that an L1 distance divided by the column count lies in [0, 1]."""
        typed = self.schema.coerce(df[self.schema.names])
        # Encoded beside the real table so the one-hot layout is the real table's whatever the batch holds
        # (rows reaching this stage passed sanity, so they bring no category the real table lacks).
        both = distance_features([self.reference, typed], self.columns, self.reference)
        return both[1] / max(1, len(self.columns))

    def cell_counts(self, x: np.ndarray) -> np.ndarray:
        k = len(self.real_share)
        return np.bincount(self.kmeans.predict(x), minlength=k) if len(x) else np.zeros(k, dtype=int)

    def __call__(self, batch: pd.DataFrame, pool_x: np.ndarray) -> tuple[StageResult, float]:
        """Verdicts for ``batch`` given the accepted pool's features ``pool_x`` (rows, features); returns the
        result and the batch's coverage gain."""
        result, gain, _ = self.judge(batch.index, self.features(batch), pool_x)
        return result, gain

    def judge(self, index: pd.Index, x: np.ndarray, pool_x: np.ndarray) -> tuple[StageResult, float, float]:
        """Core of `__call__` on precomputed features ``x`` (B, F): the result, the coverage gain, and the
        share of kept rows that land in cells the pool under-covers (`undercovered_share`)."""
        reason = pd.Series("", index=index, dtype=object)
        score = pd.Series(1.0, index=index)
        kept: list[int] = list(range(len(x)))
        if self.min_distance > 0:
            near_pool = nearest_distance(x, pool_x) if len(pool_x) and len(x) else np.full(len(x), np.inf)  # (B,)
            kept = []
            for i in range(len(x)):
                d = near_pool[i]
                if kept:
                    d = min(d, float(np.abs(x[kept] - x[i]).sum(axis=1).min()))
                score.iloc[i] = min(1.0, d / (2 * self.min_distance))
                if d < self.min_distance:
                    reason.iloc[i] = f"diversity: near-duplicate (distance {d:.4f} < {self.min_distance})"
                else:
                    kept.append(i)
        pool_counts = self.cell_counts(pool_x)
        kept_counts = self.cell_counts(x[kept])
        gain = coverage_gain(self.real_share, pool_counts, kept_counts)
        under = undercovered_share(self.real_share, pool_counts, kept_counts)
        if kept and gain < self.min_gain:
            reason.iloc[kept] = f"diversity: batch adds little (coverage gain {gain:.4f} < {self.min_gain})"
        return StageResult.from_reasons("diversity", reason, score), gain, under
