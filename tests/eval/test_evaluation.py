"""End to end: `evaluate` on real data against real data, reproducibility, and the errors users can cause."""
from __future__ import annotations

import pandas as pd
import pytest

from tabline.errors import InvalidArgumentError, InvalidTableError
from tabline.eval import evaluate


def test_real_sample_scores_like_the_ceiling(real_report):
    s = real_report.summary()

    assert s["quality"] > 0.85 and s["quality_ceiling"] > 0.85
    assert abs(s["column_shapes"] - s["column_shapes_ceiling"]) < 0.03
    assert s["c2st_auc"] < 0.6 and s["c2st_auc_ceiling"] < 0.6
    assert 0.4 < s["dcr_share"] < 0.6 and 0.4 < s["dcr_share_ceiling"] < 0.6
    assert 0.9 < s["tstr_trtr_ratio"] < 1.1
    assert s["invalid_row_rate"] < 0.02


def test_report_records_what_was_run(real_report):
    assert real_report.rows == {"train": 1500, "synthetic": 1500, "holdout": 1500}
    assert real_report.columns == ["carat", "cut", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    assert real_report.utility.task == "classification" and real_report.utility.metric == "accuracy"
    assert set(real_report.seconds) == {"quality", "detection", "utility", "privacy", "validity"}
    assert "sdmetrics" in real_report.versions


def test_every_column_kind_runs_and_a_seed_fixes_the_result(mixed_tables):
    first = evaluate(mixed_tables.train, mixed_tables.synthetic, mixed_tables.holdout, target="member", seed=3)
    again = evaluate(mixed_tables.train, mixed_tables.synthetic, mixed_tables.holdout, target="member", seed=3)

    assert first.summary() == again.summary()
    assert first.ignored_columns == ["id", "note"]
    assert first.utility.task == "classification"
    assert all(v is not None for k, v in first.summary().items() if not k.startswith("constraint"))


def test_one_synthetic_row_is_scored_with_a_note(mixed_tables):
    report = evaluate(mixed_tables.train, mixed_tables.synthetic.iloc[:1], mixed_tables.holdout, seed=0)

    assert report.detection.synthetic.auc is None
    assert any("detection needs at least 2 rows" in n for n in report.notes)


@pytest.mark.parametrize(
    "change, error, words",
    [
        pytest.param(dict(target="colour"), InvalidArgumentError, ["'colour'", "not a column of train"],
                     id="unknown-target"),
        pytest.param(dict(synthetic=lambda d: d.drop(columns=["x", "price"])), InvalidTableError,
                     ["synthetic lacks", "'price'", "'x'"], id="synthetic-lacks-columns"),
        pytest.param(dict(synthetic=lambda d: d.iloc[:0]), InvalidTableError, ["synthetic has 0 rows"],
                     id="empty-synthetic"),
        pytest.param(dict(holdout=lambda d: d.to_numpy()), InvalidTableError, ["holdout is a ndarray"],
                     id="not-a-frame"),
        pytest.param(dict(max_rows=1, seed=-1), InvalidArgumentError, ["max_rows", "seed"], id="bad-numbers"),
    ],
)
def test_bad_input_names_the_problem(diamond_splits, change, error, words):
    args = dict(train=diamond_splits.train, synthetic=diamond_splits.fresh, holdout=diamond_splits.holdout)
    for key, value in change.items():
        args[key] = value(args[key]) if callable(value) else value

    with pytest.raises(error) as info:
        evaluate(**args)

    for word in words:
        assert word in str(info.value)


def test_all_table_problems_are_listed_at_once(diamond_splits):
    with pytest.raises(InvalidTableError) as info:
        d = diamond_splits
        evaluate(d.train, d.fresh.drop(columns=["z"]), d.holdout.drop(columns=["cut"]))

    assert "synthetic lacks column(s) of train: ['z']" in str(info.value)
    assert "holdout lacks column(s) of train: ['cut']" in str(info.value)


def test_an_id_target_is_refused(mixed_tables):
    with pytest.raises(InvalidArgumentError, match="target 'id' is a column of kind 'id'"):
        evaluate(mixed_tables.train, mixed_tables.synthetic, mixed_tables.holdout, target="id")


def test_a_table_whose_schema_cannot_be_inferred_says_so():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0], "k": [None] * 3})

    with pytest.raises(InvalidTableError, match="cannot infer a schema from train.*'k' has no values"):
        evaluate(train, train, train)
