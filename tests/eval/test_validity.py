"""Validity counts on a hand-made table whose bad rows are known."""
from __future__ import annotations

import pandas as pd

from tabline.eval.validity import validity, validity_scores
from tabline.schema import Column, Schema

SCHEMA = Schema(
    columns=[
        Column(name="age", kind="numeric", dtype="int", min=18, max=90),
        Column(name="city", kind="categorical", categories=["Paris", "Lyon"]),
        Column(name="lo", kind="numeric", dtype="int", min=0, max=100),
        Column(name="hi", kind="numeric", dtype="int", min=0, max=100),
    ],
    constraints=["hi >= lo"],
)


def test_validity_counts_known_bad_rows():
    df = pd.DataFrame({
        "age": [30, 200, 40, 30.5, 50],  # row 1 out of range, row 3 not an int
        "city": ["Paris", "Lyon", "Rome", "Lyon", "Paris"],  # row 2 unknown
        "lo": [1, 2, 9, 4, 8],
        "hi": [5, 6, 3, 7, 2],  # rows 2 and 4 break hi >= lo
    })

    v = validity_scores(df, SCHEMA)

    assert v.invalid_by_column == {"age": 2, "city": 1, "lo": 0, "hi": 0}
    assert v.invalid_rows == 3 and v.invalid_row_rate == 0.6
    assert v.violations_by_constraint == {"hi >= lo": 2}
    assert v.constraint_violation_rate == 0.4


def test_holdout_is_scored_the_same_way_and_no_constraints_means_none():
    schema = SCHEMA.model_copy(update={"constraints": []})
    clean = pd.DataFrame({"age": [20, 30], "city": ["Paris", "Lyon"], "lo": [1, 2], "hi": [3, 4]})
    missing = clean.assign(city=[None, "Lyon"])  # the column is not nullable

    v = validity(missing, clean, schema)

    assert v.synthetic.invalid_by_column["city"] == 1 and v.synthetic.invalid_row_rate == 0.5
    assert v.ceiling.invalid_rows == 0
    assert v.synthetic.constraint_violation_rate is None
