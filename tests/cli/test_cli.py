"""The command line, as a user meets it: real files, real exit codes, no tracebacks for mistakes."""
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


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, diamonds):
    root = tmp_path_factory.mktemp("cli")
    data = root / "train.csv"
    diamonds.iloc[:400].to_csv(data, index=False)
    result = run("fit", data, "-o", root / "model", "--epochs", "2", "--quiet")
    assert result.exit_code == 0, result.output
    return root / "model"


def test_fit_sample_evaluate_end_to_end(model_dir, diamonds, tmp_path):
    assert (model_dir / "model.safetensors").exists() and (model_dir / "schema.json").exists()
    out = tmp_path / "synth.csv"
    result = run("sample", model_dir, "-n", "300", "-o", out, "--condition", "cut=Ideal", "--seed", "3", "-q")
    assert result.exit_code == 0, result.output
    synth = pd.read_csv(out)
    assert len(synth) == 300 and (synth["cut"] == "Ideal").all()
    assert list(synth.columns) == list(diamonds.columns)
    train, hold = tmp_path / "train.csv", tmp_path / "hold.csv"
    diamonds.iloc[:400].to_csv(train, index=False)
    diamonds.iloc[400:800].to_csv(hold, index=False)
    result = run("evaluate", train, out, "--holdout", hold, "--target", "color", "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r.json").read_text())
    assert "quality" in result.output and summary["rows"]["synthetic"] == 300


def test_same_seed_same_csv(model_dir, tmp_path):
    for name in ("a", "b"):
        assert run("sample", model_dir, "-n", "50", "-o", tmp_path / f"{name}.csv", "--seed", "4", "-q").exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_schema_command_writes_editable_yaml(tmp_path, diamonds):
    data = tmp_path / "d.csv"
    diamonds.iloc[:100].to_csv(data, index=False)
    result = run("schema", data, "-o", tmp_path / "s.yaml")
    assert result.exit_code == 0
    assert "kind: categorical" in (tmp_path / "s.yaml").read_text()


def _write(path, text: str | bytes):
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


HEADER = "a,b,c\n"
ROWS = "".join(f"{i},{i % 3},x{i % 4}\n" for i in range(30))


@pytest.mark.parametrize("content, message", [
    pytest.param(None, "file not found", id="missing-file"),
    pytest.param("", "is empty", id="empty-file"),
    pytest.param(HEADER, "has a header but no rows", id="header-only"),
    pytest.param(HEADER + "1,2,x\n", "at least 10 are needed", id="one-row"),
    pytest.param("a,b,a\n" + ROWS, "column 'a' appears more than once", id="duplicate-columns"),
    pytest.param("a,b,c\n" + "".join(f"{i},,x{i % 4}\n" for i in range(30)), "column 'b' has no values", id="all-null"),
    pytest.param("a,b,c\n" + "".join(f"{i},{'oops' if i == 5 else i},x\n" for i in range(30)), "column 'b' mixes numbers", id="mixed-types"),
    pytest.param(b"a,b,c\n" + b"".join(b"%d,%d,caf\xe9\n" % (i, i % 3) for i in range(30)), "not valid utf-8", id="not-utf8"),
    pytest.param("a,b,c\n" + "".join(f"{i},{'inf' if i == 3 else i % 3},x{i % 4}\n" for i in range(30)), "infinite value", id="inf"),
])
def test_fit_rejects_bad_input_clearly(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        _write(path, content)
    result = run("fit", path, "-o", tmp_path / "model", "--epochs", "1", "-q")
    assert result.exit_code == 2
    assert "error:" in result.output and message in result.output.replace("\n", " ")
    assert not (tmp_path / "model").exists()  # nothing half-written


def test_unreadable_path_is_a_clear_error(tmp_path):
    result = run("fit", tmp_path, "-o", tmp_path / "m")
    assert result.exit_code == 2 and "is a directory" in result.output


def test_mixed_column_is_fixed_by_na_value(tmp_path):
    path = _write(tmp_path / "d.csv", "a,b,c\n" + "".join(f"{i},{'?' if i == 5 else i % 4},x{i % 4}\n" for i in range(40)))
    result = run("fit", path, "-o", tmp_path / "m", "--epochs", "1", "-q", "--na-value", "?")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    pytest.param(["-n", "0"], "positive number of rows", id="n-zero"),
    pytest.param(["-n", "-5"], "positive number of rows", id="n-negative"),
    pytest.param(["-n", "5", "--condition", "colour=E"], "unknown condition column 'colour'", id="unknown-column"),
    pytest.param(["-n", "5", "--condition", "cut=Superb"], "not a category", id="unknown-value"),
    pytest.param(["-n", "5", "--condition", "carat=big"], "must be a float number", id="not-a-number"),
    pytest.param(["-n", "5", "--condition", "cut"], "expected COLUMN=VALUE", id="no-equals"),
])
def test_sample_rejects_bad_arguments(model_dir, tmp_path, args, message):
    out = tmp_path / "o.csv"
    result = run("sample", model_dir, "-o", out, *args)
    assert result.exit_code == 2 and message in result.output.replace("\n", " ")
    assert not out.exists()


def test_sample_from_a_directory_that_is_not_a_model(tmp_path):
    result = run("sample", tmp_path, "-n", "5", "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "not a tabline model directory" in result.output


def test_evaluate_unknown_target(tmp_path, diamonds):
    p = tmp_path / "d.csv"
    diamonds.iloc[:200].to_csv(p, index=False)
    result = run("evaluate", p, p, "--holdout", p, "--target", "nope")
    assert result.exit_code == 2 and "nope" in result.output


def test_help_lists_the_commands():
    result = run("--help")
    for command in ("fit", "sample", "evaluate", "demo", "schema"):
        assert command in result.output
