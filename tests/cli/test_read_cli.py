"""Reading tables through the command line: delimiters, quoting, decimal commas, ragged lines, row names,
unnamed columns, Parquet / JSON Lines / Excel in and Parquet out. Nothing is lost or misread, and what the
reader decided is printed as a note."""
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.cli import app

runner = CliRunner()


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def schema_of(path, *options):
    """Run `tabline schema PATH -o s.json`; return the result and {column: its schema entry}."""
    out = path.parent / "s.json"
    out.unlink(missing_ok=True)
    result = run("schema", path, "-o", out, *options)
    columns = {c["name"]: c for c in json.loads(out.read_text())["columns"]} if out.exists() else {}
    return result, columns


def _write(path, text: str):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _one_line(result) -> str:
    return result.output.replace("\n", " ")


ROWS = [(i, ["red", "green", "blue"][i % 3], round(i * 1.25, 2)) for i in range(12)]


@pytest.mark.parametrize("sep, name", [
    pytest.param(";", "semicolons", id="semicolon"),
    pytest.param("\t", "tabs", id="tab"),
    pytest.param("|", "pipes", id="pipe"),
])
def test_delimiter_is_detected_and_said(tmp_path, sep, name):
    text = sep.join(["n", "colour", "size"]) + "\n" + "".join(sep.join(map(str, r)) + "\n" for r in ROWS)
    result, cols = schema_of(_write(tmp_path / "d.csv", text))
    assert result.exit_code == 0, result.output
    assert list(cols) == ["n", "colour", "size"]
    assert cols["colour"]["categories"] == ["red", "green", "blue"] and cols["size"]["max"] == 13.75
    assert f"fields are separated by {name}" in _one_line(result)


def test_quoted_fields_may_hold_the_delimiter_and_newlines(tmp_path):
    text = 'id;note;score\n' + "".join(f'{i};"line one; still {i % 2}\nline two";{i}\n' for i in range(12))
    result, cols = schema_of(_write(tmp_path / "q.csv", text))
    assert result.exit_code == 0, result.output
    assert list(cols) == ["id", "note", "score"]
    assert cols["note"]["categories"] == ["line one; still 0\nline two", "line one; still 1\nline two"]
    assert cols["score"]["min"] == 0 and cols["score"]["max"] == 11


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    text = "price;city\n" + "".join(f"{i},5;{['Lyon', 'Graz'][i % 2]}\n" for i in range(12)) + ";Lyon\n"
    result, cols = schema_of(_write(tmp_path / "eu.csv", text))
    assert result.exit_code == 0, result.output
    price = cols["price"]
    assert (price["kind"], price["dtype"], price["min"], price["max"], price["decimals"]) == ("numeric", "float", 0.5, 11.5, 1)
    assert price["nullable"] is True
    assert "'price' use(s) decimal commas (1,5 = 1.5): read as numbers" in _one_line(result)


def test_sep_option_overrides_the_detected_delimiter(tmp_path):
    # Detected, the comma wins (two fields on every line); the user says the fields are split at semicolons.
    text = "a;b,c\n" + "".join(f"{i};{i % 3},{i % 2}\n" for i in range(12))
    path = _write(tmp_path / "s.csv", text)
    _, detected = schema_of(path)
    assert list(detected) == ["a;b", "c"]
    result, cols = schema_of(path, "--sep", ";")
    assert result.exit_code == 0, result.output
    assert list(cols) == ["a", "b,c"] and cols["a"]["max"] == 11


@pytest.mark.parametrize("text, message", [
    pytest.param("a,b,c\n0,0,0,0,0\n" + "1,2,3\n" * 12, "d.csv line 2 has 5 fields but the header has 3", id="extra-fields-first-row"),
    pytest.param("a,b,c\n" + "1,2,3\n" * 5 + "1,2\n" + "1,2,3\n" * 5 + "4,5,6,7\n9\n",
                 "line 7 has 2 fields but the header has 3 (and 2 more such lines: 13, 14)", id="several"),
])
def test_ragged_lines_are_an_error_naming_the_line(tmp_path, text, message):
    path = _write(tmp_path / "d.csv", text)
    for command in (["schema", path], ["fit", path, "-o", tmp_path / "m", "--epochs", "1", "-q"]):
        result = run(*command)
        assert result.exit_code == 2 and "error:" in result.output
        assert message in _one_line(result) and "--on-bad-lines skip" in _one_line(result)
    assert not (tmp_path / "m").exists()


