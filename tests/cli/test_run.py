"""`tabline run` and `tabline trace summary` through the CLI: a tiny run, and user mistakes."""
from typer.testing import CliRunner

from tabline.cli import app


def test_run_then_trace_summary(diamonds, tmp_path):
    data = tmp_path / "d.csv"
    diamonds.iloc[:600].to_csv(data, index=False)
    team = tmp_path / "team.yaml"
    team.write_text("batch_rows: 100\nlm: {n_layer: 1, n_embd: 32, max_epochs: 1}\njudges: [{kind: rules}]\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["run", str(data), "-n", "150", "-o", str(out), "--team", str(team), "-q",
                                 "--target", "cut", "--rebalance", "cut=Fair:0.3"])
    assert r.exit_code == 0, r.output
    assert "accepted 150 of 150" in r.output and (out / "data.csv").exists()
    s = CliRunner().invoke(app, ["trace", "summary", str(out)])
    assert s.exit_code == 0, s.output
    assert "station_lm" in s.output and "bandit" in s.output and "arms" in s.output


def test_team_typo_and_bad_options_are_clear_errors(diamonds, tmp_path):
    data = tmp_path / "d.csv"
    diamonds.iloc[:100].to_csv(data, index=False)
    team = tmp_path / "team.yaml"
    team.write_text("bandit:\n  polcy: thompson\n")
    r = CliRunner().invoke(app, ["run", str(data), "-n", "10", "--team", str(team)])
    assert r.exit_code == 2 and "bandit.polcy: unknown field" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["run", str(data), "-n", "10", "--rebalance", "cut=2"])
    assert r.exit_code == 2 and "--rebalance 'cut=2'" in r.output
    r = CliRunner().invoke(app, ["run", "--resume", str(tmp_path / "nowhere")])
    assert r.exit_code == 2 and "not a run folder" in r.output
