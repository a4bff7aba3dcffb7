"""The one model family behind detection and utility: scikit-learn's histogram gradient boosting.

It takes NaN and category codes natively, needs no scaling, and is strong on tables out of the box, so a
weak score means the data, not an untuned model.

Example:
    >>> import numpy as np
    >>> boosted_model("classification", np.array([0, 1] * 600), np.array([False]), seed=0).early_stopping
    True
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

Task = Literal["classification", "regression"]
# Early stopping holds out 10% of the rows; below this many rows that slice is too small to judge by.
_EARLY_STOPPING_ROWS = 1000


def boosted_model(task: Task, y: np.ndarray, categorical: np.ndarray, *, seed: int):
    """An unfitted gradient-boosted model for training labels ``y``.

    Early stopping (10% validation slice, 10 rounds of patience) is on when ``y`` is large enough and, for
    classification, when every class has 2 rows for the stratified slice: when there is little to learn, as
    for a good synthetic table in the detection test, it ends after a few rounds instead of 100.
    """
    early = len(y) >= _EARLY_STOPPING_ROWS
    if task == "classification":
        counts = pd.Series(y).value_counts()
        early = early and counts.min() >= 2 and len(counts) <= 0.1 * len(y)
    kind = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
    return kind(
        categorical_features=categorical if categorical.any() else None,
        early_stopping=bool(early),
        random_state=seed,
    )
