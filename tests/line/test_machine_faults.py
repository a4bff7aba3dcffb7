"""Faults of the machine — a full disk, a folder the user cannot write, the model directory gone mid-run:
each is one clear line and exit code 2, nothing half-written is left, and the run resumes once the cause
is gone, ending with the rows of an uninterrupted run."""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess

import pandas as pd
import pytest

from killing import env, next_command, run_args, tabline


def file_size_limit(limit: int):
    """A child whose files cannot grow past ``limit`` bytes: writes fail with EFBIG, as on a full disk
    (CPython ignores SIGXFSZ, so the write raises instead of killing the process)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def half_written(run_dir) -> list:
    return [p for p in run_dir.rglob("*") if ".tmp" in p.name or ".old" in p.name]


def same_rows_as_reference(run_dir, ref) -> None:
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "data.csv"), pd.read_csv(ref.run_dir / "data.csv"))


@pytest.mark.parametrize("limit, when", [
    pytest.param(60_000, "fitting", id="disk-full-during-the-fit"),
    pytest.param(450_000, "running", id="disk-full-between-batches"),
])
def test_a_full_disk_is_a_clear_error_and_the_run_resumes_after(reference_run, tmp_path, limit, when):
    ref, run_dir = reference_run, tmp_path / "run"
    # Run: files may not grow past `limit` bytes (the fit's checkpoint, or later the checkpoint database)
    full = subprocess.run(run_args(ref.data, ref.team, run_dir, ref.n), env=env(), capture_output=True, text=True,
                          preexec_fn=file_size_limit(limit))
    # Assert: one line naming what could not be written and why, how to continue; nothing half-written
    assert full.returncode == 2, full.stderr
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
    assert "the disk is full" in lines[0] and f"tabline run --resume {run_dir}" in lines[0]
    assert json.loads((run_dir / "run.json").read_text())["status"] == when
    assert not half_written(run_dir)
    # Run: the cause is gone
    again = subprocess.run(next_command(ref.data, ref.team, run_dir, ref.n), env=env(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    same_rows_as_reference(run_dir, ref)


def _without_root_powers() -> list[str]:
    # root writes anywhere; drop the two capabilities that let it ignore permissions, as a user lacks them
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


def test_an_unwritable_output_folder_is_a_clear_error(reference_run, tmp_path):
    ref = reference_run
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        denied = subprocess.run(_without_root_powers() + run_args(ref.data, ref.team, locked / "run", ref.n),
                                env=env(), capture_output=True, text=True)
    finally:
        locked.chmod(0o755)
    assert denied.returncode == 2 and "Traceback" not in denied.stderr, denied.stderr
    assert "permission denied" in denied.stderr and str(locked / "run") in denied.stderr
    assert not (locked / "run").exists()
    # a path through a file
    (tmp_path / "afile").write_text("x")
    blocked = subprocess.run(run_args(ref.data, ref.team, tmp_path / "afile" / "run", ref.n), env=env(),
                             capture_output=True, text=True)
    assert blocked.returncode == 2 and "Traceback" not in blocked.stderr, blocked.stderr
    assert "is a file, not a folder" in blocked.stderr or "not a folder" in blocked.stderr


def test_a_model_directory_gone_mid_run_is_a_clear_error_and_resumes_once_restored(reference_run, tmp_path):
    ref, run_dir = reference_run, tmp_path / "run"
    shutil.copytree(ref.run_dir, run_dir)
    manifest = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**manifest, "status": "running"}))  # killed after the last batch
    shutil.move(run_dir / "model", tmp_path / "model-elsewhere")
    # Run / Assert: a clear error naming model/, exit 2
    gone = subprocess.run(tabline("run", "--resume", str(run_dir)), env=env(), capture_output=True, text=True)
    assert gone.returncode == 2 and "Traceback" not in gone.stderr, gone.stderr
    assert "missing model/" in gone.stderr and "restore it" in gone.stderr
    # Run / Assert: put back, the run completes with the same rows
    shutil.move(tmp_path / "model-elsewhere", run_dir / "model")
    back = subprocess.run(tabline("run", "--resume", str(run_dir)), env=env(), capture_output=True, text=True)
    assert back.returncode == 0, back.stderr
    same_rows_as_reference(run_dir, ref)
