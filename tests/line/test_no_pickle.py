"""Run folders and model directories hold nothing that runs code when read: planted pickles and a planted
constructor call in the checkpoint database are never executed, and an old pickled run gets a clear error."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3

import ormsgpack
import pytest

from tabline.agents.team import Team
from tabline.errors import TablineError
from tabline.line.assembly import AssemblyLine
from tabline.training import TabularLM

TEAM = {"batch_rows": 100, "judges": [{"kind": "classifier", "calibration_rows": 200}, {"kind": "rules", "threshold": 1.0}]}


class Payload:
    """Unpickling this creates ``marker``: the proof that a pickle was loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path, marker) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(Payload(str(marker))))


@pytest.fixture(scope="module")
def finished_run(tiny_lm, diamonds, tmp_path_factory):
    line = AssemblyLine(Team.from_dict(TEAM), lm=tiny_lm).fit(diamonds.iloc[:600], progress=False)
    return line.run(200, tmp_path_factory.mktemp("runs") / "run", progress=False).run_dir


@pytest.fixture()
def unfinished_run(finished_run, tmp_path):
    """A copy of the run as a kill after its last batch leaves it: every batch on disk, not yet marked done."""
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    manifest = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**manifest, "status": "running"}))
    return run_dir


def test_nothing_in_a_run_folder_is_a_pickle(unfinished_run):
    files = [p for p in unfinished_run.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".bin", ".pt")]
    for p in files:  # no file starts like a pickle stream (protocol 2+ begins with 0x80)
        assert p.read_bytes()[:1] != b"\x80", p


def test_planted_pickles_are_never_loaded(unfinished_run, tmp_path):
    run_dir = unfinished_run
    marker = tmp_path / "pwned"
    # Setup: pickles where the old layout kept the line and the batches, and beside the model's weights
    plant(run_dir / "line.pkl", marker)
    for kind in ("accepted", "rejected", "scores"):
        plant(run_dir / "batches" / f"{kind}-000001.pkl", marker)
    plant(run_dir / "model" / "pytorch_model.bin", marker)
    plant(run_dir / "model" / "training_args.bin", marker)
    # Run: resume (re-fits the line, reads every batch), load the model, summarise the trace
    result = AssemblyLine.resume(run_dir, progress=False)
    TabularLM.load(run_dir / "model")
    from tabline.line.trace import summarise
    summarise(run_dir / "trace.jsonl")
    # Assert: the run finished from its plain files, and no pickle ran
    assert len(result.data) == 200
    assert not marker.exists()


def test_a_constructor_planted_in_the_checkpoint_database_is_not_called(unfinished_run, tmp_path):
    run_dir = unfinished_run
    marker = tmp_path / "pwned-by-checkpoint"
    # Setup: the newest checkpoint gets a msgpack "call os.system(...)" value in one of its channels
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite")
    row_id, blob = conn.execute("SELECT checkpoint_id, checkpoint FROM checkpoints ORDER BY checkpoint_id DESC "
                                "LIMIT 1").fetchone()
    checkpoint = ormsgpack.unpackb(blob, ext_hook=lambda code, data: ormsgpack.Ext(code, data),
                                   option=ormsgpack.OPT_NON_STR_KEYS)
    call = ormsgpack.Ext(0, ormsgpack.packb(["os", "system", f"touch {marker}"]))  # EXT_CONSTRUCTOR_SINGLE_ARG
    checkpoint["channel_values"]["judge_notes"] = call
    conn.execute("UPDATE checkpoints SET checkpoint = ? WHERE checkpoint_id = ?",
                 (ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS), row_id))
    conn.commit()
    conn.close()
    # Run
    result = AssemblyLine.resume(run_dir, progress=False)
    # Assert
    assert len(result.data) == 200
    assert not marker.exists()


def test_an_old_pickled_run_folder_gets_a_clear_message_not_an_unpickle(unfinished_run, tmp_path):
    run_dir = unfinished_run
    marker = tmp_path / "pwned-old"
    # Setup: the old layout — a manifest without a format, the fitted line as line.pkl
    manifest = json.loads((run_dir / "run.json").read_text())
    manifest.pop("format")
    (run_dir / "run.json").write_text(json.dumps(manifest))
    plant(run_dir / "line.pkl", marker)
    # Run / Assert
    with pytest.raises(TablineError, match="no longer loads pickles"):
        AssemblyLine.resume(run_dir, progress=False)
    assert not marker.exists()
