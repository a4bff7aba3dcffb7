"""Runs survive any kill: SIGKILL at random moments (in the fit, between batches, mid-write), then
`tabline run --resume` ends with exactly N rows, no duplicate, and the rows of an uninterrupted run."""
from __future__ import annotations

import json
import random
import subprocess
import time

import pandas as pd
import pytest

from killing import env, kill_after_epoch, kill_and_resume, run_args, tabline
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import RunFolder, RunLockedError

@pytest.fixture(scope="module")
def setup(reference_run, tmp_path_factory):
    ref = reference_run
    return tmp_path_factory.mktemp("kills"), ref


def test_random_sigkills_then_resume_give_the_uninterrupted_rows(setup):
    root, ref = setup
    run_dir = root / "killed"
    # Run: up to six starts, each killed at a moment drawn over an uninterrupted run's time (start-up and
    # imports included); a start that finishes first ends the loop
    log = kill_and_resume(ref.data, ref.team, run_dir, ref.n, attempts=6, horizon_s=ref.seconds,
                          rng=random.Random(11))
    print(f"kills (s, phase): {log.kills}")
    # Assert: the kills really happened, and nothing was lost, duplicated or changed
    assert len(log.kills) >= 1
    reference = pd.read_csv(ref.run_dir / "data.csv")
    result = pd.read_csv(run_dir / "data.csv")
    assert len(result) == ref.n and not result.duplicated().any()
    pd.testing.assert_frame_equal(result, reference)
    assert (run_dir / "rejected.csv").read_bytes() == (ref.run_dir / "rejected.csv").read_bytes()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["accepted"] == ref.n and report["generated"] == ref.n + report["rejected_rows"]
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]  # no half-written file left


def test_a_kill_during_the_fit_resumes_from_the_last_epoch(setup):
    root, ref = setup
    run_dir = root / "fit-killed"
    proc = subprocess.Popen(run_args(ref.data, ref.team, run_dir, ref.n), env=env(), stderr=subprocess.DEVNULL)
    kill_after_epoch(proc, run_dir / "fit-checkpoint", 2)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "fitting"
    assert not (run_dir / "model").exists()
    # Run: resume; the fit goes on from epoch 2 (its progress bar says so) and the run completes
    resumed = subprocess.run(tabline("run", "--resume", str(run_dir)), env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "training (resumed after epoch " in resumed.stdout
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "data.csv"), pd.read_csv(ref.run_dir / "data.csv"))
    assert not (run_dir / "fit-checkpoint").exists()  # removed once model/ is written


def test_a_second_process_on_the_same_run_is_refused(setup):
    root, ref = setup
    run_dir = root / "locked"
    # far more rows than the reference run: the holder must outlive a second CLI process's start-up however
    # fast the line gets (it is killed below, once the checks are done)
    proc = subprocess.Popen(run_args(ref.data, ref.team, run_dir, ref.n * 1000), env=env(), stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run_dir / "run.json").exists():
            time.sleep(0.05)
        # Run: a resume (in this process) and a second CLI process while the first one works
        with pytest.raises(RunLockedError, match=f"in use by pid {proc.pid}"):
            AssemblyLine.resume(run_dir, progress=False)
        second = subprocess.run(tabline("run", "--resume", str(run_dir)), env=env(), capture_output=True, text=True)
        assert second.returncode == 2 and f"in use by pid {proc.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        proc.kill()
        proc.wait()
    # Assert: once the holder is gone (even by kill -9) the lock is free again (taken here, not resumed: the
    # run asks for 300,000 rows)
    with RunFolder(run_dir).lock():
        assert json.loads((run_dir / "run.json").read_text())["n_rows"] == ref.n * 1000
