"""TabGRAA's loop as a LangGraph `StateGraph` — its state, its nodes, its builder and `align_model`, the
driver behind ``tabline align``:

    generate → score → align → generate … once per round, then END.

Each node is a small function ``state -> partial state`` that calls the `Aligner`
(`tabline.training.tabgraa`); `tabline.graphs._trace.traced` turns every execution into one trace event
(node, agent, round, rows in/out, seconds, detail). A round's sampled rows stay in memory between its nodes
(`RoundRows`); the state carries the round counter and the per-round history.

`align_model` writes a model directory like the input (a `TabularLM` directory, or a transformers one),
atomically, with three more files: ``align.json`` (settings, reference, per-round history), ``trace.jsonl``
(one event per node execution) and ``graph.mmd`` (the loop's diagram).

Example:
    >>> import tempfile, os, pandas as pd
    >>> from tabline.training import TabularLM, TabularLMConfig
    >>> df = pd.DataFrame({"a": list(range(20)) * 3, "b": ["x", "y", "z"] * 20})
    >>> root = tempfile.mkdtemp()
    >>> _ = TabularLM(TabularLMConfig(max_epochs=1, n_layer=1, n_embd=16)).fit(df, progress=False).save(f"{root}/m")
    >>> result = align_model(f"{root}/m", df, AlignConfig(rounds=2, reward="dcr"), f"{root}/aligned", progress=False)
    >>> [h["round"] for h in result["history"]], os.path.exists(f"{root}/aligned/align.json")
    ([1, 2], True)
    >>> "align -.-> generate;" in open(f"{root}/aligned/graph.mmd").read()  # the loop back to the next round
    True
"""
from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, TypedDict

import numpy as np
import pandas as pd
from langgraph.graph import END, START, StateGraph

from tabline import __version__
from tabline._progress import progress_bar
from tabline.errors import InvalidTableError
from tabline.graphs._trace import mermaid, traced
from tabline.otel import otel_export, run_spans
from tabline.training.policies import load_policy
from tabline.training.tabgraa import AlignConfig, Aligner


# ---------------------------------------------------------------------- state
class TabGRAAState(TypedDict, total=False):
    """The loop's state: the round about to run, the per-round history, and whether it is finished."""

    round: int
    rows: int
    reward_mean: float
    history: list[dict[str, Any]]
    done: bool


def initial_state() -> TabGRAAState:
    """The state before the first round.

    Example:
        >>> initial_state()
        {'round': 0, 'history': [], 'done': False}
    """
    return {"round": 0, "history": [], "done": False}


@dataclass
class RoundRows:
    """One round's rows between its nodes, in memory (a round's worth, never checkpointed)."""

    aligner: Aligner
    frame: pd.DataFrame | None = None
    items: Any = None
    rewards: np.ndarray | None = None
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- nodes
def generate(rows: RoundRows, state: TabGRAAState) -> tuple[dict, dict]:
    """Sample the round's N rows from the policy."""
    started = time.perf_counter()
    rows.frame, rows.items = rows.aligner.generate(state["round"])
    return {"rows": len(rows.frame)}, {"agent": "policy", "rows_out": len(rows.frame),
                                       "detail": {"sample_seconds": round(time.perf_counter() - started, 3)}}


def score(rows: RoundRows, state: TabGRAAState) -> tuple[dict, dict]:
    """Reward every sampled row (the configured reward) and summarise the high and low groups."""
    t = state["round"]
    rows.rewards, info = rows.aligner.score(rows.frame, t)
    rows.summary = rows.aligner.summarise(t, rows.frame, rows.rewards, info)
    return {"reward_mean": rows.summary["reward_mean"]}, {
        "agent": f"{rows.aligner.config.reward} reward", "rows_in": len(rows.frame),
        "rows_out": len(rows.rewards), "detail": {k: v for k, v in rows.summary.items() if k != "round"}}


def align(rows: RoundRows, state: TabGRAAState) -> tuple[dict, dict]:
    """One epoch of the configured loss over the round's rows; the round goes into the history."""
    t = state["round"]
    metrics = rows.aligner.align(rows.items, rows.rewards, t)
    summary = rows.aligner.record(rows.summary, metrics)
    rows.frame = rows.items = rows.rewards = None
    done = t + 1 >= rows.aligner.config.rounds
    return {"round": t + 1, "history": state["history"] + [summary], "done": done}, {
        "agent": f"{rows.aligner.config.loss} loss", "rows_in": summary["rows"], "detail": metrics}


