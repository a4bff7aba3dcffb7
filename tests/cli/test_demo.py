"""The main job, end to end through the CLI, on a short training budget."""
import json

import pandas as pd
from typer.testing import CliRunner

from tabline.cli import app


def test_demo_writes_a_complete_run_folder(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["demo", "-o", str(out), "--time-budget", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert {"train.csv", "holdout.csv", "synthetic.csv", "model", "line", "report.json", "summary.txt"} <= {
        p.name for p in out.iterdir()}
    synthetic, holdout = pd.read_csv(out / "synthetic.csv"), pd.read_csv(out / "holdout.csv")
    assert len(synthetic) == len(holdout) == 1000 and list(synthetic.columns) == list(holdout.columns)
    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "cut" and report["rows"]["train"] == 3000
    assert "quality" in result.output and "done" in result.output and "yield" in result.output
    line_report = json.loads((out / "line" / "report.json").read_text())
    assert line_report["accepted"] == 1000 and line_report["stop_reason"] == "target"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run")]  # no temp dirs left
    assert (out / "line" / "view.html").exists() and "page →" in result.output
