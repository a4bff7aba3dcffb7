"""Kill `tabline run` with SIGKILL at random moments, resume it, and compare with an uninterrupted run.

Shared by the test (a few kills) and `benchmarks/kill_loop.py` (many). Every moment is drawn at random
over the run's duration — during start-up, the LM's fit, the judges' fit, between batches, inside a batch
file's write or the final CSV's — never one chosen point.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TEAM_YAML = """\
lm: {max_epochs: 5, n_layer: 1, n_embd: 32, batch_size: 32}
batch_rows: 100
judges: [{kind: classifier, calibration_rows: 200}, {kind: rules, threshold: 1.0}]
"""


def env() -> dict[str, str]:
    """One thread (the same arithmetic in every process) and this checkout first on the path."""
    path = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}


def tabline(*args: str) -> list[str]:
    return [sys.executable, "-m", "tabline.cli", *args]


def run_args(data: Path, team: Path, out: Path, n: int) -> list[str]:
    return tabline("run", str(data), "-n", str(n), "-o", str(out), "--team", str(team), "-q")


def phase(run_dir: Path) -> str:
    """Where a killed run stood: not started, fitting (the LM's epoch), running (batches), done."""
    try:
        status = json.loads((run_dir / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "before run.json"
    if status == "fitting":
        state = run_dir / "fit-checkpoint" / "state.json"
        epoch = json.loads(state.read_text())["epoch"] if state.exists() else 0
        return f"fitting (epoch {epoch} saved)"
    if status == "running":
        return f"running ({len(list((run_dir / 'batches').glob('accepted-*.parquet')))} batch files)"
    return status


@dataclass
class KillLog:
    kills: list[tuple[float, str]] = field(default_factory=list)  # (seconds after start, phase when killed)
    finished_early: int = 0  # attempts that ended before their kill moment


def next_command(data: Path, team: Path, run_dir: Path, n: int) -> list[str]:
    """Resume the run; or, killed before its run.json was written, the run never began: start it again."""
    if (run_dir / "run.json").exists():
        return tabline("run", "--resume", str(run_dir), "-q")
    return run_args(data, team, run_dir, n)


def kill_and_resume(data: Path, team: Path, run_dir: Path, n: int, *, attempts: int, horizon_s: float,
                    rng: random.Random, timeout_s: float = 600) -> KillLog:
    """Start the run and SIGKILL it at a random moment in [0, horizon_s); resume it and do the same, for
    ``attempts`` starts in all (an attempt that finishes before its moment is not killed); then resume it
    to the end. Returns where each kill landed."""
    log = KillLog()
    for _ in range(attempts):
        proc = subprocess.Popen(next_command(data, team, run_dir, n), env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        moment = rng.uniform(0.0, horizon_s)
        try:
            proc.wait(timeout=moment)
            log.finished_early += 1
            if proc.returncode != 0:
                raise RuntimeError(f"tabline exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
            break
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            log.kills.append((round(moment, 2), phase(run_dir)))
            if log.kills[-1][1] == "done":
                break  # killed while exiting: the run itself had finished
        finally:
            proc.stderr.close()
    final = subprocess.run(next_command(data, team, run_dir, n), env=env(), capture_output=True, text=True,
                           timeout=timeout_s)
    if final.returncode != 0:
        raise RuntimeError(f"the final attempt failed ({final.returncode}): {final.stderr[-2000:]}")
    return log


def kill_after_epoch(proc: subprocess.Popen, checkpoint: Path, epoch: int, timeout_s: float = 300) -> None:
    """SIGKILL ``proc`` once the fit checkpoint in ``checkpoint`` holds epoch ``epoch`` (or after ``timeout_s``)."""
    state = checkpoint / "state.json"
    deadline = time.time() + timeout_s
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= epoch):
        time.sleep(0.05)
    proc.kill()
    proc.wait()


def timed_run(data: Path, team: Path, run_dir: Path, n: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(run_args(data, team, run_dir, n), env=env(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"reference run failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started
