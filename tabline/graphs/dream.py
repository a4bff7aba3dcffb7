"""TableDreamer's loop as a LangGraph `StateGraph` — its state, its nodes and its builder, top to bottom:

    make_tables → seed_tasks → evolve → [phrase] → answer → judge → select → evolve … once per round, then END

``phrase`` is there when a phrasing model is (it rewords the round's candidates; programs and answers stay),
``answer`` and ``judge`` when a target model is (without one, ``evolve → select`` keeps the whole
evolved set, unfiltered). ``select`` keeps the round's weaknesses — items the target got wrong, or whose
reply could not be read (score below the threshold) — as the next round's parents and the training set.

Each node is a function ``(runtime, state) -> (partial state, trace info)`` that calls the agents through
their protocols (`tabline.agents.dream`); `tabline.graphs._trace.traced` turns each execution into one event
of the run folder's ``trace.jsonl`` (node, agent, round, items in/out, seconds, counts). The state is plain
JSON (items as `DreamItem.to_json`), checkpointed after every node by the driver (`tabline.line.dreamer`).
A round's file (``rounds/round-NN.json``) is written by ``select`` *before* the checkpoint that counts the
round: a run killed in between re-runs ``select`` from the same state and writes the same file, so no item
is lost or doubled.

Every node draws from its own generator, seeded by (run seed, round, node): a re-run node makes the same items.

Example:
    >>> [int(rng_for(0, 2, "evolve").integers(100)) for _ in range(2)] == [int(rng_for(0, 2, "evolve").integers(100))] * 2
    True
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Mapping, TypedDict

import numpy as np
import pandas as pd
from langgraph.graph import END, START, StateGraph

from tabline.agents.dream import AnswerJudge, Answerer, Phraser, Reply, TableMaker, TaskEvolver, TaskMaker
from tabline.agents.llm.calls import merge_usage
from tabline.dream.config import DreamConfig
from tabline.dream.items import DreamItem, table_from_json, table_to_json
from tabline.errors import InvalidArgumentError, TablineError
from tabline.graphs._trace import mermaid, traced
from tabline.run_folder import DreamFolder

UNSCORED = ("failed", "unjudged")  # verdicts that say nothing about the target's skill


# ---------------------------------------------------------------------- state
class DreamState(TypedDict, total=False):
    """The loop's state (plain JSON): the round about to run, the tables, the round's parents, candidates,
    replies and verdicts, and one summary per finished round."""

    round: int
    tables: list[dict[str, Any]]
    parents: list[dict[str, Any]]
    candidates: list[dict[str, Any]]
    replies: list[dict[str, Any]]
    verdicts: list[dict[str, Any]]
    history: list[dict[str, Any]]
    stop: str


def initial_state() -> DreamState:
    """The state before anything is made.

    Example:
        >>> initial_state()
        {'round': 1, 'history': [], 'stop': ''}
    """
    return {"round": 1, "history": [], "stop": ""}


@dataclass
class DreamAgents:
    """The run's agents: table makers (their tables are pooled), the task maker, one evolver per direction,
    the target model (None: no filtering), the judge, and the phraser (None: the templates' wording)."""

    config: DreamConfig
    table_makers: list[TableMaker]
    task_maker: TaskMaker
    evolvers: list[TaskEvolver]
    answerer: Answerer | None
    judge: AnswerJudge
    phraser: Phraser | None = None

    def check(self) -> None:
        """The structure, once, before anything runs."""
        problems = []
        if not self.table_makers:
            problems.append("no table maker")
        directions = [e.direction for e in self.evolvers]
        if len(set(directions)) != len(directions):
            problems.append(f"two evolvers share a direction: {directions}")
        if not self.evolvers:
            problems.append("no evolver")
        if problems:
            raise InvalidArgumentError("dream graph: " + "; ".join(problems))


Step = tuple[dict[str, Any], dict[str, Any]]


def rng_for(seed: int, round_no: int, node: str) -> np.random.Generator:
    return np.random.default_rng([seed, round_no, zlib.crc32(node.encode())])


def _tally(items: list[DreamItem], attr: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(pd.Series([getattr(i, attr) for i in items], dtype=object)
                                              .value_counts().items())}


# ---------------------------------------------------------------------- nodes
def make_tables(rt: "DreamRuntime", state: DreamState) -> Step:
    """Every table maker makes its share of the tables; rejected tables are kept with their reason."""
    config, makers = rt.agents.config, rt.agents.table_makers
    tables, rejected, usage = [], [], []
    for k, maker in enumerate(makers):
        share = config.tables // len(makers) + (1 if k < config.tables % len(makers) else 0)
        made = maker.make(share, rng_for(config.seed, 0, f"tables-{k}"))
        tables += made.tables
        rejected += [{"maker": maker.name, **r} for r in made.rejected]
        rt.folder.write_calls(0, maker.name, made.calls)
        usage.append(made.usage)
    if not tables:
        reasons = "; ".join(r["reason"] for r in rejected[:3]) or "the makers made none"
        raise TablineError(f"no table could be made ({reasons})")
    kinds = pd.Series([t.kind for t in tables]).value_counts().to_dict()
    return {"tables": [table_to_json(t) for t in tables]}, {
        "agent": ", ".join(m.name for m in makers), "rows_out": len(tables), "tokens": merge_usage(usage),
        "detail": {"rejected": len(rejected), "reasons": [r["reason"][:200] for r in rejected[:5]], "kinds": kinds}}


def seed_tasks(rt: "DreamRuntime", state: DreamState) -> Step:
    """Round 1's parents: seed tasks on the tables; task types a table cannot carry are counted by reason."""
    config = rt.agents.config
    tables = [table_from_json(t) for t in state["tables"]]
    result = rt.agents.task_maker.seed(tables, config.seed_count, rng_for(config.seed, 1, "seed"), round=1)
    reasons = pd.Series([s["reason"] for s in result.skipped], dtype=object).value_counts().head(5).to_dict()
    return {"parents": [i.to_json() for i in result.items]}, {
        "agent": rt.agents.task_maker.name, "rows_in": len(tables), "rows_out": len(result.items),
        "detail": {"by_task_type": _tally(result.items, "task_type"), "skipped": len(result.skipped),
                   "skip_reasons": reasons}}


def evolve(rt: "DreamRuntime", state: DreamState) -> Step:
    """The round's candidates: each evolver makes its share of ``per_round`` children of the parents."""
    config, r = rt.agents.config, state["round"]
    parents = [DreamItem.from_json(p) for p in state["parents"]]
    evolvers = rt.agents.evolvers
    candidates: dict[str, DreamItem] = {}
    skipped = 0
    for k, evolver in enumerate(evolvers):
        share = config.per_round // len(evolvers) + (1 if k < config.per_round % len(evolvers) else 0)
        out = evolver.evolve(parents, share, rng_for(config.seed, r, f"evolve-{evolver.direction}"), round=r)
        skipped += len(out.skipped)
        for item in out.items:
            candidates.setdefault(item.id, item)
    items = list(candidates.values())
    return {"candidates": [i.to_json() for i in items], "replies": [], "verdicts": []}, {
        "agent": "evolvers", "rows_in": len(parents), "rows_out": len(items),
        "detail": {"by_direction": _tally(items, "direction"), "by_task_type": _tally(items, "task_type"),
                   "skipped": skipped}}


def phrase(rt: "DreamRuntime", state: DreamState) -> Step:
    """The candidates' instructions in the phraser's words (an item it could not reword keeps the template's)."""
    items = [DreamItem.from_json(c) for c in state["candidates"]]
    out = rt.agents.phraser.phrase(items)
    rt.folder.write_calls(state["round"], rt.agents.phraser.name, out.calls)
    return {"candidates": [i.to_json() for i in out.items]}, {
        "agent": rt.agents.phraser.name, "rows_in": len(items), "rows_out": len(items) - len(out.failures),
        "tokens": out.usage, "detail": {"phrased": len(items) - len(out.failures), "kept_template": len(out.failures),
                                        "reasons": [f["reason"][:200] for f in out.failures[:5]]}}


def answer(rt: "DreamRuntime", state: DreamState) -> Step:
    """The target model answers every candidate (a reply, or a recorded failure)."""
    items = [DreamItem.from_json(c) for c in state["candidates"]]
    answers = rt.agents.answerer.answer(items)
    rt.folder.write_calls(state["round"], rt.agents.answerer.name, answers.calls)
    failed = sum(1 for a in answers.replies if a.error)
    prose = sum(1 for a in answers.replies if not a.structured and not a.error)
    return {"replies": [a.to_json() for a in answers.replies]}, {
        "agent": rt.agents.answerer.name, "rows_in": len(items), "rows_out": len(items) - failed,
        "tokens": answers.usage, "detail": {"failed": failed, "prose_replies": prose}}


def judge(rt: "DreamRuntime", state: DreamState) -> Step:
    """Every reply checked against the executed answer (free-form ones by the rubric judge, if any)."""
    items = [DreamItem.from_json(c) for c in state["candidates"]]
    replies = [Reply(**r) for r in state["replies"]]
    verdicts, extra = rt.agents.judge.judge(items, replies)
    rt.folder.write_calls(state["round"], rt.agents.judge.name, extra.get("calls", []))
    tally = pd.Series([v.verdict for v in verdicts], dtype=object).value_counts().to_dict()
    return {"verdicts": [v.to_json() for v in verdicts]}, {
        "agent": rt.agents.judge.name, "rows_in": len(items), "rows_out": len(verdicts),
        "tokens": extra.get("usage"), "detail": {"by_verdict": {str(k): int(v) for k, v in tally.items()}}}


def select(rt: "DreamRuntime", state: DreamState) -> Step:
    """Keep the weaknesses (all items when there is no target), write the round's file, and set the next
    round's parents — or the stop reason."""
    config, r = rt.agents.config, state["round"]
    filtered = rt.agents.answerer is not None
    records, kept_items = [], []
    for k, cand in enumerate(state["candidates"]):
        verdict = state["verdicts"][k] if filtered else None
        weak = (not filtered or (verdict["verdict"] not in UNSCORED and verdict["score"] < config.threshold))
        records.append({"item": cand, "reply": state["replies"][k] if filtered else None, "verdict": verdict,
                        "kept": weak})
        if weak:
            kept_items.append(cand)
    rt.folder.write_round(r, records)  # before the checkpoint that counts this round
    items = [DreamItem.from_json(c) for c in state["candidates"]]
    kept = [DreamItem.from_json(c) for c in kept_items]
    summary = {"round": r, "items": len(items), "kept": len(kept), "filtered": filtered,
               "by_task_type": _tally(items, "task_type"), "by_direction": _tally(items, "direction"),
               "kept_by_task_type": _tally(kept, "task_type"), "kept_by_direction": _tally(kept, "direction"),
               "by_verdict": ({str(k): int(v) for k, v in pd.Series([v["verdict"] for v in state["verdicts"]],
                                                                    dtype=object).value_counts().items()}
                              if filtered else {})}
    stop = ("rounds" if r >= config.rounds else "nothing to evolve" if not items else
            "no weaknesses" if not kept else "")
    return {"round": r + 1, "parents": kept_items, "candidates": [], "replies": [], "verdicts": [],
            "history": [*state["history"], summary], "stop": stop}, {
        "agent": "weakness selection" if filtered else "unfiltered", "rows_in": len(items), "rows_out": len(kept),
        "detail": {k: v for k, v in summary.items() if k != "round"}}


# ---------------------------------------------------------------------- builder
@dataclass
class DreamRuntime:
    """What the nodes work with: the agents and the run folder."""

    agents: DreamAgents
    folder: DreamFolder


def build_dream_graph(runtime: DreamRuntime, *, run_id: str,
                      on_event: Callable[[dict], None] | None = None) -> StateGraph:
    """The loop of ``runtime``'s agents, uncompiled. Every node execution appends one event to the run
    folder's trace; ``on_event`` also receives it, with the state after the node."""
    runtime.agents.check()

    def context(state: Mapping[str, Any], update: dict, info: dict) -> dict:
        return {"round": state.get("round", 1), "tokens": info.pop("tokens", None)}

    def record(event: dict, after: dict | None) -> None:
        runtime.folder.append_event(event)
        if on_event is not None and after is not None:
            on_event({**event, "state": after})

    graph = StateGraph(DreamState)
    nodes: list[tuple[str, Callable]] = [("make_tables", make_tables), ("seed_tasks", seed_tasks), ("evolve", evolve)]
    if runtime.agents.phraser is not None:
        nodes.append(("phrase", phrase))
    if runtime.agents.answerer is not None:
        nodes += [("answer", answer), ("judge", judge)]
    nodes.append(("select", select))
    for name, body in nodes:
        graph.add_node(name, traced(name, partial(body, runtime), run_id=run_id, context=context, record=record))
    graph.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in zip(nodes, nodes[1:]):
        graph.add_edge(a, b)
    graph.add_conditional_edges("select", lambda s: END if s.get("stop") else "evolve", {END: END, "evolve": "evolve"})
    return graph


__all__ = ["DreamAgents", "DreamRuntime", "DreamState", "build_dream_graph", "initial_state", "mermaid", "rng_for"]
