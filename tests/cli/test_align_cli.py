"""`tabline align` end to end: a tiny model aligned for 2 rounds through the CLI, and user mistakes."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from tabline.cli import app
from tabline.training import TabularLM, TabularLMConfig


@pytest.fixture(scope="module")
def fitted(diamonds, tmp_path_factory):
    root = tmp_path_factory.mktemp("align")
    data = root / "train.csv"
    diamonds.iloc[:300].to_csv(data, index=False)
    TabularLM(TabularLMConfig(n_layer=1, n_embd=32, max_epochs=2)).fit(diamonds.iloc[:300], progress=False).save(root / "m")
    return root, data


@pytest.mark.parametrize("loss, reward", [pytest.param("graa", "classifier", id="graa-classifier"),
                                          pytest.param("dpo", "dcr", id="dpo-dcr")])
def test_two_round_align_via_the_cli(fitted, loss, reward):
    # Setup
    root, data = fitted
    out = root / f"aligned-{loss}"
    # Run
    r = CliRunner().invoke(app, ["align", str(root / "m"), "--data", str(data), "--rounds", "2", "--reward", reward,
                                 "--loss", loss, "-o", str(out), "--samples", "64", "--lr", "1e-3", "-q"])
    # Assert
    assert r.exit_code == 0, r.output
    assert "round 1:" in r.output and "round 2:" in r.output
    report = json.loads((out / "align.json").read_text())
    assert [h["round"] for h in report["history"]] == [1, 2]
    assert all(h["steps"] == 8 and h["rows"] == 64 for h in report["history"])  # (64 / 2) / B=4
    assert report["config"]["loss"] == loss and report["config"]["reward"] == reward
    events = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert [e["node"] for e in events] == ["generate", "score", "align"] * 2
    assert "align -.-> generate" in (out / "graph.mmd").read_text()
    aligned, original = TabularLM.load(out), TabularLM.load(root / "m")  # a loadable model that moved
    assert any(not torch.equal(a, b) for a, b in zip(aligned.model.parameters(), original.model.parameters()))
    assert len(aligned.sample(5, seed=0)) == 5


@pytest.mark.parametrize("args, message", [
    pytest.param(["--reward", "clasifier"], "unknown reward 'clasifier'; choose one of: classifier, dcr, random", id="reward"),
    pytest.param(["--loss", "ppo"], "unknown loss 'ppo'; choose one of: graa, graa-logsig, dpo, kto, npo, sft", id="loss"),
    pytest.param(["--rounds", "0"], "rounds: Input should be greater than or equal to 1", id="rounds"),
])
def test_bad_options_are_clear_errors_and_write_nothing(fitted, args, message):
    root, data = fitted
    r = CliRunner().invoke(app, ["align", str(root / "m"), "--data", str(data), "-o", str(root / "bad"), *args])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (root / "bad").exists()


def test_missing_model_dir_and_wrong_table_are_clear_errors(fitted, tmp_path):
    root, data = fitted
    r = CliRunner().invoke(app, ["align", str(tmp_path / "nope"), "--data", str(data), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "model directory not found" in r.output
    other = tmp_path / "other.csv"
    other.write_text("x,y\n1,2\n3,4\n")
    r = CliRunner().invoke(app, ["align", str(root / "m"), "--data", str(other), "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "lacks the model's column(s)" in r.output


def test_run_with_align_every_aligns_inside_the_line(diamonds, tmp_path):
    from tabline.run_folder import read_trace

    data = tmp_path / "d.csv"
    diamonds.iloc[:500].to_csv(data, index=False)
    team = tmp_path / "team.yaml"
    team.write_text("batch_rows: 100\nlm: {n_layer: 1, n_embd: 32, max_epochs: 1}\njudges: [{kind: rules}]\n")
    r = CliRunner().invoke(app, ["run", str(data), "-n", "250", "-o", str(tmp_path / "run"), "--team", str(team),
                                 "--align-every", "1", "-q"])
    assert r.exit_code == 0, r.output
    events = read_trace(tmp_path / "run" / "trace.jsonl")
    assert (events.node == "align").sum() == (events.node == "bandit").sum() - 1  # none after the last batch
    r = CliRunner().invoke(app, ["run", str(data), "-n", "10", "--align-every", "0", "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "align_every must be a positive whole number" in r.output
