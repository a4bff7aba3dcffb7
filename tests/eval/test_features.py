"""How tables become model inputs: shared category codes, canonical categories, finite numbers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.eval.features import model_columns, subsample, tree_features
from tabline.schema import Column


def test_category_codes_are_shared_and_canonical_across_tables():
    col = Column(name="c", kind="categorical", categories=[3, 4])
    a = pd.DataFrame({"c": [3, 3, 4]})
    b = pd.DataFrame({"c": ["3", 4.0, None]})  # a CSV round trip turns 3 into "3", 4 into 4.0

    (xa, xb), categorical = tree_features([a, b], [col])

    assert categorical.tolist() == [True]
    assert xa[:, 0].tolist() == [0.0, 0.0, 1.0]
    assert xb[:2, 0].tolist() == [0.0, 1.0] and np.isnan(xb[2, 0])


def test_infinite_numbers_become_missing():
    col = Column(name="x", kind="numeric", dtype="float")

    (x,), _ = tree_features([pd.DataFrame({"x": [1.0, np.inf, -np.inf]})], [col])

    assert x[0, 0] == 1.0 and np.isnan(x[1:, 0]).all()


def test_subsample_is_seeded_and_keeps_small_tables_whole():
    df = pd.DataFrame({"a": range(100)})

    first = subsample(df, 10, np.random.default_rng(5))
    again = subsample(df, 10, np.random.default_rng(5))

    assert first.equals(again) and len(first) == 10 and first["a"].is_unique
    assert subsample(df, 1000, np.random.default_rng(5)) is df


def test_constant_columns_feed_no_model_or_distance():
    from tabline.eval.privacy import row_keys
    from tabline.eval.quality import sdmetrics_metadata
    from tabline.schema import Schema

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "a"], "unit": ["kg"] * 4})
    schema = Schema.infer(df)

    assert [c.name for c in model_columns(schema)] == ["x", "c"]
    assert list(sdmetrics_metadata(schema)["columns"]) == ["x", "c"]
    assert (row_keys(df, schema) == row_keys(df.assign(unit="other"), schema)).all()  # a constant tells no row apart
