"""DCR share and exact-copy rate: worked by hand on tiny tables, then on real data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabline.eval.features import distance_features, model_columns
from tabline.eval.privacy import dcr_share, exact_copy_rate, nearest_distance, privacy, row_keys
from tabline.schema import Column, Schema

SCHEMA = Schema(columns=[
    Column(name="x", kind="numeric", dtype="float", decimals=1, min=0, max=10),
    Column(name="c", kind="categorical", categories=["a", "b"]),
])


def test_dcr_share_worked_by_hand():
    # Setup: x is scaled by the train range 10, a category mismatch costs 1.
    train = pd.DataFrame({"x": [0.0, 10.0, 4.0], "c": ["a", "b", "a"]})
    holdout = pd.DataFrame({"x": [2.0, 8.0, 5.0], "c": ["b", "b", "a"]})
    synthetic = pd.DataFrame({"x": [0.0, 6.0, 4.5], "c": ["a", "b", "a"]})
    # row 1: train (0,a) at 0      vs holdout (5,a) at 0.5   -> nearer train: 1
    # row 2: train (10,b) at 0.4   vs holdout (8,b) at 0.2   -> nearer holdout: 0
    # row 3: train (4,a) at 0.05   vs holdout (5,a) at 0.05  -> tie: 1/2
    syn, tr, ho = distance_features([synthetic, train, holdout], model_columns(SCHEMA), train)

    # Run
    d_train, d_holdout = nearest_distance(syn, tr), nearest_distance(syn, ho)
    share = dcr_share(syn, train_ref=tr, holdout_ref=ho)
    report = privacy(train, synthetic, holdout, SCHEMA, seed=0, max_rows=100)

    # Assert
    assert d_train == pytest.approx([0.0, 0.4, 0.05])
    assert d_holdout == pytest.approx([0.5, 0.2, 0.05])
    assert share == pytest.approx(0.5)
    assert report.synthetic.dcr_share == pytest.approx(0.5)
    assert report.synthetic.exact_copy_rate == pytest.approx(1 / 3)  # row 1 is train row 1


def test_missing_values_cost_nothing_against_missing_and_one_against_a_value():
    col = Column(name="x", kind="numeric", dtype="float", min=0, max=10, nullable=True)
    df = pd.DataFrame({"x": [np.nan, 3.0, 10.0, np.nan]})
    train = pd.DataFrame({"x": [0.0, 10.0]})  # the scale: a gap of 10 costs 1

    (m,) = distance_features([df], [col], train)

    l1 = lambda i, j: float(np.abs(m[i] - m[j]).sum())  # noqa: E731
    assert l1(0, 3) == 0.0
    assert l1(0, 1) == pytest.approx(1.0) and l1(0, 2) == pytest.approx(1.0)
    assert l1(1, 2) == pytest.approx(0.7)


def test_exact_copies_match_after_rounding_with_nan_equal_and_ids_ignored():
    schema = Schema(columns=[
        Column(name="id", kind="id"),
        Column(name="x", kind="numeric", dtype="float", decimals=1, nullable=True),
        Column(name="c", kind="categorical", categories=[3, 4]),
    ])
    train = pd.DataFrame({"id": ["a", "b"], "x": [0.3, np.nan], "c": [3, 4]})
    other = pd.DataFrame({"id": ["z", "y", "w"], "x": [0.1 + 0.2, np.nan, 0.3], "c": ["3", 4.0, 4]})

    rate = exact_copy_rate(row_keys(other, schema), row_keys(train, schema))

    assert rate == pytest.approx(2 / 3)  # rows 1 and 2 copy train; row 3 pairs 0.3 with the wrong category


@pytest.fixture(scope="module")
def real(diamond_splits):
    schema = Schema.infer(diamond_splits.train)
    return schema, {k: schema.coerce(getattr(diamond_splits, k)) for k in ("train", "holdout", "fresh")}


def test_a_copy_of_train_is_nearer_train_and_all_exact(real):
    schema, t = real  # train and holdout have the same size, so the train reference is all of train

    scores = privacy(t["train"], t["train"].copy(), t["holdout"], schema, seed=0, max_rows=10_000)

    assert scores.synthetic.dcr_share > 0.95
    assert scores.synthetic.exact_copy_rate == 1.0
    assert 0.4 < scores.ceiling.dcr_share < 0.6


def test_an_independent_real_sample_is_as_near_holdout_as_train(real):
    schema, t = real

    scores = privacy(t["train"], t["fresh"], t["holdout"], schema, seed=0, max_rows=10_000)

    assert 0.44 < scores.synthetic.dcr_share < 0.56
    assert scores.synthetic.exact_copy_rate < 0.02
