"""The run folder: everything a line run writes, laid out so that a killed run loses nothing.

    RUN_DIR/
      run.json            what was asked (rows, seed) and where the run stands (status, stop reason)
      team.yaml plan.json graph.mmd
      model/              the TabularLM (safetensors)          line.pkl   the fitted agents and QC
      checkpoints.sqlite  LangGraph's checkpoints (SQLite)      trace.jsonl  one event per node run
      batches/            accepted-NNNNNN.pkl, rejected-NNNNNN.pkl — one pair per finished batch;
                          llm-NNNNNN-<agent>.json — that batch's LLM calls (errors, raw answers of failures)
                          scores-NNNNNN.pkl — per-row judge scores, when the line aligns its LM
      model-aligned-NNNNNN/  the LM after the alignment step that followed batch NNNNNN (align_every)
      llm-coordinator.json   the LLM task manager's calls, when the team has one
      data.csv rejected.csv report.json                         written at the end, atomically

Batch files are written atomically under the batch's id *before* the checkpoint that lists the batch. A
run killed in between re-runs that step from the previous checkpoint with the same seed, rewrites the same
file, and lists it once — so an accepted row is neither lost nor duplicated. Only batches listed in the
checkpointed state are read back.

Example:
    >>> import tempfile, pandas as pd
    >>> folder = RunFolder(tempfile.mkdtemp())
    >>> folder.write_batch(3, pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2], "reason": ["x"]}))
    >>> folder.read_accepted([3])["a"].tolist()
    [1]
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from tabline.errors import TablineError
from tabline.io import write_pickle_atomic, write_text_atomic


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.batches = self.path / "batches"

    # paths
    manifest = property(lambda self: self.path / "run.json")
    trace = property(lambda self: self.path / "trace.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints.sqlite")
    model = property(lambda self: self.path / "model")
    line = property(lambda self: self.path / "line.pkl")

    def create(self) -> None:
        """Make the folder for a new run; refuse one that already holds a run."""
        if self.manifest.exists():
            raise TablineError(f"{self.path} already holds a run; continue it with `tabline run --resume "
                               f"{self.path}` or choose another output folder")
        if self.path.exists() and not self.path.is_dir():
            raise TablineError(f"{self.path} exists and is not a folder")
        self.batches.mkdir(parents=True, exist_ok=True)

    def read_manifest(self) -> dict[str, Any]:
        try:
            return json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TablineError(f"{self.path} is not a run folder (no run.json); start a run with `tabline run`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise TablineError(f"cannot read {self.manifest}: {exc}") from None

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_text_atomic(json.dumps(data, indent=2, default=str), self.manifest)

    def update_manifest(self, **changes: Any) -> None:
        self.write_manifest({**self.read_manifest(), **changes})

    # batches
    def _batch_path(self, kind: str, batch_id: int) -> Path:
        return self.batches / f"{kind}-{batch_id:06d}.pkl"

    def write_batch(self, batch_id: int, accepted: pd.DataFrame, rejected: pd.DataFrame) -> None:
        """Both files of one batch, each atomically (pickle keeps the exact column types)."""
        self.batches.mkdir(parents=True, exist_ok=True)
        for kind, frame in (("rejected", rejected), ("accepted", accepted)):
            write_pickle_atomic(frame, self._batch_path(kind, batch_id))

    def write_scores(self, batch_id: int, scores: pd.DataFrame) -> None:
        """Per-row judge scores of one batch (accepted rows, then rejected rows, in file order)."""
        write_pickle_atomic(scores, self._batch_path("scores", batch_id))

    def write_llm_calls(self, batch_id: int, agent: str, calls: list[dict[str, Any]]) -> None:
        """The LLM calls one agent made for one batch (rewritten whole if the step re-runs after a kill)."""
        if calls:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in agent)
            write_text_atomic(json.dumps(calls, indent=1, default=str, ensure_ascii=False),
                              self.batches / f"llm-{batch_id:06d}-{safe}.json")

    def read_batches(self, kind: str, batch_ids: list[int]) -> Iterator[tuple[int, pd.DataFrame]]:
        for b in batch_ids:
            path = self._batch_path(kind, b)
            try:
                yield b, pd.read_pickle(path)
            except FileNotFoundError:
                raise TablineError(f"run folder {self.path} is missing {path.name}, which its checkpoint lists") from None

    def read_accepted(self, batch_ids: list[int]) -> pd.DataFrame:
        frames = [f for _, f in self.read_batches("accepted", batch_ids)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def read_rejected(self, batch_ids: list[int]) -> pd.DataFrame:
        frames = [f for _, f in self.read_batches("rejected", batch_ids) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # trace
    def append_event(self, event: dict[str, Any]) -> None:
        """One JSON line per event, flushed to disk (a killed run keeps every event written before it)."""
        line = json.dumps({"ts": round(time.time(), 3), **event}, default=str)
        with open(self.trace, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def read_trace(path: str | os.PathLike) -> pd.DataFrame:
    """The events of a ``trace.jsonl`` as a table (a line cut short by a kill is skipped)."""
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    except FileNotFoundError:
        raise TablineError(f"no trace at {path}; is this a run folder?") from None
    return pd.DataFrame(rows)
