"""What LLM agents are told about columns, and how their answers are held to the schema."""
import pandas as pd
import pytest
from pydantic import ValidationError

from tabline.agents.llm.table import describe_columns, rows_model, validate_rows
from tabline.schema import Schema


@pytest.fixture
def schema():
    return Schema.infer(pd.DataFrame({"x": [1, 2, 3], "unit": ["kg"] * 3, "n": [7] * 3, "ok": [True] * 3}))


def test_a_constant_is_described_as_one_value(schema):
    assert describe_columns(schema, ["unit", "n", "ok"]).splitlines() == [
        '- unit (constant): always "kg"', "- n (constant): always 7", "- ok (constant): always true"]


def test_structured_output_holds_a_constant_to_its_value(schema):
    rows = rows_model("Out", schema, ["x", "unit", "n"], row_id=False)

    assert rows.model_validate({"rows": [{"x": 2, "unit": "kg", "n": 7}]}).rows[0].values() == {"x": 2.0, "unit": "kg", "n": 7}
    with pytest.raises(ValidationError, match="unit"):
        rows.model_validate({"rows": [{"x": 2, "unit": "g", "n": 7}]})
    assert validate_rows(pd.DataFrame({"n": [7, 8]}), schema) == {1: "row 1: n = 8 is not the column's one value 7"}
