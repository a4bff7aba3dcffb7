"""Detection (classifier two-sample test, C2ST): can a model tell real rows from the other table's?

A gradient-boosted classifier learns to separate train rows (label 1) from synthetic rows (label 0); its
cross-validated ROC-AUC is the score. 0.5 means the two tables are indistinguishable to it, 1.0 means every
row gives itself away. Both classes are subsampled to the same size, so the AUC is not skewed by imbalance.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> same = c2st_auc(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)), np.array([False, False]), seed=0)
    >>> shifted = c2st_auc(rng.normal(size=(300, 2)), rng.normal(2, 1, size=(300, 2)), np.array([False, False]), seed=0)
    >>> bool(abs(same.auc - 0.5) < 0.1), bool(shifted.auc > 0.9)
    (True, True)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, cross_val_score

from tabline.eval.features import model_columns, subsample, tree_features
from tabline.eval.models import boosted_model
from tabline.eval.report import Comparison, DetectionScores, finite
from tabline.schema import Schema

FOLDS = 5


def detection(
    train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, schema: Schema, *, seed: int, max_rows: int
) -> Comparison[DetectionScores] | None:
    """C2ST of train vs synthetic, and of train vs holdout as the ceiling; None without modelable columns."""
    columns = model_columns(schema)
    if not columns:
        return None
    return Comparison[DetectionScores](
        synthetic=_detect(train, synthetic, columns, seed=seed, max_rows=max_rows),
        ceiling=_detect(train, holdout, columns, seed=seed, max_rows=max_rows),
    )


def _detect(real: pd.DataFrame, other: pd.DataFrame, columns, *, seed: int, max_rows: int) -> DetectionScores:
    rng = np.random.default_rng(seed)
    n = min(len(real), len(other), max_rows)
    (x_real, x_other), categorical = tree_features([subsample(real, n, rng), subsample(other, n, rng)], columns)
    return c2st_auc(x_real, x_other, categorical, seed=seed)


def c2st_auc(real: np.ndarray, other: np.ndarray, categorical: np.ndarray, *, seed: int) -> DetectionScores:
    """Mean ROC-AUC over stratified folds of a classifier separating ``real`` (1) from ``other`` (0) rows.

    ``categorical`` marks feature columns holding category codes. With fewer than 2 rows per class there is
    nothing to cross-validate and the AUC is None.
    """
    folds = min(FOLDS, len(real), len(other))
    if folds < 2:
        return DetectionScores(rows_per_class=min(len(real), len(other)))
    x = np.vstack([real, other])  # (n_real + n_other, n_features)
    y = np.r_[np.ones(len(real), dtype=int), np.zeros(len(other), dtype=int)]
    model = boosted_model("classification", y, categorical, seed=seed)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_score(model, x, y, cv=cv, scoring="roc_auc")
    return DetectionScores(
        auc=finite(scores.mean()), auc_std=finite(scores.std()), rows_per_class=min(len(real), len(other)), folds=folds
    )
