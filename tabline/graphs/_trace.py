"""What every graph of tabline shares: a node wrapper that turns each execution into one trace event, and
the graph's mermaid text.

A node body returns ``(partial state update, trace info)``; `traced` gives LangGraph the plain
``state -> partial state`` function and hands one event per execution to ``record``: when it ended (``ts``,
Unix seconds; it began ``seconds`` earlier), run id, node, agent,
the graph's own fields (``context``: the line's batch and arm, the TabGRAA loop's round), rows in and out,
seconds, and whatever else the info holds. A node whose agent fails (`AgentError`) records an event with
the error before the run stops.

Example:
    >>> events = []
    >>> node = traced("double", lambda s: ({"x": 2 * s["x"]}, {"rows_out": 1}), run_id="r",
    ...               context=lambda state, update, info: {"round": state["x"]},
    ...               record=lambda event, state: events.append(event))
    >>> node({"x": 3})
    {'x': 6}
    >>> {k: events[0][k] for k in ("node", "agent", "round", "rows_in", "rows_out")}
    {'node': 'double', 'agent': 'double', 'round': 3, 'rows_in': None, 'rows_out': 1}
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from langgraph.graph import StateGraph

from tabline.agents.roles import AgentError

NodeBody = Callable[[Any], tuple[dict, dict]]
Context = Callable[[Mapping[str, Any], dict, dict], dict]  # (state, update, info) -> the graph's own event fields
Record = Callable[[dict, "dict | None"], None]  # (event, state after the node — None when it failed)


def traced(node: str, body: NodeBody, *, run_id: str, context: Context, record: Record) -> Callable[[Any], dict]:
    """``body`` as a LangGraph node named ``node`` that records one trace event per execution. ``context``
    may take its fields out of the info (``info.pop("arm", ...)``); the rest of the info goes in as it is."""

    def run(state: Any) -> dict:
        started = time.perf_counter()
        try:
            update, info = body(state)
        except AgentError as exc:
            record({"ts": round(time.time(), 3), "run_id": run_id, "node": node, "agent": exc.agent,
                    **context(state, {}, {}),
                    "seconds": round(time.perf_counter() - started, 4), "error": str(exc)}, None)
            raise
        event = {"ts": round(time.time(), 3), "run_id": run_id, "node": node, "agent": info.pop("agent", node),
                 **context(state, update, info),
                 "rows_in": info.pop("rows_in", None), "rows_out": info.pop("rows_out", None),
                 "seconds": round(time.perf_counter() - started, 4), **info}
        record(event, {**state, **update})
        return update

    run.__name__ = node
    return run


def mermaid(graph: StateGraph) -> str:
    """The graph's mermaid text, drawn offline (`draw_mermaid_png` would need the network)."""
    return graph.compile().get_graph().draw_mermaid()


__all__ = ["mermaid", "traced"]
