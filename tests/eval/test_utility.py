"""Utility: TSTR matches TRTR on real data, drops on shuffled labels, and survives missing classes."""
from __future__ import annotations

import numpy as np
import pytest

from tabline.eval.utility import task_of, task_scores, utility
from tabline.schema import Schema


@pytest.fixture(scope="module")
def real(diamond_splits):
    schema = Schema.infer(diamond_splits.train)
    return schema, {k: schema.coerce(getattr(diamond_splits, k)) for k in ("train", "holdout", "fresh")}


@pytest.mark.parametrize("target, metric", [pytest.param("cut", "accuracy", id="classification"),
                                            pytest.param("price", "r2", id="regression")])
def test_real_data_as_synthetic_matches_trtr(real, target, metric):
    schema, t = real

    u = utility(t["train"], t["fresh"], t["holdout"], schema, target, seed=0, max_rows=10_000)

    assert u.metric == metric
    assert getattr(u.ceiling, metric) > (0.6 if metric == "accuracy" else 0.9)
    assert u.ratio == pytest.approx(1.0, abs=0.08)


def test_shuffled_labels_lower_tstr(real):
    schema, t = real
    shuffled = t["fresh"].assign(cut=np.random.default_rng(0).permutation(t["fresh"]["cut"].to_numpy()))

    u = utility(t["train"], shuffled, t["holdout"], schema, "cut", seed=0, max_rows=10_000)

    assert u.synthetic.accuracy < u.ceiling.accuracy - 0.15
    assert u.ratio < 0.8


def test_a_synthetic_table_missing_classes_is_scored_not_refused(real):
    schema, t = real
    two_classes = t["fresh"][t["fresh"]["cut"].isin(["Ideal", "Premium"])]
    one_class = t["fresh"][t["fresh"]["cut"] == "Ideal"]

    partial = utility(t["train"], two_classes, t["holdout"], schema, "cut", seed=0, max_rows=10_000)
    constant = utility(t["train"], one_class, t["holdout"], schema, "cut", seed=0, max_rows=10_000)

    assert partial.synthetic.macro_f1 < partial.ceiling.macro_f1 - 0.2
    ideal_share = float((t["holdout"]["cut"] == "Ideal").mean())
    assert constant.synthetic.accuracy == pytest.approx(ideal_share)  # predicts the one class it saw


def test_task_follows_the_column_kind(mixed_tables):
    schema = Schema.infer(mixed_tables.train)

    assert [task_of(schema, c) for c in ("member", "city", "age")] == ["classification", "classification", "regression"]


def test_macro_f1_counts_a_never_predicted_class_as_zero():
    y_true = np.array(["a", "a", "b", "b"], dtype=object)
    y_pred = np.array(["a", "a", "a", "a"], dtype=object)

    s = task_scores(y_true, y_pred, task="classification", train_rows=4)

    assert s.accuracy == 0.5
    assert s.macro_f1 == pytest.approx((2 / 3 + 0) / 2)  # F1(a) = 2*0.5*1/1.5, F1(b) = 0
