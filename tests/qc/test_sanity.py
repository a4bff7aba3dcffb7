import numpy as np
import pandas as pd
import pytest

from tabline.qc.sanity import row_keys, sanity
from tabline.schema import Schema


@pytest.fixture()
def setup(diamonds):
    real = diamonds.iloc[:500].reset_index(drop=True)
    schema = Schema.infer(real, constraints=["x <= 2 * y"])
    return real, schema


def test_each_kind_of_bad_row_gets_its_reason(setup):
    real, schema = setup
    good = real.iloc[:6].copy()
    good["price"] = good["price"] + 1  # not copies of real rows any more
    batch = pd.concat([good, good.iloc[[1]]], ignore_index=True).astype({"carat": float})
    batch.loc[0, "cut"] = "Superb"                         # schema: unknown category
    batch.loc[2, "carat"] = 99.0                           # schema: out of range
    batch.loc[4] = real.iloc[10]                           # copy of a real row
    result = sanity(batch, schema, real_keys=set(row_keys(real, schema)))
    reasons = result.reason.tolist()
    assert reasons[0] == "schema: column 'cut' = Superb is not allowed"
    assert reasons[2] == "schema: column 'carat' = 99.0 is not allowed"
    assert reasons[3] == ""
    assert reasons[4] == "copy: equals a real training row"
    assert reasons[5] == ""
    assert reasons[6] == "duplicate: same as row 1 of this batch"
    assert reasons[1] == ""
    assert result.passed.tolist() == [False, True, False, True, False, True, False]
    assert set(result.rejection_counts()) <= {"schema", "constraint", "copy", "duplicate"}


def test_constraint_reason():
    start = np.arange(1, 61)
    real = pd.DataFrame({"start": start, "end": start + np.arange(60) % 7})
    schema = Schema.infer(real, constraints=["end >= start"])
    batch = pd.DataFrame({"start": [40, 10], "end": [10, 40]})  # both values inside their columns' ranges
    assert sanity(batch, schema).reason.tolist() == ["constraint: breaks 'end >= start'", ""]


def test_rows_accepted_before_are_duplicates(setup):
    real, schema = setup
    batch = real.iloc[:3].copy()
    batch["price"] += 1
    accepted = set(row_keys(batch.iloc[[2]], schema))
    assert sanity(batch, schema, accepted_keys=accepted).reason.tolist() == ["", "", "duplicate: same as an accepted row"]


def test_rounding_makes_near_equal_rows_equal(setup):
    real, schema = setup
    a = real.iloc[[0]].astype({"carat": float})
    b = a.copy()
    b["carat"] = b["carat"] + 1e-9
    assert (row_keys(a, schema).to_numpy() == row_keys(b, schema).to_numpy()).all()


def test_verdicts_keep_every_row(setup):
    real, schema = setup
    batch = pd.concat([real.iloc[:4]] * 2, ignore_index=True)
    verdicts = sanity(batch, schema, real_keys=set(row_keys(real, schema))).verdicts()
    assert len(verdicts) == 8 and set(verdicts.columns) == {"row_id", "stage", "passed", "score", "reason"}
    assert not verdicts["passed"].any() and (verdicts["score"] == 0).all()
    assert np.array_equal(verdicts["row_id"], batch.index)


def test_a_real_row_with_a_fresh_id_is_still_a_copy():
    real = pd.DataFrame({"id": [f"u{i}" for i in range(30)], "v": np.arange(30) % 4, "w": np.arange(30) % 3})
    schema = Schema.infer(real)
    copy = real.iloc[[5]].assign(id="syn-1")
    assert sanity(copy, schema, real_keys=set(row_keys(real, schema))).reason.tolist() == ["copy: equals a real training row"]
