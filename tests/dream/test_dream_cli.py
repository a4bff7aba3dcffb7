"""`tabline dream` from the command line: the shipped table without a target model, and user mistakes."""
from __future__ import annotations

import json

import pytest
from datasets import load_dataset
from trl.data_utils import is_conversational
from typer.testing import CliRunner

from tabline.cli import app


def test_demo_table_without_target_writes_the_unfiltered_set(tmp_path):
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["dream", "--rounds", "2", "--per-round", "12", "--tables", "3", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "unfiltered" in r.output and "round 1: 12 items (not answered); kept 12" in r.output
    report = json.loads((out / "report.json").read_text())
    assert report["filtered"] is False and report["items"] == 24 and report["dataset_rows"] <= 24
    ds = load_dataset("json", data_files=str(out / "dataset.jsonl"), split="train")
    assert len(ds) == report["dataset_rows"] and is_conversational(ds[0])
    assert {p["provenance"] and json.loads(p["provenance"])["table"].startswith("diamonds") for p in ds} == {True}
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "done" and manifest["kind"] == "dream"
    page = (out / "view.html").read_text()  # the run's page, written at the end
    first = json.loads((out / "items.jsonl").read_text().splitlines()[0])
    instruction = first["messages"][1]["content"].split("\n\n")[0]
    assert "kept items per task type" in page and json.dumps(instruction)[1:-1] in page
    before = (out / "dataset.jsonl").read_bytes()
    again = CliRunner().invoke(app, ["dream", "--resume", str(out)])  # a finished run is read back, not re-run
    assert again.exit_code == 0 and "round 2: 12 items" in again.output
    assert (out / "dataset.jsonl").read_bytes() == before


def test_user_tables_are_read(tmp_path, diamonds):
    data = tmp_path / "shop.csv"
    diamonds.head(40).to_csv(data, index=False)
    r = CliRunner().invoke(app, ["dream", str(data), "--rounds", "1", "--per-round", "6", "--tables", "2",
                                 "-o", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    titles = {json.loads(json.loads(line)["provenance"])["table"]
              for line in (tmp_path / "run" / "items.jsonl").read_text().splitlines()}
    assert titles <= {"shop (sample 1)", "shop (sample 2)"}


@pytest.mark.parametrize("args, message", [
    pytest.param(["--rounds", "0"], "rounds: Input should be greater than or equal to 1", id="zero-rounds"),
    pytest.param(["--per-round", "2"], "per_round: Input should be greater than or equal to 3", id="tiny-round"),
    pytest.param(["missing.csv"], "file not found: missing.csv", id="missing-table"),
    pytest.param(["--target-model", "gpt-4o"], "model 'gpt-4o' is not a backend shorthand", id="bad-model-spec"),
    pytest.param(["--judge-llm", "hf:/nowhere"], "/nowhere", id="missing-hf-model"),
    pytest.param(["--resume", "{tmp}/none"], "is not a run folder", id="resume-nothing"),
    pytest.param(["x.csv", "--resume", "{tmp}"], "--resume takes only the run folder", id="resume-with-tables"),
])
def test_bad_input_exits_2_with_a_clear_message(args, message, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = CliRunner().invoke(app, ["dream", *args, "-o", str(tmp_path / "out")] if "--resume" not in args
                           else ["dream", *args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_a_dream_run_is_not_resumed_as_a_line_run(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["dream", "--rounds", "1", "--per-round", "3", "--tables", "1", "--no-view",
                                    "-o", str(out)]).exit_code == 0
    assert not (out / "view.html").exists()
    r = CliRunner().invoke(app, ["run", "--resume", str(out)])
    assert r.exit_code == 2 and f"continue it with `tabline dream --resume {out}`" in " ".join(r.output.split())


def test_an_existing_run_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(app, ["dream", "--rounds", "1", "--per-round", "3", "--tables", "1",
                                    "-o", str(out)]).exit_code == 0
    r = CliRunner().invoke(app, ["dream", "-o", str(out)])
    assert r.exit_code == 2 and f"continue it with `tabline dream --resume {out}`" in " ".join(r.output.split())
