"""`tabline dream` survives kill -9 at random moments: `--resume` ends with the dataset and items of an
uninterrupted run — nothing lost, nothing doubled."""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from killing import env
from llm_server import Reply, ScriptedOpenAIServer


def _dream(*args: str) -> list[str]:
    return [sys.executable, "-m", "tabline.cli", "dream", *args]


@pytest.fixture(scope="module")
def server():
    # a slow, steady target: every answer "42" after 30 ms, so a run lasts long enough to be killed mid-round
    with ScriptedOpenAIServer(lambda body, i: Reply.json({"answer": "42"}, delay_s=0.03)) as s:
        yield s


def _phase(run) -> str:
    try:
        status = json.loads((run / "run.json").read_text())["status"]
    except (OSError, ValueError, KeyError):
        return "before run.json"
    return f"{status} ({len(list((run / 'rounds').glob('round-*.json')))} rounds written)"


def _args(server, out) -> list[str]:
    return ["--rounds", "3", "--per-round", "60", "--tables", "4", "--seed", "5",
            "--target-model", f"openai-compatible:{server.url}:target", "-o", str(out)]


def test_kill_9_then_resume_loses_and_doubles_nothing(server, tmp_path):
    # Setup: an uninterrupted reference run, timed
    ref = tmp_path / "ref"
    started = time.perf_counter()
    done = subprocess.run(_dream(*_args(server, ref)), env={**env(), "TABLINE_CACHE_DIR": str(tmp_path / "c1")},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    horizon = time.perf_counter() - started
    # Run: start, SIGKILL at a random moment, resume, again; then resume to the end
    run, rng, kills = tmp_path / "killed", random.Random(7), []
    killed_env = {**env(), "TABLINE_CACHE_DIR": str(tmp_path / "c2")}
    for _ in range(6):
        command = _dream("--resume", str(run)) if (run / "run.json").exists() else _dream(*_args(server, run))
        proc = subprocess.Popen(command, env=killed_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        moment = rng.uniform(0.5, horizon)
        try:
            proc.wait(timeout=moment)
            assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
            break
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills.append((round(moment, 2), _phase(run)))
        finally:
            proc.stderr.close()
    final = subprocess.run(_dream("--resume", str(run)), env=killed_env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    print(f"kills (s, phase) {kills} of a {horizon:.1f} s run")
    # Assert: a kill landed inside the loop; the same rows and items, none twice
    assert any(phase.startswith("running") for _, phase in kills)
    for name in ("dataset.jsonl", "items.jsonl"):
        assert (run / name).read_text() == (ref / name).read_text(), name
    ids = [json.loads(line)["id"] for line in (run / "items.jsonl").read_text().splitlines()]
    rows = [json.loads(line)["id"] for line in (run / "dataset.jsonl").read_text().splitlines()]
    assert len(rows) == len(set(rows)) and len(ids) == json.loads((ref / "report.json").read_text())["items"]
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