def test_ragged_lines_can_be_skipped_and_are_counted(tmp_path):
    good = "".join(f"{i},{i % 4},x{i % 3}\n" for i in range(12))
    path = _write(tmp_path / "d.csv", "a,b,c\n0,0,0,0,0\n" + good + "7,7\n")
    result, cols = schema_of(path, "--on-bad-lines", "skip")
    assert result.exit_code == 0, result.output
    assert cols["a"]["min"] == 0 and cols["a"]["max"] == 11 and cols["b"]["max"] == 3
    assert "left out 2 lines whose field count differs from the header's 3 (lines 2, 15" in _one_line(result)


def test_r_write_csv_row_names_are_left_out(tmp_path):
    # write.csv(df): a quoted empty header cell, then the row numbers "1".."n"
    text = '"","x","y"\n' + "".join(f'"{i + 1}",{i * 2},"{"ab"[i % 2]}"\n' for i in range(12))
    result, cols = schema_of(_write(tmp_path / "r.csv", text))
    assert result.exit_code == 0, result.output
    assert list(cols) == ["x", "y"] and cols["x"]["min"] == 0 and cols["x"]["max"] == 22
    assert "column 1 has no name and holds the row numbers 1..12" in _one_line(result)


def test_r_write_table_row_names_one_field_more_than_the_header(tmp_path):
    # write.table(df, sep=","): the header lacks the row-name field, every row has it
    text = '"x","y"\n' + "".join(f'"{i + 1}",{i * 2},{100 + i}\n' for i in range(12))
    result, cols = schema_of(_write(tmp_path / "r.csv", text))
    assert result.exit_code == 0, result.output
    assert list(cols) == ["x", "y"]
    assert (cols["x"]["min"], cols["x"]["max"], cols["y"]["min"], cols["y"]["max"]) == (0, 22, 100, 111)
    assert "one field more than the header (R's write.table row names)" in _one_line(result)


def test_unnamed_column_that_is_not_row_numbers_gets_a_name(tmp_path):
    text = "a,,c\n" + "".join(f"{i},{['p', 'q'][i % 2]},{i % 5}\n" for i in range(12))
    result, cols = schema_of(_write(tmp_path / "u.csv", text))
    assert result.exit_code == 0, result.output
    assert list(cols) == ["a", "unnamed_2", "c"] and cols["unnamed_2"]["categories"] == ["p", "q"]
    assert "column 2 has no name: called it 'unnamed_2'" in _one_line(result)


def _frame(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({"n": range(n), "colour": [["red", "blue"][i % 2] for i in range(n)],
                         "w": [i / 4 for i in range(n)]})


@pytest.mark.parametrize("name, write", [
    pytest.param("t.parquet", lambda df, p: df.to_parquet(p), id="parquet"),
    pytest.param("t.pq", lambda df, p: df.to_parquet(p, index=False), id="pq"),
    pytest.param("t.jsonl", lambda df, p: df.to_json(p, orient="records", lines=True), id="jsonl"),
    pytest.param("t.ndjson", lambda df, p: df.to_json(p, orient="records", lines=True), id="ndjson"),
    pytest.param("t.xlsx", lambda df, p: df.to_excel(p, index=False), id="xlsx"),
])
def test_typed_files_are_read_by_extension(tmp_path, name, write):
    write(_frame(), tmp_path / name)
    result, cols = schema_of(tmp_path / name)
    assert result.exit_code == 0, result.output
    assert list(cols) == ["n", "colour", "w"]
    assert cols["colour"]["categories"] == ["red", "blue"] and (cols["w"]["max"], cols["w"]["decimals"]) == (7.25, 2)


@pytest.mark.parametrize("name, write, message", [
    pytest.param("d.xlsx", lambda p: pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]).to_excel(p, index=False),
                 "column 'a' appears more than once", id="xlsx-duplicate-names"),
    pytest.param("d.jsonl", lambda p: p.write_text('{"a": 1}\n{"a": [1, 2]}\n'), "column 'a' holds nested", id="jsonl-nested"),
    pytest.param("d.jsonl", lambda p: p.write_text('{"a": 1}\n{"a": 2\n'), "d.jsonl line 2 is not a valid JSON object", id="jsonl-broken"),
    pytest.param("d.parquet", lambda p: p.write_text("a,b\n1,2\n"), "not a readable Parquet file", id="parquet-not-parquet"),
    pytest.param("d.parquet", lambda p: pd.DataFrame({"a": []}).to_parquet(p), "has a header but no rows", id="parquet-empty"),
])
def test_typed_files_get_the_same_checks(tmp_path, name, write, message):
    write(tmp_path / name)
    result = run("schema", tmp_path / name)
    assert result.exit_code == 2 and "error:" in result.output and message in _one_line(result)


