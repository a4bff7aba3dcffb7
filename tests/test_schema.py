import numpy as np
import pandas as pd
import pytest

from tabline.errors import InvalidSchemaError, InvalidTableError
from tabline.schema import Schema


def test_infer_kinds_and_properties(mixed_table):
    schema = Schema.infer(mixed_table)
    kinds = {c.name: c.kind for c in schema.columns}
    assert kinds == {"customer": "id", "age": "numeric", "income": "numeric", "member": "boolean",
                     "region": "categorical", "since": "datetime", "score": "numeric", "note": "text"}
    age, income, score = schema.column("age"), schema.column("income"), schema.column("score")
    assert (age.dtype, age.decimals, age.nullable) == ("int", 0, False)
    assert (income.dtype, income.decimals, income.nullable) == ("float", 2, True)
    assert score.decimals == 3
    assert age.min == mixed_table["age"].min() and age.max == mixed_table["age"].max()
    assert schema.column("since").datetime_format == "%Y-%m-%d"
    assert schema.column("region").nullable and schema.column("region").categories[0] == "north"


def test_real_table_is_valid_against_its_schema(diamonds):
    schema = Schema.infer(diamonds)
    assert schema.valid_rows(diamonds).all()
    assert schema.column("carat").decimals == 2 and schema.column("price").dtype == "int"


def test_check_flags_exactly_the_bad_cells(diamonds):
    schema = Schema.infer(diamonds)
    bad = diamonds.iloc[:5].astype({"price": float})
    bad.loc[0, "cut"] = "Superb"          # unknown category
    bad.loc[1, "carat"] = 99.0            # out of range
    bad.loc[2, "price"] = 400.5           # not an int
    bad.loc[3, "depth"] = np.nan          # missing in a column without missing values
    mask = schema.check(bad)
    assert not mask.loc[0, "cut"] and not mask.loc[1, "carat"] and not mask.loc[2, "price"]
    assert not mask.loc[3, "depth"]
    assert mask.loc[4].all()
    assert schema.valid_rows(bad).tolist() == [False, False, False, False, True]


def test_validate_lists_every_problem_at_once(diamonds):
    schema = Schema.infer(diamonds)
    bad = diamonds.iloc[:10].copy()
    bad["cut"] = bad["cut"].astype(object)
    bad.loc[0:2, "cut"] = "Superb"
    bad.loc[5, "carat"] = -1.0
    with pytest.raises(InvalidTableError) as err:
        schema.validate_table(bad.drop(columns=["z"]))
    msg = str(err.value)
    assert "lacks column(s) ['z']" in msg
    assert "column 'cut' has 3 value(s)" in msg and "'Superb'" in msg
    assert "column 'carat' has 1 value(s)" in msg and "-1.0" in msg
    assert len(err.value.problems) == 3


def test_constraints_are_vectorised_and_checked_on_infer(diamonds):
    schema = Schema.infer(diamonds, constraints=["carat > 0", "x >= 0"])
    rows = diamonds.iloc[:4].copy()
    rows.loc[1, "carat"] = 0.0
    masks = schema.check_constraints(rows)
    assert masks["carat > 0"].tolist() == [True, False, True, True]
    assert masks["x >= 0"].all()
    with pytest.raises(InvalidTableError, match=r"breaks constraint 'price > 1000' in \d+ row"):
        Schema.infer(diamonds, constraints=["price > 1000"])
    with pytest.raises(InvalidTableError, match="names no column"):
        Schema.infer(diamonds, constraints=["weight > 0"])


def test_constraint_with_missing_value_counts_as_satisfied():
    df = pd.DataFrame({"start": [1, 2, None, 4] * 10, "end": [2, 2, 5, None] * 10})
    schema = Schema.infer(df, constraints=["end >= start"])
    assert schema.check_constraints(df)["end >= start"].all()


@pytest.mark.parametrize("fmt", [pytest.param(".json", id="json"), pytest.param(".yaml", id="yaml")])
def test_round_trip_through_file(mixed_table, tmp_path, fmt):
    schema = Schema.infer(mixed_table, constraints=["age >= 18"], descriptions={"age": "years"})
    path = tmp_path / f"schema{fmt}"
    (schema.to_json if fmt == ".json" else schema.to_yaml)(path)
    again = Schema.load(path)
    assert again == schema
    assert again.column("age").description == "years"


def test_typo_in_schema_file_names_the_key(tmp_path, diamonds):
    data = Schema.infer(diamonds).model_dump(mode="json")
    data["columns"][0]["nulable"] = True
    data["constrains"] = []
    with pytest.raises(InvalidSchemaError) as err:
        Schema.from_dict(data)
    assert "columns.0.nulable: unknown field" in str(err.value)
    assert "constrains: unknown field" in str(err.value)


@pytest.mark.parametrize("frame, expected", [
    pytest.param(pd.DataFrame({"a": [1, 2], "b": [None, None]}), "column 'b' has no values", id="all-null"),
    pytest.param(pd.DataFrame({"a": [1, 2], "b": ["k", "k"]}), "column 'b' is constant", id="constant"),
    pytest.param(pd.DataFrame({"a": [1, 2, 3], "b": ["1", "2", "n/a"]}), "column 'b' mixes numbers", id="mixed"),
    pytest.param(pd.DataFrame({"a": [1, 2], "b": [1.0, np.inf]}), "column 'b' has 1 infinite", id="inf"),
])
def test_infer_rejects_untrainable_columns(frame, expected):
    with pytest.raises(InvalidTableError, match=expected):
        Schema.infer(frame)


def test_infer_reports_all_problems_together():
    df = pd.DataFrame({"a": [1, 1, 1], "b": [None] * 3, "c": [1.0, np.inf, 2.0]})
    with pytest.raises(InvalidTableError) as err:
        Schema.infer(df)
    assert len(err.value.problems) == 3 and str(err.value).startswith("3 problems:")


def test_many_decimals_validate_against_their_own_schema():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"rr": np.round(rng.random(200), 7), "third": rng.random(200) / 3})
    schema = Schema.infer(df)
    assert schema.column("rr").decimals == 7
    assert schema.valid_rows(df).all()
