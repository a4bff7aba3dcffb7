import json

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
    pytest.param(pd.DataFrame({"a": [1, 2, 3], "b": ["1", "2", "n/a"]}), "column 'b' mixes numbers", id="mixed"),
    pytest.param(pd.DataFrame({"a": [1, 2], "b": [1.0, np.inf]}), "column 'b' has 1 infinite", id="inf"),
])
def test_infer_rejects_untrainable_columns(frame, expected):
    with pytest.raises(InvalidTableError, match=expected):
        Schema.infer(frame)


def test_infer_reports_all_problems_together():
    df = pd.DataFrame({"a": [1, 2, "x"], "b": [None] * 3, "c": [1.0, np.inf, 2.0]})
    with pytest.raises(InvalidTableError) as err:
        Schema.infer(df)
    assert len(err.value.problems) == 3 and str(err.value).startswith("3 problems:")


def test_many_decimals_validate_against_their_own_schema():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"rr": np.round(rng.random(200), 7), "third": rng.random(200) / 3})
    schema = Schema.infer(df)
    assert schema.column("rr").decimals == 7
    assert schema.valid_rows(df).all()


@pytest.mark.parametrize("values, expected", [
    pytest.param([7, 7, 7], 7, id="int"),
    pytest.param([2.5, 2.5, 2.5], 2.5, id="float"),
    pytest.param([3.0, 3.0, 3.0], 3.0, id="float-looking-like-int"),
    pytest.param(["kg", "kg", "kg"], "kg", id="str"),
    pytest.param([True, True, True], True, id="bool"),
    pytest.param(["false", "FALSE", "False"], False, id="bool-words"),
    pytest.param(["2020-01-31"] * 3, "2020-01-31", id="date-text"),
])
def test_a_column_with_one_value_is_a_constant_of_its_own_type(values, expected):
    schema = Schema.infer(pd.DataFrame({"x": [1.5, 2.0, 3.25], "k": values}))

    col = Schema.from_dict(json.loads(schema.to_json())).column("k")  # survives the JSON round trip

    assert col.kind == "constant" and col.categories == [expected] and not col.nullable
    assert type(col.categories[0]) is type(expected)


def test_constant_columns_check_coerce_and_format():
    schema = Schema.infer(pd.DataFrame({"x": [1, 2, 3], "i": [7] * 3, "f": [2.5] * 3, "s": ["kg"] * 3, "b": [True] * 3}))
    rows = pd.DataFrame({"x": [1, 2, 3], "i": ["7", 8, None], "f": ["2.5", 2.5, 3], "s": ["kg", "g", "kg"],
                         "b": ["true", True, False]})

    ok = schema.check(rows)

    assert ok[["i", "f", "s", "b"]].values.tolist() == [[True] * 4, [False, True, False, True], [False, False, True, False]]
    assert "column 'i' has 2 value(s) that are not the column's one value 7" in " ".join(schema.problems(rows))
    formatted = schema.format(schema.coerce(rows.iloc[:1]))
    assert formatted.dtypes.astype(str).tolist() == ["Int64", "Int64", "float64", "object", "object"]
    assert formatted.iloc[0].tolist() == [1, 7, 2.5, "kg", True]


@pytest.mark.parametrize("values, kind, categories", [
    pytest.param([True, None, True], "boolean", [True], id="bool"),
    pytest.param(["a", None, "a"], "categorical", ["a"], id="str"),
    pytest.param([4, None, 4], "numeric", None, id="number"),
    pytest.param(["2020-01-31", None, "2020-01-31"], "datetime", None, id="date"),
])
def test_one_value_plus_missing_cells_is_an_ordinary_nullable_column(values, kind, categories):
    schema = Schema.infer(pd.DataFrame({"x": [1, 2, 3], "k": values}))

    col = schema.column("k")

    assert (col.kind, col.categories, col.nullable) == (kind, categories, True)
    assert col.min == col.max or kind in ("boolean", "categorical")
    assert schema.valid_rows(pd.DataFrame({"x": [1, 2], "k": values[:2]})).all()


@pytest.mark.parametrize("categories, nullable", [
    pytest.param([1, 2], False, id="two-values"),
    pytest.param(None, False, id="no-value"),
    pytest.param([1], True, id="nullable"),
])
def test_a_constant_needs_exactly_one_value_and_no_missing_cells(categories, nullable):
    with pytest.raises(InvalidSchemaError, match="constant columns need 'categories' with exactly one value"):
        Schema.from_dict({"columns": [{"name": "k", "kind": "constant", "categories": categories,
                                       "nullable": nullable}]})


