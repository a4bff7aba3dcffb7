"""Driving a line's compiled graph to its end, and reading back what a run produced.

`AssemblyLine` fits the agents and owns the run folder; this module streams the LangGraph line
(`tabline.graphs.line`) with its SQLite checkpointer (continuing from the last checkpoint when there is
one) and turns the final state and the batch files into the run's outputs: ``data.csv``, ``rejected.csv``
and ``report.json``.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from tabline._progress import line_progress
from tabline.agents.llm.calls import merge_usage
from tabline.errors import OutputError, TablineError
from tabline.graphs.line import build_line_graph
from tabline.graphs.line_runtime import LineRuntime
from tabline.io import write_csv_atomic, write_text_atomic
from tabline.otel import OtelExport, RunSpans, run_spans
from tabline.run_folder import RunFolder
from tabline.schema import Schema


@dataclass
class LineResult:
    """What a run produced. ``data``: the accepted rows; ``rejected``: every other generated row with the
    stage and reason that rejected it; ``report``: counts, per-arm statistics, timings, stop reason."""

    data: pd.DataFrame
    rejected: pd.DataFrame
    report: dict[str, Any]
    run_dir: Path

    @property
    def trace_path(self) -> Path:
        return self.run_dir / "trace.jsonl"

    @property
    def stop_reason(self) -> str:
        return self.report["stop_reason"]



def drive(runtime: LineRuntime, run_id: str, initial: dict, progress: bool,
          export: OtelExport | None = None) -> LineResult:
    """Run the line of ``runtime`` in its folder from ``initial`` — or from the folder's last checkpoint.
    With ``export``, every trace event is also a span (`tabline.otel`), flushed before this returns or raises."""
    n_rows = runtime.folder.read_manifest()["n_rows"]
    with run_spans(export, "run", run_id, {"tabline.run_dir": str(runtime.folder.path),
                                           "tabline.n_rows": n_rows}) as spans:
        result = _drive(runtime, run_id, initial, progress, n_rows, spans)
        if spans is not None:
            r = result.report
            spans.note(stop_reason=r["stop_reason"], accepted=r["accepted"], generated=r["generated"],
                       batches=r["batches"])
    return result


def _drive(runtime: LineRuntime, run_id: str, initial: dict, progress: bool, n_rows: int,
           spans: RunSpans | None) -> LineResult:
    folder, agents = runtime.folder, runtime.agents
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000_000}
    conn = sqlite3.connect(folder.checkpoints, check_same_thread=False)
    try:
        # Strict: a checkpoint is read back as plain data only. The permissive default would import and call
        # any module.function a (planted) checkpoint names.
        saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
        with line_progress(n_rows, enabled=progress) as bar:
            def on_event(event: dict) -> None:
                if spans is not None:
                    spans.event(event)
                if event["node"] == "bandit" and event["state"] is not None:
                    s = event["state"]
                    bar(s["accepted"], event["arm"], event["rows_out"] / max(1, event["rows_in"]))

            graph = build_line_graph(runtime, run_id=run_id, on_event=on_event).compile(checkpointer=saver)
            snapshot = graph.get_state(config)
            if snapshot.values:  # resuming: continue from the last checkpoint
                if "accepted_batches" in snapshot.values:
                    raise TablineError(f"{folder.path} was started by an older tabline whose checkpoints this one "
                                       "cannot continue; finish it with that version, or start the run again "
                                       "(same seed, same rows)")
                initial = None
                if spans is not None:
                    spans.note(resumed=True)
                if agents.alignment is not None:
                    agents.alignment.restore(agents.lm, folder.path, snapshot.values.get("lm_dir"),
                                             agents.coordinator.real)
                bar(snapshot.values.get("accepted", 0), None, None)
            try:
                for _ in graph.stream(initial, config, stream_mode="updates", durability="sync"):
                    pass
            except sqlite3.Error as exc:  # the checkpoint could not be written (a full disk, most often)
                raise OutputError(f"cannot write the run's checkpoint {folder.checkpoints}: {exc} (the disk is "
                                  "full, or failing)") from exc
            final = graph.get_state(config).values
    finally:
        conn.close()
    return _finish(runtime, final)


def _finish(runtime: LineRuntime, state: dict) -> LineResult:
    folder, agents = runtime.folder, runtime.agents
    batches = list(range(1, state["batches"] + 1))  # every batch wrote its files, accepted rows or none
    data = folder.read_accepted(batches)
    data = data if len(data.columns) else pd.DataFrame(columns=agents.schema.names)
    rejected = folder.read_rejected(batches)
    trace = pd.read_json(folder.trace, lines=True) if folder.trace.exists() else pd.DataFrame()
    seconds = trace.groupby("node")["seconds"].sum().round(3).to_dict() if len(trace) else {}
    plan = agents.plan
    arms = []
    for k, arm in enumerate(plan.arms):
        n = state["batches_by_arm"][k]
        arms.append({"arm": arm.name, "rule": arm.rule, "real_rows": arm.size, "batches": n,
                     "generated": state["generated_by_arm"][k], "accepted": int(state["accepted_by_arm"][k]),
                     "mean_reward": round(state["reward_by_arm"][k] / n, 4) if n else None})
    sources = sorted(state["sources"].items(), key=lambda kv: -kv[1])
    report = {
        "run_id": folder.read_manifest()["run_id"], "n_requested": state["n_rows"], "accepted": len(data),
        "generated": state["generated"], "yield": round(len(data) / max(1, state["generated"]), 4),
        "batches": state["batches"], "stop_reason": state["stop"], "seconds": round(state["elapsed_s"], 2),
        "seconds_by_node": seconds, "rejections": state["rejected"], "rejected_rows": state["rejected_rows"],
        "llm": merge_usage([agents.coordinator.llm_usage] + ([t for t in trace["tokens"] if isinstance(t, dict)]
                                                             if "tokens" in trace else [])),
        "arms": arms, "conditions_from": dict(sources),
        "components": [{"name": c.name, "columns": c.columns, "worker": c.worker, "depends_on": c.depends_on}
                       for c in plan.components],
    }
    write_csv_atomic(data, folder.path / "data.csv")
    write_csv_atomic(rejected, folder.path / "rejected.csv")
    write_text_atomic(json.dumps(report, indent=2, default=_plain), folder.path / "report.json")
    folder.update_manifest(status="done", stop_reason=state["stop"], accepted=len(data))
    return LineResult(data, rejected, report, folder.path)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else str(v)


def read_result(folder: RunFolder, schema: Schema) -> LineResult:
    """A finished run read back from its plain files."""
    try:
        report = json.loads((folder.path / "report.json").read_text(encoding="utf-8"))
        data = pd.read_csv(folder.path / "data.csv", low_memory=False)
        rejected_path = folder.path / "rejected.csv"
        rejected = pd.read_csv(rejected_path, low_memory=False) if rejected_path.stat().st_size > 1 else pd.DataFrame()
    except (OSError, ValueError) as exc:
        raise TablineError(f"cannot read the finished run in {folder.path}: {exc}") from None
    return LineResult(schema.format(schema.coerce(data[schema.names])), rejected, report, folder.path)
