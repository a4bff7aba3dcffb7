"""The assembly line as a LangGraph `StateGraph` — the only place its nodes are wired together.

    coordinator → stations (one per plan component, by precedence level; a level's stations run side by
    side) → judges → sanity [→ qc_<stage> …] → objective → diversity [→ reflect] → bandit → coordinator …
    until a stop reason is set. ``qc_<stage>`` are the team's own QC stages, in order. ``reflect`` (DATE's tree feedback) is there when an LLM worker uses reflection; ``align``
    (TabGRAA on the line's verdicts) follows every k-th bandit step when the line has ``align_every=k``.

Each node is the runtime's ``state -> partial state`` function wrapped so that every execution appends one
event to the run's ``trace.jsonl`` (node, agent, arm, batch, rows in/out, rejections, seconds). Stations
of one level write disjoint keys of the ``parts`` channel, merged by `merge_parts`. A node whose agent
fails (`AgentError`) leaves an event with the error before the run stops.

Example:
    >>> merge_parts({"a": "1"}, {"b": "2"})
    {'a': '1', 'b': '2'}
    >>> merge_parts({"a": "1"}, {"__reset__": ""})
    {}
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Callable, TypedDict

from langgraph.graph import END, START, StateGraph

from tabline.agents.roles import AgentError

RESET = "__reset__"  # same sentinel as tabline.line.runtime.RESET


def merge_parts(old: dict[str, str] | None, new: dict[str, str]) -> dict[str, str]:
    """Reducer of the ``parts`` channel: stations add their columns; the coordinator's {RESET: ""} clears."""
    if RESET in new:
        return {k: v for k, v in new.items() if k != RESET}
    return {**(old or {}), **new}


class LineState(TypedDict, total=False):
    """The graph's state (checkpointed after every step). Batch data is JSON; accepted rows live in files."""

    n_rows: int
    quotas: list[float]
    batch_id: int
    rows: int
    arm: int
    source: str
    batch_started: float
    conditions: str
    parts: Annotated[dict[str, str], merge_parts]
    failed: Annotated[dict[str, dict[str, str]], merge_parts]  # LLM workers' unfilled rows: position -> reason
    scores: dict[str, list[float]]
    judge_notes: dict[str, dict[str, str]]  # judge -> row position -> its note on the row
    reflection: dict[str, list[dict[str, Any]]]  # arm -> DATE's negative examples for the next prompt
    verdicts: dict[str, list]
    gain: float
    undercovered: float
    kept: int
    quality: float
    bandit: dict[str, Any]
    batches: int
    accepted: int
    generated: int
    accepted_batches: list[int]
    accepted_by_arm: list[int]
    counts: dict[str, dict[str, int]]
    rejected: dict[str, dict[str, int]]
    rejected_rows: int
    idle: int
    elapsed_s: float
    stop: str
    history: list[dict[str, Any]]
    aligned: int  # TabGRAA steps taken (align_every)
    lm_dir: str  # run-folder name of the current aligned LM ("" / absent: model/, the SFT model)


def station_node_name(component: str) -> str:
    return f"station_{component}"


def stage_node_name(stage: str) -> str:
    return f"qc_{stage}"


def build_line_graph(runtime: Any, *, run_id: str, on_event: Callable[[dict], None] | None = None) -> StateGraph:
    """Wire ``runtime``'s node functions (see `tabline.line.runtime.LineRuntime`) into an uncompiled graph."""
    levels = runtime.plan.levels()
    arms = [a.name for a in runtime.plan.arms]

    def traced(node: str, fn: Callable[[dict], tuple[dict, dict]]) -> Callable[[dict], dict]:
        def run(state: dict) -> dict:
            started = time.perf_counter()
            try:
                update, info = fn(state)
            except AgentError as exc:
                if runtime.folder is not None:
                    runtime.folder.append_event({
                        "run_id": run_id, "node": node, "agent": exc.agent, "batch_id": state.get("batch_id"),
                        "arm": arms[state["arm"]] if state.get("arm") is not None else None,
                        "seconds": round(time.perf_counter() - started, 4), "error": str(exc)})
                raise
            arm = info.pop("arm", state.get("arm"))
            event = {"run_id": run_id, "node": node, "agent": info.pop("agent", node),
                     "batch_id": update.get("batch_id", state.get("batch_id")),
                     "arm": arms[arm] if arm is not None else None, "rows_in": info.pop("rows_in", None),
                     "rows_out": info.pop("rows_out", None), "rejected": info.pop("rejected", {}),
                     "seconds": round(time.perf_counter() - started, 4), "tokens": info.pop("tokens", None), **info}
            if runtime.folder is not None:
                runtime.folder.append_event(event)
            if on_event is not None:
                on_event({**event, "state": {**state, **update}})
            return update

        run.__name__ = node
        return run

    graph = StateGraph(LineState)
    graph.add_node("coordinator", traced("coordinator", runtime.coordinator_node))
    for level in levels:
        for comp in level:
            graph.add_node(station_node_name(comp),
                           traced(station_node_name(comp), lambda s, c=comp: runtime.station_node(c, s)))
    reflect = getattr(runtime, "reflector", None) is not None
    align = getattr(runtime, "alignment", None) is not None
    for name in ("judges", "sanity", "objective", "diversity", "bandit") + (("reflect",) if reflect else ()) + \
            (("align",) if align else ()):
        graph.add_node(name, traced(name, getattr(runtime, f"{name}_node")))
    stages = [stage_node_name(s) for s in runtime.stages]
    for stage, node in zip(runtime.stages, stages):
        graph.add_node(node, traced(node, lambda s, n=stage: runtime.stage_node(n, s)))

    graph.add_edge(START, "coordinator")
    previous = ["coordinator"]
    for level in levels:
        current = [station_node_name(c) for c in level]
        for node in current:
            graph.add_edge(previous if len(previous) > 1 else previous[0], node)  # a list waits for all
        previous = current
    graph.add_edge(previous if len(previous) > 1 else previous[0], "judges")
    chain = ["judges", "sanity", *stages, "objective", "diversity", *(["reflect"] if reflect else []), "bandit"]
    for a, b in zip(chain, chain[1:]):
        graph.add_edge(a, b)
    if align:  # TabGRAA after every k-th batch, then back to the coordinator
        graph.add_conditional_edges(
            "bandit", lambda s: END if s.get("stop") else "align" if runtime.alignment.due(s) else "coordinator",
            {END: END, "align": "align", "coordinator": "coordinator"})
        graph.add_edge("align", "coordinator")
    else:
        graph.add_conditional_edges("bandit", lambda s: END if s.get("stop") else "coordinator",
                                    {END: END, "coordinator": "coordinator"})
    return graph


def mermaid(graph: StateGraph) -> str:
    """The graph's mermaid text (offline; `draw_mermaid_png` would need the network)."""
    return graph.compile().get_graph().draw_mermaid()


__all__ = ["LineState", "build_line_graph", "merge_parts", "mermaid", "stage_node_name", "station_node_name"]
