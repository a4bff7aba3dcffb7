"""TabGRAA's loop as a LangGraph `StateGraph`: generate → score → align, once per round, then END.

The node functions are `tabline.training.align.AlignNodes` methods; this module only wires them and wraps
each so that every execution appends one event (node, agent, round, rows in/out, seconds, detail) to the
trace, like the assembly line's.

Example:
    >>> "align -.-> generate;" in mermaid_text()  # the loop back to the next round
    True
"""
from __future__ import annotations

import time
from typing import Any, Callable, TypedDict

from langgraph.graph import END, START, StateGraph


class AlignState(TypedDict, total=False):
    """The loop's state: the round about to run, the per-round history, and whether it is finished."""

    round: int
    rows: int
    reward_mean: float
    history: list[dict[str, Any]]
    done: bool


def build_align_graph(nodes: Any, *, run_id: str, on_event: Callable[[dict], None] | None = None) -> StateGraph:
    """Wire ``nodes`` (an `AlignNodes`, or anything with the three ``*_node`` methods) into an uncompiled graph.
    ``on_event`` receives every trace event."""

    def traced(name: str, fn: Callable[[dict], tuple[dict, dict]]) -> Callable[[dict], dict]:
        def run(state: dict) -> dict:
            started = time.perf_counter()
            update, info = fn(state)
            event = {"run_id": run_id, "node": name, "agent": info.pop("agent", name),
                     "round": state.get("round", 0) + 1, "rows_in": info.pop("rows_in", None),
                     "rows_out": info.pop("rows_out", None), "seconds": round(time.perf_counter() - started, 4),
                     **info}
            if on_event is not None:
                on_event(event)
            return update

        run.__name__ = name
        return run

    graph = StateGraph(AlignState)
    for name in ("generate", "score", "align"):
        graph.add_node(name, traced(name, getattr(nodes, f"{name}_node")))
    graph.add_edge(START, "generate")
    graph.add_edge("generate", "score")
    graph.add_edge("score", "align")
    graph.add_conditional_edges("align", lambda s: END if s.get("done") else "generate",
                                {END: END, "generate": "generate"})
    return graph


def mermaid_text(nodes: Any = None) -> str:
    """The loop's mermaid diagram (offline)."""

    class _Shape:  # the structure does not depend on the node functions
        def generate_node(self, s): return {}, {}
        def score_node(self, s): return {}, {}
        def align_node(self, s): return {}, {}

    return build_align_graph(nodes or _Shape(), run_id="").compile().get_graph().draw_mermaid()


__all__ = ["AlignState", "build_align_graph", "mermaid_text"]
