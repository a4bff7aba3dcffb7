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


def test_run_reads_the_table_with_the_delimiter_given(diamonds, tmp_path):
    # Setup: semicolon-separated, and the last column's name and values hold a comma, so ',' and ';' both split
    # every line consistently and the sniffer, in that tie, takes the comma
    table = diamonds.iloc[:300][["carat", "cut", "price"]]
    data = tmp_path / "d.csv"
    lines = ["carat;cut;price;note, remark"] + [f"{r.carat};{r.cut};{r.price};a, b" for r in table.itertuples()]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    team = tmp_path / "team.yaml"
    team.write_text("batch_rows: 100\nworkers: {'*': {kind: sampler}}\njudges: [{kind: rules}]\n")
    # Run
    r = CliRunner().invoke(app, ["run", str(data), "-n", "50", "-o", str(tmp_path / "run"), "--team", str(team),
                                 "-q", "--sep", ";"])
    # Assert: four columns, the note kept whole (without --sep the reader says it split at commas)
    assert r.exit_code == 0, r.output
    header = (tmp_path / "run" / "data.csv").read_text().splitlines()[0]
    assert header == 'carat,cut,price,"note, remark"'
    guessed = CliRunner().invoke(app, ["schema", str(data)])
    assert "every line also splits into 4 fields at semicolons" in guessed.output
    assert "--sep ';'" in guessed.output
