"""Agents of one's own (kind: python) on the line, beside tabline's own, on the shipped table and a real run
folder: their columns, rejections and conditions hold on every row; each fault of user code ends as
docs/custom-agents.md says; a crash is fixed and resumed; kill -9 then --resume imports the refs again."""
from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import custom_agents_example as example
from killing import env, kill_and_resume, run_args, tabline, timed_run
from tabline.agents.roles import AgentError
from tabline.agents.team import Team
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import read_trace

HERE = Path(__file__).resolve().parent
M = "custom_agents_example"


def team(**data) -> Team:
    return Team.from_dict({"batch_rows": 200, "judges": [{"kind": "rules", "threshold": 1.0}], **data},
                          code_path=[str(HERE)])


def carat_of(frame: pd.DataFrame) -> list[float]:
    return [round(0.0061 * x * y * z, 2) for x, y, z in zip(frame.x, frame.y, frame.z)]


@pytest.fixture(scope="module")
def mixed(tiny_lm, diamonds, tmp_path_factory):
    """The LM beside a derived-column worker, a runnable station, a domain-rule judge and a QC stage."""
    t = team(workers={"z": {"kind": "python", "ref": f"{M}:z_from_depth"},
                      "carat": {"kind": "python", "ref": f"{M}:carat_from_volume"}},
             judges=[{"kind": "rules", "threshold": 1.0},
                     {"kind": "python", "ref": f"{M}:round_stone", "settings": {"tolerance": 0.02}}],
             qc={"stages": [{"ref": f"{M}:sensible_table", "settings": {"low": 54.0, "high": 60.0}}]})
    line = AssemblyLine(t, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False)
    return line, line.run(300, tmp_path_factory.mktemp("mixed") / "run", progress=False)


def test_custom_workers_columns_equal_their_functions_on_every_accepted_row(mixed):
    line, result = mixed
    data = result.data
    # Assert: exactly N rows; z is the function of each row's depth, x, y; carat is the runnable's answer
    assert len(data) == 300 and result.stop_reason == "target"
    np.testing.assert_allclose(data.z, example.z_from_depth(data), rtol=0, atol=1e-9)
    np.testing.assert_allclose(data.carat, carat_of(data), rtol=0, atol=1e-9)
    comps = {c.name: c for c in line.plan.components}
    lm = next(c.name for c in line.plan.components if c.worker == "lm")
    assert comps["z_from_depth"].worker == comps["carat_from_volume"].worker == "python"
    assert comps["z_from_depth"].depends_on == [lm]
    assert comps["carat_from_volume"].depends_on == sorted([lm, "z_from_depth"])
    assert not {"z", "carat"} & set(comps[lm].columns)


def test_the_custom_judges_low_scored_rows_are_rejected_with_its_name(mixed):
    _, result = mixed
    rejected = result.rejected
    judged = rejected[rejected.reason.str.contains("judge 'round_stone'", regex=False)]
    # Assert: it rejected rows, exactly those it scored under its threshold, and no accepted row scores low
    assert len(judged) > 0 and (judged.stage == "objective").all()
    assert judged.reason.str.match(r"objective: judge 'round_stone' scored 0\.\d\d < 0\.5$").all()
    assert (example.round_stone(judged, tolerance=0.02) < 0.5).all()
    assert (example.round_stone(result.data, tolerance=0.02) >= 0.5).all()


def test_the_custom_qc_stage_rejects_rows_under_its_name(mixed):
    _, result = mixed
    staged = result.rejected[result.rejected.stage == "table_top"]
    assert len(staged) > 0 and staged.reason.str.startswith("table_top: table ").all()
    assert (~staged.table.between(54, 60)).all() and result.data.table.between(54, 60).all()
    assert result.report["rejections"]["table_top"] == {"table_top": len(staged)}


def test_custom_agents_appear_in_the_trace_and_the_graph_under_their_names(mixed):
    line, result = mixed
    lm = next(c.name for c in line.plan.components if c.worker == "lm")
    events = read_trace(result.trace_path)
    batches = result.report["batches"]
    for node, agent in [("station_z_from_depth", "z_from_depth"), ("station_carat_from_volume", "carat_from_volume"),
                        ("qc_table_top", "table_top")]:
        ran = events[events.node == node]
        assert len(ran) == batches and set(ran.agent) == {agent}, node
    judged = events[events.node == "judges"].detail
    assert all("round_stone" in d["judges"] and d["mean_scores"]["round_stone"] is not None for d in judged)
    graph = (result.run_dir / "graph.mmd").read_text()
    for edge in (f"station_{lm} --> station_z_from_depth", "station_z_from_depth --> station_carat_from_volume",
                 "sanity --> qc_table_top", "qc_table_top --> objective"):
        assert re.search(r"\s*-->\s*".join(map(re.escape, edge.split(" --> "))), graph), edge


