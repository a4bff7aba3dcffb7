"""The assembly line end to end on a tiny table: outputs, rejected rows, trace, determinism, resume."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from tabline.agents.team import Team
from tabline.line.assembly import AssemblyLine
from tabline.qc.sanity import row_keys
from tabline.run_folder import read_trace

TEAM = {"batch_rows": 200, "judges": [{"kind": "classifier", "calibration_rows": 300}, {"kind": "rules", "threshold": 1.0}]}


@pytest.fixture(scope="module")
def line(tiny_lm, diamonds):
    return AssemblyLine(Team.from_dict({**TEAM, "target": "cut"}), lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False)


def test_full_run_accepts_exactly_n_and_keeps_every_rejected_row(line, diamonds, tmp_path):
    result = line.run(700, tmp_path / "run", progress=False)
    r = result.report
    assert len(result.data) == 700 and r["stop_reason"] == "target"
    assert list(result.data.columns) == list(diamonds.columns)
    # nothing vanishes: every generated row is either accepted or in rejected.csv with a stage and reason
    assert r["generated"] == len(result.data) + len(result.rejected) == r["accepted"] + r["rejected_rows"]
    assert result.rejected["reason"].str.len().gt(0).all()
    assert set(result.rejected["stage"]) <= {"sanity", "objective", "diversity", "surplus"}
    assert sum(sum(v.values()) for v in r["rejections"].values()) == len(result.rejected)
    # QC guarantees: no duplicates, no copies of real rows, every row schema-valid
    keys = row_keys(result.data, line.agents.schema)
    assert not keys.duplicated().any()
    assert not keys.isin(set(row_keys(diamonds.iloc[:1500], line.agents.schema))).any()
    assert line.agents.schema.valid_rows(result.data).all()
    for name in ("data.csv", "rejected.csv", "report.json", "graph.mmd", "plan.json", "team.yaml", "checkpoints.sqlite"):
        assert (result.run_dir / name).exists(), name
    assert "station_lm" in (result.run_dir / "graph.mmd").read_text()


def test_trace_has_one_event_per_node_per_batch(line, tmp_path):
    result = line.run(300, tmp_path / "run", progress=False)
    events = read_trace(result.trace_path)
    batches = result.report["batches"]
    counts = events.node.value_counts().to_dict()
    for node in ("coordinator", "station_lm", "judges", "sanity", "objective", "diversity", "bandit"):
        assert counts[node] == batches, node
    assert {"run_id", "node", "agent", "arm", "batch_id", "rows_in", "rows_out", "rejected", "seconds"} <= set(events.columns)
    bandit = events[events.node == "bandit"]
    assert bandit.rows_out.sum() == 300


def test_same_seed_same_rows(line, tmp_path):
    a = line.run(250, tmp_path / "a", progress=False).data
    b = line.run(250, tmp_path / "b", progress=False).data
    pd.testing.assert_frame_equal(a, b)


def test_budget_stops_the_run_and_says_so(tiny_lm, diamonds, tmp_path):
    team = Team.from_dict({**TEAM, "max_batches": 2, "judges": [{"kind": "rules"}]})
    result = AssemblyLine(team, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(100_000, tmp_path / "r", progress=False)
    assert result.stop_reason == "batches" and result.report["batches"] == 2 and len(result.data) <= 400


def test_rebalancing_reaches_the_requested_share(tiny_lm, diamonds, tmp_path):
    team = Team.from_dict({**TEAM, "target": "cut", "judges": [{"kind": "rules"}],
                           "evolvers": [{"kind": "rebalance", "column": "cut", "value": "Good", "ratio": 0.4}]})
    result = AssemblyLine(team, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(1000, tmp_path / "r", progress=False)
    share = (result.data["cut"] == "Good").mean()
    real = (diamonds.iloc[:1500]["cut"] == "Good").mean()
    assert real < 0.15 and 0.33 <= share <= 0.5
    assert result.report["conditions_from"].get("rebalance", 0) >= 1


def test_existing_run_folder_is_refused(line, tmp_path):
    line.run(50, tmp_path / "r", progress=False)
    with pytest.raises(Exception, match="already holds a run"):
        line.run(50, tmp_path / "r", progress=False)


SCRIPT = textwrap.dedent("""
    import sys
    from tabline.agents.team import Team
    from tabline.demo import load_demo_table
    from tabline.line.assembly import AssemblyLine
    from tabline.training import TabularLM
    lm = TabularLM.load(sys.argv[1])
    team = Team.from_dict({"batch_rows": 60, "judges": [{"kind": "classifier", "calibration_rows": 300}]})
    line = AssemblyLine(team, lm=lm).fit(load_demo_table().iloc[:1500], progress=False)
    line.run(int(sys.argv[3]), sys.argv[2], progress=False)
""")


def test_sigkill_then_resume_loses_and_duplicates_nothing(tiny_lm, tmp_path):
    model, n = tmp_path / "model", 1200
    tiny_lm.save(model)
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    root = str(__import__("pathlib").Path(__file__).resolve().parents[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    # Setup: an uninterrupted run as the reference
    subprocess.run([sys.executable, str(script), str(model), str(tmp_path / "whole"), str(n)], check=True, env=env)
    reference = AssemblyLine.resume(tmp_path / "whole", progress=False).data
    # Run: start the same run, kill it with SIGKILL mid-way, then resume it
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(model), str(run_dir), str(n)], env=env)
    deadline = time.time() + 120
    while time.time() < deadline:
        trace = run_dir / "trace.jsonl"
        if trace.exists() and trace.read_text().count('"node": "bandit"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"  # it really was cut short
    before = sorted(p.name for p in (run_dir / "batches").glob("accepted-*.parquet"))
    assert before
    result = AssemblyLine.resume(run_dir, progress=False)
    # Assert: exactly n rows, no duplicates, identical to the uninterrupted run (same seeds, same batches)
    assert len(result.data) == n and result.stop_reason == "target"
    assert not row_keys(result.data, tiny_lm.schema).duplicated().any()
    pd.testing.assert_frame_equal(result.data, reference)


def test_a_line_without_an_lm_resumes_too(diamonds, tmp_path):
    # Setup: every column resampled from real rows, rules only: no TabularLM anywhere
    team = Team.from_dict({"batch_rows": 100, "workers": {"*": {"kind": "sampler"}}, "judges": [{"kind": "rules"}],
                           "coordinator": {"detect_expressions": False}})
    first = AssemblyLine(team).run(150, tmp_path / "run", data=diamonds.head(300), progress=False)
    assert not (tmp_path / "run" / "model").exists()
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**manifest, "status": "running"}))  # killed at the end
    # Run / Assert
    again = AssemblyLine.resume(tmp_path / "run", progress=False)
    pd.testing.assert_frame_equal(again.data, first.data)
