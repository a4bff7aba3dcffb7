"""A column with one value is carried through: `tabline schema` shows it, every sampled row holds it."""
import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.cli import app
from tabline.schema import Schema

runner = CliRunner()
CONSTANTS = {"batch": 7, "weight": 2.5, "unit": "kg", "checked": True}


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("const") / "d.csv"
    pd.DataFrame({"n": [i % 9 for i in range(60)], "colour": [["red", "blue", "green"][i % 3] for i in range(60)],
                  **{k: [v] * 60 for k, v in CONSTANTS.items()}}).to_csv(path, index=False)
    return path


def test_schema_shows_kind_constant(table):
    result = run("schema", table)
    assert result.exit_code == 0, result.output
    text = result.output
    for name, value in [("batch", "7"), ("weight", "2.5"), ("unit", "kg"), ("checked", "true")]:
        block = text[text.index(f"- name: {name}"):]
        assert block.split("- name:")[1].count("kind: constant") == 1
        assert f"categories:\n  - {value}\n" in block


def test_fit_and_sample_hold_every_constant(table, tmp_path):
    assert run("fit", table, "-o", tmp_path / "m", "--epochs", "1", "-q").exit_code == 0
    result = run("sample", tmp_path / "m", "-n", "25", "-o", tmp_path / "out.csv", "-q", "--condition", "unit=kg")
    assert result.exit_code == 0, result.output

    out = pd.read_csv(tmp_path / "out.csv")

    assert list(out.columns) == ["n", "colour", *CONSTANTS] and len(out) == 25
    for name, value in CONSTANTS.items():
        assert (out[name] == value).all() and out[name].dtype == pd.Series([value]).dtype, name
    assert Schema.load(tmp_path / "m" / "schema.json").valid_rows(out).all()
    refused = run("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "o2.csv", "--condition", "batch=8")
    assert refused.exit_code == 2 and "condition batch='8': the column is constant (every row is 7)" in refused.output
