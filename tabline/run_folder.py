"""The run folder: everything a line run writes, laid out so that a kill at any moment loses nothing and
a folder someone shares can be read without running code.

    RUN_DIR/
      run.json            what was asked (rows, seed, LM settings) and where the run stands:
                          status fitting → running → done, stop reason
      .lock               held by the process working on the run (a second one is refused)
      team.yaml schema.json real.parquet   the team, the schema and the real rows the line learns from
      fit-checkpoint/     the LM's training state after its last finished epoch (while it trains)
      model/              the TabularLM (safetensors)
      calibration.parquet the synthetic rows the classifier judge learnt from
      plan.json graph.mmd the coordinator's plan and the line's graph
      checkpoints.sqlite  LangGraph's checkpoints (plain data only)   trace.jsonl  one event per node run
      batches/            accepted-NNNNNN.parquet, rejected-NNNNNN.parquet — one pair per finished batch;
                          llm-NNNNNN-<agent>.json — that batch's LLM calls (errors, raw answers of failures)
                          scores-NNNNNN.parquet — per-row judge scores, when the line aligns its LM
      model-aligned-NNNNNN/  the LM after the alignment step that followed batch NNNNNN (align_every)
      llm-coordinator.json   the LLM task manager's calls, when the team has one
      data.csv rejected.csv report.json                         written at the end, atomically

Nothing in a run folder is a pickle: tables are Parquet, state and settings JSON/YAML, weights
safetensors, and LangGraph's checkpoints are read with its strict deserialiser (plain data only). Fitted
judges and partitions are re-fitted from the saved rows on resume, with the same seeds.

Batch files are written atomically under the batch's id *before* the checkpoint that counts the batch. A
run killed in between re-runs that step from the previous checkpoint with the same seed, rewrites the same
file, and counts it once — so an accepted row is neither lost nor duplicated. Batch ids run 1, 2, … and
every batch writes its files (with no rows, if none was accepted); only batches 1..n of a checkpoint that
counts n are read back.

Example:
    >>> import tempfile, pandas as pd
    >>> folder = RunFolder(tempfile.mkdtemp())
    >>> folder.write_batch(3, pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2], "reason": ["x"]}))
    >>> folder.read_accepted([3])["a"].tolist()
    [1]
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from tabline.errors import TablineError
from tabline.io import write_parquet_atomic, write_text_atomic, writing

FORMAT = 2  # 1 pickled the fitted line (line.pkl); 2 keeps only plain data


class RunLockedError(TablineError):
    """Another process is working on this run folder."""


class RunFolder:
    """Paths and plain-data readers/writers of one run folder (see the module docstring for the layout)."""

    command = "tabline run"  # the command that starts and resumes this kind of run (named in messages)

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.batches = self.path / "batches"

    # paths
    manifest = property(lambda self: self.path / "run.json")
    trace = property(lambda self: self.path / "trace.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints.sqlite")
    model = property(lambda self: self.path / "model")
    fit_checkpoint = property(lambda self: self.path / "fit-checkpoint")
    real = property(lambda self: self.path / "real.parquet")
    schema = property(lambda self: self.path / "schema.json")
    team = property(lambda self: self.path / "team.yaml")
    plan = property(lambda self: self.path / "plan.json")
    calibration = property(lambda self: self.path / "calibration.parquet")

    def create(self) -> None:
        """Make the folder for a new run; refuse one that already holds a run."""
        if self.path.exists() and not self.path.is_dir():
            raise TablineError(f"{self.path} exists and is not a folder")
        if self.manifest.exists():
            raise TablineError(f"{self.path} already holds a run; continue it with `{self.command} --resume "
                               f"{self.path}` or choose another output folder")
        for folder in self._folders():
            with writing(folder):
                folder.mkdir(parents=True, exist_ok=True)

    def _folders(self) -> list[Path]:
        return [self.batches]

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for the block: two processes never write one run. The operating system
        releases it when the holder dies, even by kill -9, so a killed run never leaves a stale lock."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; one process per folder is on the user
            yield
            return
        with writing(self.path / ".lock"):
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                raise RunLockedError(f"{self.path} is in use by {holder}; wait for it to finish or stop it, "
                                     f"then `{self.command} --resume {self.path}`") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                          f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # manifest
    def read_manifest(self) -> dict[str, Any]:
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TablineError(f"{self.path} is not a run folder (no run.json); start a run with `{self.command}`") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise TablineError(f"cannot read {self.manifest}: {exc}") from None
        if data.get("format") != FORMAT:
            raise TablineError(
                f"{self.path} was written by an older tabline that kept the fitted line as a pickle (line.pkl). "
                "tabline no longer loads pickles from run folders, because loading one runs any code it holds, "
                "so this run cannot be resumed; its data.csv, rejected.csv and report.json (if finished) are "
                "plain files and stay readable. Start the run again to continue (same seed, same rows)")
        return data

    def write_manifest(self, data: dict[str, Any]) -> None:
        write_text_atomic(json.dumps({"format": FORMAT, **data}, indent=2, default=str), self.manifest)

    def update_manifest(self, **changes: Any) -> None:
        self.write_manifest({**self.read_manifest(), **changes})

    # tables
    def write_table(self, frame: pd.DataFrame, path: Path) -> None:
        write_parquet_atomic(frame, path)

    def read_table(self, path: Path, what: str) -> pd.DataFrame:
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            raise TablineError(f"run folder {self.path} is missing {path.name} ({what}); it was deleted or moved — "
                               f"restore it, then `{self.command} --resume {self.path}`") from None
        except (OSError, ValueError) as exc:
            raise TablineError(f"run folder {self.path}: {path.name} ({what}) is damaged: {exc}") from None

    # batches
    def _batch_path(self, kind: str, batch_id: int) -> Path:
        return self.batches / f"{kind}-{batch_id:06d}.parquet"

    def write_batch(self, batch_id: int, accepted: pd.DataFrame, rejected: pd.DataFrame) -> None:
        """Both files of one batch, each atomically (Parquet keeps the column types)."""
        for kind, frame in (("rejected", rejected), ("accepted", accepted)):
            write_parquet_atomic(frame, self._batch_path(kind, batch_id))

    def write_scores(self, batch_id: int, scores: pd.DataFrame) -> None:
        """Per-row judge scores of one batch (accepted rows, then rejected rows, in file order)."""
        write_parquet_atomic(scores, self._batch_path("scores", batch_id))

    def write_llm_calls(self, batch_id: int, agent: str, calls: list[dict[str, Any]]) -> None:
        """The LLM calls one agent made for one batch (rewritten whole if the step re-runs after a kill)."""
        if calls:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in agent)
            write_text_atomic(json.dumps(calls, indent=1, default=str, ensure_ascii=False),
                              self.batches / f"llm-{batch_id:06d}-{safe}.json")

    def read_batches(self, kind: str, batch_ids: list[int]) -> Iterator[tuple[int, pd.DataFrame]]:
        for b in batch_ids:
            path = self._batch_path(kind, b)
            if not path.exists():
                raise TablineError(f"run folder {self.path} is missing {path.relative_to(self.path)}, which its "
                                   "checkpoint counts; restore it, then resume")
            yield b, self.read_table(path, f"batch {b}")

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
        with writing(self.trace), open(self.trace, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


class DreamFolder(RunFolder):
    """A `tabline dream` run folder: run.json, .lock, trace.jsonl, checkpoints.sqlite and graph.mmd as in a
    line's, plus ``tables/`` (the user's tables, Parquet), ``rounds/round-NN.json`` (each finished round's
    items with their replies and verdicts, written before the checkpoint that counts the round, so a kill
    never loses or doubles a round), ``rounds/llm-NN-<agent>.json`` (LLM calls), and at the end
    ``dataset.jsonl`` (the training rows), ``items.jsonl`` (every item with its verdict) and ``report.json``.

    Example:
        >>> import tempfile
        >>> folder = DreamFolder(tempfile.mkdtemp())
        >>> folder.write_round(2, [{"id": "a"}]); folder.read_rounds(2)
        [[], [{'id': 'a'}]]
    """

    command = "tabline dream"
    tables = property(lambda self: self.path / "tables")
    rounds = property(lambda self: self.path / "rounds")

    def _folders(self) -> list[Path]:
        return [self.rounds, self.tables]

    def write_round(self, round_no: int, items: list[dict[str, Any]]) -> None:
        write_text_atomic(json.dumps(items, default=str, ensure_ascii=False), self.rounds / f"round-{round_no:02d}.json")

    def read_rounds(self, upto: int) -> list[list[dict[str, Any]]]:
        """Rounds 1..upto (a round that is missing reads as empty: it made no file)."""
        out = []
        for r in range(1, upto + 1):
            path = self.rounds / f"round-{r:02d}.json"
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")) if path.exists() else [])
            except (OSError, ValueError) as exc:
                raise TablineError(f"run folder {self.path}: {path.name} is damaged: {exc}") from None
        return out

    def write_calls(self, round_no: int, agent: str, calls: list[dict[str, Any]]) -> None:
        if calls:
            safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in agent)
            write_text_atomic(json.dumps(calls, indent=1, default=str, ensure_ascii=False),
                              self.rounds / f"llm-{round_no:02d}-{safe}.json")


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