def test_custom_agents_appear_on_the_run_page_under_their_names(mixed):
    from tabline.view import render_view

    _, result = mixed
    html = render_view(result.run_dir)
    line = re.search(r'<section id="line">.*?</section>', html, re.S).group(0)
    qc = re.search(r'<section id="qc">.*?</section>', html, re.S).group(0)
    # Assert: their stations in the line's table, their rejections by stage and reason in the QC funnel
    for node, agent in [("station_z_from_depth", "z_from_depth"), ("station_carat_from_volume", "carat_from_volume"),
                        ("qc_table_top", "table_top")]:
        assert f"<td>{node}</td><td>{agent}</td>" in line, node
    staged = int((result.rejected.stage == "table_top").sum())
    assert f"<td>table_top</td><td>table_top</td><td>{staged:,}</td>" in qc
    assert "judge 'round_stone' scored" in qc  # the reason, in the embedded rejected rows


def test_a_custom_evolvers_conditions_are_honoured(tiny_lm, diamonds, tmp_path):
    t = team(evolvers=[{"kind": "python", "ref": f"{M}:only", "settings": {"column": "cut", "value": "Fair"}}])
    result = AssemblyLine(t, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(200, tmp_path / "r",
                                                                                      progress=False)
    assert (diamonds.iloc[:1500].cut == "Fair").mean() < 0.1  # the class is rare in the real rows
    assert len(result.data) == 200 and (result.data.cut == "Fair").all()
    assert result.report["conditions_from"] == {"only": result.report["batches"]}


@pytest.fixture(autouse=True)
def _no_fault():
    example.FAULT.update(kind=None, after=0, calls=0)
    yield
    example.FAULT.update(kind=None, after=0, calls=0)


FAULTY = {
    "worker": {"workers": {"z": {"kind": "python", "ref": f"{M}:faulty_z"}}},
    "judge": {"judges": [{"kind": "rules", "threshold": 1.0}, {"kind": "python", "ref": f"{M}:faulty_judge"}]},
    "evolver": {"evolvers": [{"kind": "python", "ref": f"{M}:faulty_evolver"}]},
    "stage": {"qc": {"stages": [{"ref": f"{M}:faulty_stage"}]}},
}


@pytest.mark.parametrize("role, kind, message", [
    pytest.param("worker", "raise", rf"worker 'faulty_z' \({M}:faulty_z\) raised ZeroDivisionError: a bug in the "
                 rf"user's code \({M}.py:\d+ in faulty_z\)", id="worker-raises"),
    pytest.param("worker", "short", r"worker 'faulty_z' \(.*\) returned \d+ rows for a batch of \d+", id="worker-wrong-length"),
    pytest.param("worker", "columns", r"worker 'faulty_z' \(.*\) returned columns \['Z'\] but fills \['z'\]",
                 id="worker-wrong-columns"),
    pytest.param("judge", "text", r"judge 'faulty_judge' \(.*\) returned values that are not numbers \(first: 'high'\)",
                 id="judge-not-numbers"),
    pytest.param("judge", "short", r"judge 'faulty_judge' \(.*\) returned \d+ rows for a batch of \d+", id="judge-wrong-length"),
    pytest.param("evolver", "unknown_column", r"evolver 'faulty_evolver' \(.*\) proposed column\(s\) \['colour'\]",
                 id="evolver-unknown-column"),
    pytest.param("evolver", "bad_values", r"proposed values the schema rejects: column 'cut' = 'Perfect'",
                 id="evolver-values-the-schema-rejects"),
    pytest.param("stage", "short", r"QC stage 'faulty_stage' \(.*\) returned \d+ rows for a batch of \d+",
                 id="stage-wrong-length"),
])
def test_a_crash_or_a_wrong_shape_stops_the_run_naming_the_agent(tiny_lm, diamonds, tmp_path, role, kind, message):
    # Setup: the agent's bug shows from its second call, after a batch went through
    example.FAULT.update(kind=kind, after=1)
    line = AssemblyLine(team(**FAULTY[role]), lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False)
    # Run
    with pytest.raises(AgentError, match=message) as exc:
        line.run(300, tmp_path / "run", progress=False)
    # Assert: one message with the way on; the run stands at its last checkpoint; the trace names the agent
    assert f"`tabline run --resume {tmp_path / 'run'}` continues the run" in str(exc.value)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
    assert (tmp_path / "run" / "batches" / "accepted-000001.parquet").exists()
    errors = read_trace(tmp_path / "run" / "trace.jsonl").dropna(subset=["error"])
    assert len(errors) == 1 and errors.agent.iloc[0] == exc.value.agent


def test_a_run_stopped_by_a_crash_resumes_after_the_fix_with_the_uninterrupted_rows(tiny_lm, diamonds, tmp_path):
    t = team(**FAULTY["worker"])
    whole = AssemblyLine(t, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(300, tmp_path / "whole",
                                                                                     progress=False)
    example.FAULT.update(kind="raise", after=1, calls=0)
    with pytest.raises(AgentError):
        AssemblyLine(t, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(300, tmp_path / "run", progress=False)
    # Run: the user fixes the bug, then resumes
    example.FAULT.update(kind=None)
    result = AssemblyLine.resume(tmp_path / "run", progress=False)
    # Assert
    assert len(result.data) == 300
    pd.testing.assert_frame_equal(result.data, whole.data)


@pytest.mark.parametrize("role, kind, stage, reason", [
    pytest.param("worker", "bad_values", "sanity", "schema: column 'z' = -1.0 is not allowed", id="worker-values-the-schema-rejects"),
    pytest.param("judge", "nan", "objective", "objective: judge 'faulty_judge' gave no score (NaN)", id="judge-nan-scores"),
    pytest.param("judge", "outside", "objective", "objective: judge 'faulty_judge' scored 1.7, outside [0, 1]",
                 id="judge-scores-outside-0-1"),
])
def test_bad_values_reject_the_affected_rows_with_stage_and_reason(tiny_lm, diamonds, tmp_path, role, kind, stage,
                                                                   reason):
    # Setup: the agent is wrong for the stones of x >= 6 mm only
    example.FAULT.update(kind=kind)
    # Run
    result = AssemblyLine(team(**FAULTY[role]), lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(
        200, tmp_path / "run", progress=False)
    # Assert: the run ends with N rows; every big stone that reached the stage was rejected there, with that
    # reason (sanity may have rejected some before: a duplicate, a copy); no other row was
    assert len(result.data) == 200 and (result.data.x < 6).all()
    big = result.rejected[result.rejected.x >= 6]
    reached = big if stage == "sanity" else big[big.stage != "sanity"]
    assert len(reached) > 0 and (reached.stage == stage).all() and (reached.reason == reason).all()
    assert not (result.rejected.reason == reason).loc[result.rejected.x < 6].any()


BUGGY = '''\
from langchain_core.runnables import RunnableLambda

from tabline.agents.custom import judge, worker

CALLS = {"n": 0}


@worker(columns=["z"], depends_on=["x", "y", "depth"])
def z_from_depth(batch):
    CALLS["n"] += 1
    if CALLS["n"] > 1:
        return batch.depth / 0 * {}  # the bug
    return (batch.depth / 100 * (batch.x + batch.y) / 2).round(2)


@judge(threshold=0.5)
def round_stone(batch, tolerance=0.05):
    return (1 - (batch.x - batch.y).abs() / batch[["x", "y"]].max(axis=1) / tolerance).clip(0, 1)


carat_from_volume = worker(RunnableLambda(lambda row: round(0.0061 * row["x"] * row["y"] * row["z"], 2)),
                           columns=["carat"], depends_on=["x", "y", "z"])
'''
FIXED = BUGGY.replace('''    CALLS["n"] += 1
    if CALLS["n"] > 1:
        return batch.depth / 0 * {}  # the bug
''', "")

CLI_TEAM = """\
lm: {max_epochs: 2, n_layer: 1, n_embd: 32, batch_size: 32}
batch_rows: 100
workers:
  z: {kind: python, ref: "my_agents:z_from_depth"}
  carat: {kind: python, ref: "my_agents:carat_from_volume"}
judges: [{kind: rules, threshold: 1.0}, {kind: python, ref: "my_agents:round_stone", settings: {tolerance: 0.05}}]
"""


def _cli_setup(diamonds, tmp_path, module_text: str) -> tuple[Path, Path, Path]:
    """A user's folder (their module beside team.yaml) and a data file elsewhere."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "my_agents.py").write_text(module_text)
    (code / "team.yaml").write_text(CLI_TEAM)
    data = tmp_path / "data.csv"
    diamonds.head(400).to_csv(data, index=False)
    return code, code / "team.yaml", data


def test_cli_a_crash_is_one_line_and_the_run_resumes_once_the_code_is_fixed(diamonds, tmp_path):
    # Setup: the user's module beside team.yaml; its worker crashes from the second batch on
    code, team_file, data = _cli_setup(diamonds, tmp_path, BUGGY)
    run_dir, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Run: from a folder that is not the module's
    crash = subprocess.run(run_args(data, team_file, run_dir, 150), env=env(), cwd=elsewhere, capture_output=True,
                           text=True)
    # Assert: one line naming the agent, what it raised and where, and how to go on
    lines = [line for line in crash.stderr.splitlines() if line.strip()]
    assert crash.returncode == 2 and len(lines) == 1 and "Traceback" not in crash.stderr, crash.stderr
    assert re.search(r"error: worker 'z_from_depth' \(my_agents:z_from_depth\) raised TypeError: .* "
                     r"\(my_agents.py:\d+ in z_from_depth\)", lines[0]), lines[0]
    assert f"tabline run --resume {run_dir}" in lines[0]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "running" and str(code) in manifest["code"]["path"]
    # Run: the module is moved away — resume cannot import it and says where it looked
    (tmp_path / "away").mkdir()
    shutil.move(code / "my_agents.py", tmp_path / "away" / "my_agents.py")
    lost = subprocess.run(tabline("run", "--resume", str(run_dir), "-q"), env=env(), cwd=tmp_path / "elsewhere",
                          capture_output=True, text=True)
    assert lost.returncode == 2 and "Traceback" not in lost.stderr, lost.stderr
    assert "workers.z.ref: no module named 'my_agents'" in lost.stderr and str(code) in lost.stderr
    # Run: the fixed module is put back; resume from yet another folder
    (code / "my_agents.py").write_text(FIXED)
    done = subprocess.run(tabline("run", "--resume", str(run_dir), "-q"), env=env(), cwd=tmp_path,
                          capture_output=True, text=True)
    # Assert: exactly N rows, made by the user's functions, and none of their code in the run folder
    assert done.returncode == 0, done.stderr
    data_out = pd.read_csv(run_dir / "data.csv")
    assert len(data_out) == 150 and not data_out.duplicated().any()
    np.testing.assert_allclose(data_out.z, (data_out.depth / 100 * (data_out.x + data_out.y) / 2).round(2), atol=1e-9)
    np.testing.assert_allclose(data_out.carat, carat_of(data_out), atol=1e-9)
    assert not [p for p in run_dir.rglob("*") if p.suffix in (".py", ".pyc", ".pkl")]
    assert "ref: my_agents:z_from_depth" in (run_dir / "team.yaml").read_text()


def test_kill_9_then_resume_imports_the_refs_again_and_gives_the_uninterrupted_rows(diamonds, tmp_path):
    # Setup: the example module beside the team file; an uninterrupted run as the reference
    code, team_file, data = _cli_setup(diamonds, tmp_path, (HERE / f"{M}.py").read_text())
    n = 200
    seconds = timed_run(data, team_file, tmp_path / "whole", n)
    # Run: SIGKILL at random moments (start-up, fit, batches), resume each time, then to the end
    log = kill_and_resume(data, team_file, tmp_path / "killed", n, attempts=3, horizon_s=seconds,
                          rng=random.Random(17))
    print(f"kills (s, phase): {log.kills}")
    # Assert: the kills happened; the resumed run equals the uninterrupted one, row for row
    assert len(log.kills) >= 1
    got = pd.read_csv(tmp_path / "killed" / "data.csv")
    assert len(got) == n and not got.duplicated().any()
    pd.testing.assert_frame_equal(got, pd.read_csv(tmp_path / "whole" / "data.csv"))
    np.testing.assert_allclose(got.z, example.z_from_depth(got), atol=1e-9)
    np.testing.assert_allclose(got.carat, carat_of(got), atol=1e-9)
    assert not [p for p in (tmp_path / "killed").rglob("*") if p.suffix in (".py", ".pyc", ".pkl")]