def test_parquet_drop_and_na_values(tmp_path):
    df = _frame().assign(code=["?" if i % 7 == 0 else f"k{i % 3}" for i in range(30)])
    df.to_parquet(tmp_path / "t.parquet", index=False)
    result, cols = schema_of(tmp_path / "t.parquet", "--drop", "n", "--na-value", "?")
    assert result.exit_code == 0, result.output
    assert list(cols) == ["colour", "w", "code"] and cols["code"]["nullable"] and "?" not in cols["code"]["categories"]


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("read")
    data = root / "train.csv"
    # semicolons and decimal commas on the way in: the model must learn numbers, not text
    data.write_text("w;colour\n" + "".join(f"{i % 10},25;{['red', 'blue'][i % 2]}\n" for i in range(60)))
    result = run("fit", data, "-o", root / "model", "--epochs", "1", "-q")
    assert result.exit_code == 0, result.output
    assert "decimal commas" in result.output
    return root / "model"


@pytest.mark.parametrize("name", ["out.parquet", "out.pq"])
def test_sample_writes_parquet_by_extension(small_model, tmp_path, name):
    result = run("sample", small_model, "-n", "40", "-o", tmp_path / name, "-q")
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(tmp_path / name)
    assert len(out) == 40 and list(out.columns) == ["w", "colour"]
    assert out["w"].dtype == float and out["w"].between(0.25, 9.25).all() and set(out["colour"]) <= {"red", "blue"}
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left behind


def test_sample_refuses_an_unknown_output_extension_before_any_work(tmp_path):
    result = run("sample", tmp_path / "no-model-here", "-n", "5", "-o", tmp_path / "out.txt")
    assert result.exit_code == 2 and "must end in .csv, .parquet or .pq" in _one_line(result)
    assert not (tmp_path / "out.txt").exists()


@pytest.mark.parametrize("content, message", [
    pytest.param(b"a,b\n1,2\n3,\x004\n", "d.csv holds a NUL character (\\x00) at line 3", id="nul"),
    pytest.param("a,b\n1,2\n".encode("utf-16"), "is UTF-16 text", id="utf-16"),
    pytest.param(b'a,b\n1,2\n3,"four\n5,6\n', "d.csv line 3 is not valid CSV: a quoted field opened there is never closed",
                 id="open-quote"),
    pytest.param(b'a,b\n1,"two" more\n', "d.csv line 2 is not valid CSV: text follows a closing quote", id="text-after-quote"),
])
def test_unreadable_text_is_one_clear_line(tmp_path, content, message):
    (tmp_path / "d.csv").write_bytes(content)
    result = run("schema", tmp_path / "d.csv")
    assert result.exit_code == 2 and message in _one_line(result)


def test_dates_in_a_parquet_file_are_dates(tmp_path):
    # datetime64 columns were inferred as numbers of nanoseconds
    pd.DataFrame({"day": pd.date_range("2021-01-01", periods=30), "v": range(30)}).to_parquet(tmp_path / "t.parquet")
    result, cols = schema_of(tmp_path / "t.parquet")
    assert result.exit_code == 0, result.output
    assert (cols["day"]["kind"], cols["day"]["datetime_format"]) == ("datetime", "%Y-%m-%d")


def test_empty_lines_in_a_one_column_file_are_said(tmp_path):
    result, cols = schema_of(_write(tmp_path / "d.csv", "x\n1\n\n2\n3\n\n"))
    assert result.exit_code == 0 and cols["x"]["nullable"] is False
    assert "skipped 2 empty lines: in a table of one column an empty line may mean a missing value" in _one_line(result)