# ---------------------------------------------------------------------- builder
def build_tabgraa_graph(aligner: Aligner, *, run_id: str,
                        on_event: Callable[[dict], None] | None = None) -> StateGraph:
    """The loop for ``aligner``, uncompiled; ``on_event`` receives every trace event."""
    rows = RoundRows(aligner)

    def context(state: Mapping[str, Any], update: dict, info: dict) -> dict:
        return {"round": state.get("round", 0) + 1}

    def record(event: dict, _after: dict | None) -> None:
        if on_event is not None:
            on_event(event)

    graph = StateGraph(TabGRAAState)
    for name, body in (("generate", generate), ("score", score), ("align", align)):
        graph.add_node(name, traced(name, partial(body, rows), run_id=run_id, context=context, record=record))
    graph.add_edge(START, "generate")
    graph.add_edge("generate", "score")
    graph.add_edge("score", "align")
    graph.add_conditional_edges("align", lambda s: END if s.get("done") else "generate",
                                {END: END, "generate": "generate"})
    return graph


# ---------------------------------------------------------------------- driver
def align_model(model_dir: str | os.PathLike, data: pd.DataFrame, config: AlignConfig | None = None,
                output: str | os.PathLike = "aligned", *, sft_steps: int = 0, threads: int | None = None,
                progress: bool = True, otel: Any = None) -> dict[str, Any]:
    """Align the model in ``model_dir`` against the real rows ``data`` and write it to ``output``.

    ``sft_steps`` > 0 first fine-tunes on ``data`` (for a transformers model that has not seen the table;
    trl's `SFTTrainer` does it) and the reference is taken after that. Returns the ``align.json`` content.
    ``otel``: also export the trace as OpenTelemetry spans, as in `AssemblyLine.run` (`tabline.otel`)."""
    config = config or AlignConfig()
    export = otel_export(otel)
    policy = load_policy(model_dir, data, threads=threads)
    schema = policy.schema
    missing = [c for c in schema.names if c not in data.columns]
    if missing:
        raise InvalidTableError(f"the training table lacks the model's column(s) {missing}")
    real = schema.format(schema.coerce(data[schema.names])).reset_index(drop=True)
    schema.validate_table(real, data_label="the training table")
    started = time.perf_counter()
    if sft_steps:
        policy.sft(real, steps=sft_steps, batch_size=2 * config.group_batch, learning_rate=config.learning_rate,
                   seed=config.seed)
    aligner = Aligner(policy, real, config)
    run_id = uuid.uuid4().hex[:12]
    events: list[dict] = []
    with run_spans(export, "align", run_id, {"tabline.model_dir": str(model_dir), "tabline.rounds": config.rounds,
                                             "tabline.loss": config.loss, "tabline.reward": config.reward}) as spans, \
            progress_bar(config.rounds, f"aligning ({config.loss}, {config.reward} reward)", enabled=progress) as bar:
        def on_event(event: dict) -> None:
            events.append(event)
            if spans is not None:
                spans.event(event)
            if event["node"] == "align":
                bar.advance(1, info=f"round {event['round']}: {event.get('detail', {}).get('steps', 0)} steps")

        graph = build_tabgraa_graph(aligner, run_id=run_id, on_event=on_event)
        final = graph.compile().invoke(initial_state(), {"recursion_limit": 10 * config.rounds + 10})
    report = {"tabline_version": __version__, "run_id": run_id, "reference": str(Path(model_dir).resolve()),
              "rows": len(real), "sft_steps": sft_steps, "config": config.model_dump(),
              "seconds": round(time.perf_counter() - started, 2), "history": final["history"]}
    if policy.invalid is not None:
        report["invalid_samples"] = policy.invalid
    trace = "".join(json.dumps(e, default=str) + "\n" for e in events)
    policy.save(output, {"align.json": json.dumps(report, indent=1, default=str), "trace.jsonl": trace,
                         "graph.mmd": mermaid(graph)})
    return report


__all__ = ["RoundRows", "TabGRAAState", "align_model", "build_tabgraa_graph", "initial_state"]
