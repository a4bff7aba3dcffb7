"""Detection (C2ST): real vs real is a coin flip; column-shuffled real data gives itself away."""
from __future__ import annotations

import numpy as np

from tabline.eval.detection import c2st_auc, detection
from tabline.schema import Schema


def test_shuffled_columns_are_detected_and_real_rows_are_not(diamond_splits):
    schema = Schema.infer(diamond_splits.train)
    train, holdout = schema.coerce(diamond_splits.train), schema.coerce(diamond_splits.holdout)
    shuffled = schema.coerce(diamond_splits.shuffled)

    d = detection(train, shuffled, holdout, schema, seed=0, max_rows=1000)

    assert d.synthetic.auc > 0.7
    assert d.ceiling.auc < 0.6
    assert d.synthetic.rows_per_class == 1000 and d.synthetic.folds == 5


def test_categorical_codes_are_enough_to_detect_a_changed_category_mix():
    rng = np.random.default_rng(0)
    real = rng.choice(4, size=(600, 1)).astype(float)
    other = rng.choice(4, size=(600, 1), p=[0.7, 0.1, 0.1, 0.1]).astype(float)

    scores = c2st_auc(real, other, np.array([True]), seed=0)

    assert scores.auc > 0.65
