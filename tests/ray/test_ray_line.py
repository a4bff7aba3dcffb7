"""The line on Ray: the rows of a local run with the same seed; a replica killed mid-run is restarted and
its call re-run (exactly N rows, none twice); a Ray run whose driver is killed -9 resumes."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from killing import env, tabline

pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')
from tabline.agents.team import Team  # noqa: E402
from tabline.cluster.connect import RayConfig
from tabline.cluster.stations import NAMESPACE, replica_name
from tabline.line.assembly import AssemblyLine

# threads: 1 — the fit is the same in this process and in the CLI's, so every run here has the same model
TEAM_YAML = """\
lm: {max_epochs: 5, n_layer: 1, n_embd: 32, batch_size: 32, threads: 1}
batch_rows: 100
judges: [{kind: classifier, calibration_rows: 200}, {kind: rules, threshold: 1.0}]
"""
N = 600


@dataclass
class Reference:
    data: Path
    team: Path
    run_dir: Path


@pytest.fixture(scope="module")
def reference(diamonds, tmp_path_factory) -> Reference:
    """A local run (no Ray) of the small line: the rows every Ray run must give."""
    root = tmp_path_factory.mktemp("line")
    data, team = root / "data.csv", root / "team.yaml"
    diamonds.head(400).to_csv(data, index=False)
    team.write_text(TEAM_YAML)
    AssemblyLine(Team.load(team)).run(N, root / "local", data=pd.read_csv(data), progress=False)
    return Reference(data, team, root / "local")


def _same_rows(run_dir: Path, ref: Reference) -> None:
    got, want = pd.read_csv(run_dir / "data.csv"), pd.read_csv(ref.run_dir / "data.csv")
    assert len(got) == N and not got.duplicated().any()
    pd.testing.assert_frame_equal(got, want)
    assert (run_dir / "rejected.csv").read_bytes() == (ref.run_dir / "rejected.csv").read_bytes()


def test_a_line_on_ray_gives_the_rows_of_the_local_run(ray_cluster, reference, tmp_path):
    # Run: the same team, data and seed, with the heavy stations on two replicas
    line = AssemblyLine(Team.load(reference.team), executor=RayConfig(address=ray_cluster, actors=2))
    result = line.run(N, tmp_path / "ray", data=pd.read_csv(reference.data), progress=False)
    # Assert: the same accepted and rejected rows; the LM worker and the classifier judge ran remotely, and
    # batches were made ahead while QC ran on the driver
    _same_rows(result.run_dir, reference)
    executor = json.loads((result.run_dir / "run.json").read_text())["executor"]
    assert executor["replicas"] == 2 and executor["remote"] == ["judge:0", "worker:lm"]
    assert executor["calls"]["fills_taken"] >= result.report["batches"] - 2 > 0
    assert executor["calls"]["judges"] == result.report["batches"]


def test_a_replica_killed_mid_run_is_restarted_and_nothing_is_lost(ray_cluster, reference, tmp_path):
    import ray

    run_dir = tmp_path / "killed"
    pids: dict[str, int] = {}

    def kill_replica_once_batches_flow() -> None:
        deadline = time.time() + 300
        while time.time() < deadline and not (run_dir / "batches" / "accepted-000001.parquet").exists():
            time.sleep(0.01)
        run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
        actor = ray.get_actor(replica_name(run_id, 0), namespace=NAMESPACE)
        pids["before"] = ray.get(actor.pid.remote())
        ray.kill(actor, no_restart=False)  # as a crash: Ray restarts it and re-runs what it was doing
        # the kill lands asynchronously: a call already delivered may still answer from the old process
        while time.time() < deadline:
            pids["after"] = ray.get(actor.pid.remote())
            if pids["after"] != pids["before"]:
                break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_replica_once_batches_flow)
    killer.start()
    # Run
    line = AssemblyLine(Team.load(reference.team), executor=RayConfig(address=ray_cluster, actors=2))
    result = line.run(N, run_dir, data=pd.read_csv(reference.data), progress=False)
    killer.join()
    # Assert: the replica really died and came back as a new process; the rows are exactly the local ones
    assert pids["before"] != pids["after"]
    assert result.report["batches"] > 2
    _same_rows(run_dir, reference)


def test_a_ray_run_killed_9_resumes_with_the_same_rows(ray_cluster, reference, tmp_path):
    run_dir = tmp_path / "cli"
    args = tabline("run", str(reference.data), "-n", str(N), "-o", str(run_dir), "--team", str(reference.team),
                   "--ray", ray_cluster, "--actors", "2", "-q", "--no-view")
    proc = subprocess.Popen(args, env=env(), stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (run_dir / "batches" / "accepted-000002.parquet").exists():
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    # Run: resume, on Ray again
    resumed = subprocess.run(tabline("run", "--resume", str(run_dir), "--ray", ray_cluster, "-q", "--no-view"),
                             env=env(), capture_output=True, text=True, timeout=600)
    # Assert
    assert resumed.returncode == 0, resumed.stderr
    _same_rows(run_dir, reference)
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_align_every_with_ray_is_refused_clearly():
    with pytest.raises(Exception, match="align_every changes the TabularLM"):
        AssemblyLine(Team(), align_every=2, executor="ray")


def test_llm_workers_on_ray_share_one_budget_and_give_the_local_rows(ray_cluster, diamonds, tmp_path, monkeypatch):
    from llm_roles import TableBrain
    from llm_server import ScriptedOpenAIServer

    # Setup: an LLM writes a note per row (a function of the row), through a scripted server on 127.0.0.1
    monkeypatch.setenv("TABLINE_LLM_API_KEY", "sk-test")
    monkeypatch.setenv("TABLINE_CACHE_DIR", str(tmp_path / "cache"))
    table = diamonds.head(300)[["carat", "cut", "color", "price"]].reset_index(drop=True)
    table = table.assign(notes=[f"{c} cut stone, lot {i}" for i, c in enumerate(table.cut)])
    brain = TableBrain(values=lambda col, row: f"{row['cut']} cut, {row['carat']} carat", score=4)
    with ScriptedOpenAIServer(brain) as server:
        team = {"batch_rows": 80, "lm": {"max_epochs": 1, "n_layer": 1, "n_embd": 32, "threads": 1},
                "workers": {"notes": {"kind": "llm", "model": f"openai-compatible:{server.url}:m", "rows_per_call": 20}},
                "judges": [{"kind": "rules", "threshold": 1.0}], "llm": {"concurrency": 2, "cache": False}}
        local = AssemblyLine(Team.from_dict(team)).run(100, tmp_path / "local", data=table, progress=False)
        served_locally = len(server.requests)
        # Run
        on_ray = AssemblyLine(Team.from_dict(team), executor=RayConfig(address=ray_cluster, actors=2)).run(
            100, tmp_path / "ray", data=table, progress=False)
        served_on_ray = len(server.requests) - served_locally
    # Assert: the same rows; every request of the replicas went through the one budget, 2 at most at once
    pd.testing.assert_frame_equal(on_ray.data, local.data)
    executor = json.loads((on_ray.run_dir / "run.json").read_text())["executor"]
    assert executor["remote"] == ["worker:lm", "worker:worker_notes"]
    assert executor["llm_budget"]["granted"] == served_on_ray > 0
    assert 1 <= executor["llm_budget"]["peak"] <= 2