# ---------------------------------------------------------------------- found by the fuzz suite
def test_floats_near_the_top_of_the_range_fit_their_own_schema():
    # np.round(1e308, 1) multiplies by 10 first: inf; the column then failed its own decimals check
    df = pd.DataFrame({"x": [1e308, 123456789.12345679, -5e-324]})
    schema = Schema.infer(df)
    schema.validate_table(df)
    assert schema.column("x").decimals < 10


def test_whole_numbers_beyond_int64_are_floats_not_ints():
    # dtype int made `format` cast 1e308 to Int64 and crash
    df = pd.DataFrame({"x": [1e308, -1e308, 0.0], "k": ["9223372036854775808", "1", "2"]})
    schema = Schema.infer(df)
    assert schema.column("x").dtype == "float" and schema.column("k").dtype == "float"
    assert schema.format(df)["x"].tolist() == [1e308, -1e308, 0.0]


def test_values_that_differ_only_beyond_float_precision_are_not_a_constant():
    df = pd.DataFrame({"k": pd.Series([2**63 - 1, 2**63 - 1, 2**63], dtype="uint64")})
    schema = Schema.infer(df)
    assert schema.column("k").kind == "numeric"
    schema.validate_table(df)


@pytest.mark.parametrize("times, fmt", [
    pytest.param(["2020-01-01", "2021-06-30"], "%Y-%m-%d", id="dates"),
    pytest.param(["2020-01-01 10:00:00", "2021-06-30"], "%Y-%m-%d %H:%M:%S", id="seconds"),
    pytest.param(["1823-01-01 00:00:00.000104", "2000-01-01"], "%Y-%m-%d %H:%M:%S.%f", id="microseconds-long-ago"),
])
def test_datetime_columns_are_dates_at_their_own_precision(times, fmt):
    # datetime64 columns (Parquet, Excel) were inferred as numbers of nanoseconds; sub-second ones then
    # failed their own range check once written in a format without microseconds
    df = pd.DataFrame({"t": pd.to_datetime(times, format="ISO8601")})
    schema = Schema.infer(df)
    assert (schema.column("t").kind, schema.column("t").datetime_format) == ("datetime", fmt)
    schema.validate_table(df)
    schema.validate_table(schema.format(df))


def test_categories_of_objects_are_json_values():
    df = pd.DataFrame({"c": pd.Series([pd.Timestamp("2000-01-01 00:00:00.000001"), None, "x", "x", "x", 3, "3"], dtype=object)})
    schema = Schema.infer(df)
    cats = schema.column("c").categories
    assert cats == ["x", 3, "2000-01-01 00:00:00.000001"]  # 3 and "3" are one category
    assert Schema.from_dict(json.loads(schema.to_json())) == schema
    schema.validate_table(df)


def test_cells_of_spaces_are_missing_for_inference_and_checks_alike():
    df = pd.DataFrame({"x": [1, "  ", 3, ""], "c": ["a", "b", " ", "a"]}, dtype=object)
    schema = Schema.infer(df)
    assert schema.column("x").nullable and schema.column("c").categories == ["a", "b"]
    schema.validate_table(df)
    assert schema.coerce(df)["c"].isna().tolist() == [False, False, True, False]


def test_problem_messages_stay_on_one_line_whatever_the_column_name():
    with pytest.raises(InvalidTableError) as err:
        Schema.infer(pd.DataFrame({"a": [1, 2], "b\r\nc": [None, None]}))
    assert "\n" not in str(err.value) and "\r" not in str(err.value) and "--drop 'b\\r\\nc'" in str(err.value)


@pytest.mark.parametrize("values, categories", [
    pytest.param([True, 1, "x", "x", "x"], ["x", True, 1], id="true-is-not-1"),  # equal in Python, not in a table
    pytest.param([float("inf"), "x", "x"], ["x", "inf"], id="inf-category"),  # JSON writes inf as null
])
def test_categories_are_told_apart_by_their_text_and_survive_json(values, categories):
    df = pd.DataFrame({"c": pd.Series(values, dtype=object)})
    schema = Schema.infer(df)
    assert schema.column("c").categories == categories
    assert Schema.from_dict(json.loads(schema.to_json())) == schema
    schema.validate_table(df)


def test_schema_and_its_inference_heuristics_do_not_import_each_other():
    # Both build on tabline._column; a cycle would make import order matter (issue 13: one home per idea)
    import ast
    from pathlib import Path

    import tabline

    root = Path(tabline.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}

    assert "tabline.schema" not in imports("_infer.py") and "tabline.schema" not in imports("_column.py")
    assert "tabline._infer" in imports("schema.py")
