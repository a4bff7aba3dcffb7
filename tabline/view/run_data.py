"""What the page reads from a run folder, read once and tolerant of a run that is unfinished, killed or
still going: every piece that is missing is ``None`` (or empty) and named in `RunData.missing`.

Example:
    >>> import tempfile
    >>> read_run(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    tabline.errors.TablineError: ... holds no run (no run.json, trace.jsonl or align.json); give a folder made by `tabline run`, `tabline demo` or `tabline align`
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tabline.errors import TablineError
from tabline.eval.report import Report
from tabline.line.trace import summarise
from tabline.run_folder import RunFolder, read_trace
from tabline.schema import Schema

# Where an evaluation of the run is looked for, in order: one written into the run folder by
# `tabline evaluate … --json RUN/evaluation.json`, and the demo's report.json one level up from its line/.
EVALUATION_FILES = ("evaluation.json", "../report.json")


@dataclass
class RunData:
    """One run folder's contents as the page needs them (see `read_run`)."""

    path: Path
    manifest: dict[str, Any]
    report: dict[str, Any] | None
    plan: dict[str, Any] | None
    graph: str | None
    trace: pd.DataFrame                     # one row per node run; empty when the trace has no events
    nodes: pd.DataFrame | None              # `tabline trace summary`'s per-node table
    arms: pd.DataFrame | None               # ... and its per-arm table
    damaged_lines: int                      # trace lines a kill cut short (skipped)
    rejected: pd.DataFrame                  # every rejected row with its stage and reason
    synthetic: pd.DataFrame | None          # the accepted rows
    real: pd.DataFrame | None
    llm_calls: list[dict[str, Any]] = field(default_factory=list)  # per call: agent, batch, ok, errors, raw
    schema: Schema | None = None            # the schema the line used (for the association heatmap)
    evaluation: Report | None = None        # `tabline evaluate`'s report of this run, when the folder has one
    evaluation_file: Path | None = None
    missing: list[str] = field(default_factory=list)


def run_files_dir(path: str | Path) -> Path:
    """The folder a run's files are in: ``path`` itself, or the ``line/`` of a `tabline demo` folder."""
    path = Path(path)
    return path / "line" if (path / "line" / "trace.jsonl").exists() and not (path / "trace.jsonl").exists() else path


def read_run(path: str | Path) -> RunData:
    """Read a run folder made by `tabline run` (or the ``line/`` folder inside a `tabline demo` folder, which
    is found on its own). Raises `TablineError` only when the folder holds no run at all."""
    path = run_files_dir(path)
    folder = RunFolder(path)
    if not path.is_dir():
        raise TablineError(f"{path} is not a folder; give a folder made by `tabline run`, `tabline demo` or "
                           "`tabline align`")
    if not folder.manifest.exists() and not folder.trace.exists():
        raise TablineError(f"{path} holds no run (no run.json, trace.jsonl or align.json); give a folder made by "
                           "`tabline run`, `tabline demo` or `tabline align`")
    missing: list[str] = []
    manifest = _json(folder.manifest, missing, "run.json (what was asked)") or {}
    report = _json(path / "report.json", missing, "report.json (the run has not finished: it is still "
                   "running, or was stopped; what the trace and batch files hold so far is shown)")
    plan = _json(folder.plan, missing, "plan.json (the coordinator's plan)")
    graph = (path / "graph.mmd").read_text(encoding="utf-8") if (path / "graph.mmd").exists() else None
    if graph is None:
        missing.append("graph.mmd (the line's graph)")

    trace, damaged = _trace(folder, missing)
    nodes = arms = None
    if len(trace):
        nodes, arms = summarise(folder.trace)
    evaluation, evaluation_file = _evaluation(path, missing)
    return RunData(path=path, manifest=manifest, report=report, plan=plan, graph=graph, trace=trace,
                   nodes=nodes, arms=arms, damaged_lines=damaged, rejected=_rejected(folder),
                   synthetic=_synthetic(folder, missing), real=_real(folder, missing),
                   llm_calls=_llm_calls(folder), missing=missing, schema=_schema(folder),
                   evaluation=evaluation, evaluation_file=evaluation_file)


def _schema(folder: RunFolder) -> Schema | None:
    try:
        return Schema.load(folder.schema)
    except (OSError, TablineError):  # without it the heatmap infers the column kinds from the real rows
        return None


def _evaluation(path: Path, missing: list[str]) -> tuple[Report | None, Path | None]:
    for name in EVALUATION_FILES:
        file = (path / name).resolve()
        if name.startswith("..") and path.name != "line" or not file.exists():  # only a demo's line/ looks up
            continue
        try:
            return Report.from_json(file.read_text(encoding="utf-8")), file
        except (OSError, TablineError) as exc:
            missing.append(f"{file.name} is not a readable evaluation report ({exc})")
    return None, None


def _json(path: Path, missing: list[str], what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        missing.append(what)
    except (OSError, ValueError) as exc:
        missing.append(f"{path.name} is damaged ({exc})")
    return None


def _trace(folder: RunFolder, missing: list[str]) -> tuple[pd.DataFrame, int]:
    if not folder.trace.exists():
        missing.append("trace.jsonl (no node has run yet)")
        return pd.DataFrame(), 0
    trace = read_trace(folder.trace)
    with open(folder.trace, encoding="utf-8", errors="replace") as fh:
        written = sum(1 for line in fh if line.strip())
    if trace.empty:
        missing.append("events in trace.jsonl (it is empty: no node has finished yet)")
    return trace, written - len(trace)


def _batch_frames(folder: RunFolder, kind: str) -> list[pd.DataFrame]:
    frames = []
    for file in sorted(folder.batches.glob(f"{kind}-*.parquet")):
        try:
            frames.append(pd.read_parquet(file))
        except (OSError, ValueError):
            continue  # a batch file a kill left half-written is rewritten on resume; skip it here
    return [f for f in frames if len(f)]


def _rejected(folder: RunFolder) -> pd.DataFrame:
    path = folder.path / "rejected.csv"
    if path.exists() and path.stat().st_size > 1:
        return pd.read_csv(path, low_memory=False)
    frames = _batch_frames(folder, "rejected")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _synthetic(folder: RunFolder, missing: list[str]) -> pd.DataFrame | None:
    path = folder.path / "data.csv"
    if path.exists() and path.stat().st_size > 1:
        return pd.read_csv(path, low_memory=False)
    frames = _batch_frames(folder, "accepted")
    if frames:
        return pd.concat(frames, ignore_index=True)
    missing.append("accepted rows (no data.csv and no accepted batch yet)")
    return None


def _real(folder: RunFolder, missing: list[str]) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(folder.real)
    except FileNotFoundError:
        missing.append("real.parquet (the real rows, for the fidelity plots)")
    except (OSError, ValueError) as exc:
        missing.append(f"real.parquet is damaged ({exc})")
    return None


def _llm_calls(folder: RunFolder) -> list[dict[str, Any]]:
    """Every recorded LLM call: batches/llm-NNNNNN-<agent>.json and llm-coordinator.json."""
    files = [(0, "coordinator", folder.path / "llm-coordinator.json")]
    for file in sorted(folder.batches.glob("llm-*.json")):
        _, batch, agent = file.stem.split("-", 2)
        files.append((int(batch), agent, file))
    calls = []
    for batch, agent, file in files:
        try:
            records = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for r in records if isinstance(records, list) else []:
            if isinstance(r, dict):
                calls.append({"agent": agent, "batch": batch, **r})
    return calls
