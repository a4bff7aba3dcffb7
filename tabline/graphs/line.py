"""The assembly line as a LangGraph `StateGraph` — its state, its nodes and its builder, top to bottom:

    coordinator → station_<component> … (one per plan component, by precedence level; a level's stations
    run side by side) → judges → sanity [→ qc_<stage> …] → objective → diversity [→ reflect] → bandit
    → coordinator … until a stop reason is set [bandit → align → coordinator every k-th batch]

``qc_<stage>`` are the team's own QC stages, in order; ``reflect`` (DATE's tree feedback) is there when an
LLM worker uses reflection; ``align`` (TabGRAA on the line's verdicts) when the line has ``align_every=k``.

Each node is a function ``(runtime, state) -> (partial state, trace info)`` that calls into the agents
(`tabline.agents`), the QC chain (`tabline.qc`) or training (`tabline.training`) through their protocols;
the builder binds it to the run (`tabline.graphs.line_runtime.LineRuntime`: agents, run folder, caches)
and `tabline.graphs._trace.traced` turns each execution into one event of the run's ``trace.jsonl``
(node, agent, arm, batch, rows in/out, rejections, tokens, seconds).

The state is checkpointed after every step and stays the same size however long the run: the batch travels
as Arrow IPC bytes (conditions, then one blob per station, merged by `merge_parts`), the accepted rows live
in the run folder's batch files (batch ids run 1..``batches``), and the run's history is kept as per-arm
totals — each batch's own record is its ``bandit`` event in the trace.

Example:
    >>> merge_parts({"a": b"1"}, {"b": b"2"})
    {'a': b'1', 'b': b'2'}
    >>> merge_parts({"a": b"1"}, {RESET: b""})
    {}
"""
from __future__ import annotations

import math
import time
from functools import partial
from typing import Annotated, Any, Callable, Mapping, TypedDict

import numpy as np
import pandas as pd
from langgraph.graph import END, START, StateGraph

from tabline.agents.bandit import PartitionBandit, blend_reward
from tabline.agents.llm.calls import merge_usage
from tabline.agents.roles import FillContext
from tabline.graphs._trace import mermaid, traced
from tabline.graphs.line_runtime import LineAgents, LineRuntime, frame_to_arrow, seed_for
from tabline.qc.chain import Verdicts
from tabline.qc.verdicts import StageResult
from tabline.training.tabgraa import line_rewards, row_scores

RESET = "__reset__"  # the coordinator's {RESET: ...} empties a channel merged by `merge_parts`


# ---------------------------------------------------------------------- state
def merge_parts(old: dict | None, new: dict) -> dict:
    """Reducer of the ``parts`` and ``failed`` channels: stations add their entries; {RESET: ...} clears."""
    if RESET in new:
        return {k: v for k, v in new.items() if k != RESET}
    return {**(old or {}), **new}


class LineState(TypedDict, total=False):
    """The graph's state, checkpointed after every step; its size does not grow with the run."""

    n_rows: int
    quotas: list[float]
    # the batch being made (replaced by the next one)
    batch_id: int
    rows: int
    arm: int
    source: str  # who set the conditions: "anchors", "none" or an evolver's name
    batch_started: float
    conditions: bytes  # Arrow IPC (tabline.graphs.line_runtime.frame_to_arrow)
    parts: Annotated[dict[str, bytes], merge_parts]  # station -> its columns, Arrow IPC
    failed: Annotated[dict[str, dict[str, str]], merge_parts]  # station -> row position -> why it is unfilled
    scores: dict[str, list[float]]
    judge_notes: dict[str, dict[str, str]]  # judge -> row position -> its note on the row
    verdicts: dict[str, list]
    gain: float | None  # the batch's coverage gain (None: not measured, see undercovered)
    undercovered: float | None  # None: the line measures no coverage (one arm, no diversity threshold)
    kept: int
    quality: float
    # the run so far
    reflection: dict[str, list[dict[str, Any]]]  # arm -> DATE's negative examples for the next prompt
    bandit: dict[str, Any]
    batches: int  # batches finished; their ids are 1..batches, each with its files in the run folder
    accepted: int
    generated: int
    accepted_by_arm: list[int]
    batches_by_arm: list[int]
    generated_by_arm: list[int]
    reward_by_arm: list[float]  # sum of each batch's bandit reward (rounded as in the trace)
    sources: dict[str, int]  # batches per source of conditions
    counts: dict[str, dict[str, int]]  # watched column -> class -> accepted rows
    rejected: dict[str, dict[str, int]]  # stage -> reason kind -> rows
    rejected_rows: int
    idle: int
    elapsed_s: float
    stop: str
    aligned: int  # TabGRAA steps taken (align_every)
    lm_dir: str  # run-folder name of the current aligned LM ("" / absent: model/, the SFT model)


def initial_state(agents: LineAgents, n_rows: int) -> LineState:
    """The state before the first batch of a run that asks for ``n_rows`` accepted rows."""
    arms = [a.name for a in agents.plan.arms]
    team = agents.team
    bandit = PartitionBandit(arms=arms, policy=team.bandit.policy, c=team.bandit.c, seed=team.seed)
    zeros = [0] * len(arms)
    return {"n_rows": n_rows, "batches": 0, "accepted": 0, "generated": 0, "accepted_by_arm": list(zeros),
            "batches_by_arm": list(zeros), "generated_by_arm": list(zeros), "reward_by_arm": [0.0] * len(arms),
            "sources": {}, "counts": {}, "rejected": {}, "rejected_rows": 0, "bandit": bandit.model_dump(),
            "idle": 0, "elapsed_s": 0.0, "stop": "", "quotas": agents.coordinator.quotas(n_rows)}


def station_node_name(component: str) -> str:
    return f"station_{component}"


def stage_node_name(stage: str) -> str:
    return f"qc_{stage}"


Step = tuple[dict[str, Any], dict[str, Any]]  # (partial state update, trace info)


# ---------------------------------------------------------------------- nodes
def coordinator(rt: LineRuntime, state: LineState) -> Step:
    """The next batch: its arm (the bandit) and its conditions (an evolver's, or the arm's anchors)."""
    agents, team = rt.agents, rt.agents.team
    batch_id = state["batches"] + 1
    need = state["n_rows"] - state["accepted"]
    yield_so_far = state["accepted"] / state["generated"] if state["generated"] else 1.0
    rows = min(team.rows_per_batch(len(rt.agents.plan.arms)), max(32, math.ceil(1.2 * need / max(yield_so_far, 0.05))))
    bandit = PartitionBandit(**state["bandit"])
    decision = agents.coordinator.turn(batch_id=batch_id, rows=rows, bandit=bandit,
                                       accepted_by_arm=state["accepted_by_arm"], quotas=state["quotas"],
                                       counts=state["counts"], accepted=state["accepted"], yield_estimate=yield_so_far)
    for evolver, calls in decision.calls.items():
        rt.folder.write_llm_calls(batch_id, evolver, calls)
    rows = len(decision.conditions)
    update = {"batch_id": batch_id, "rows": rows, "arm": decision.arm, "source": decision.source,
              "conditions": frame_to_arrow(decision.conditions), "parts": {RESET: b""}, "failed": {RESET: {}},
              "bandit": bandit.model_dump(), "batch_started": time.time()}
    return update, {"agent": "coordinator", "arm": decision.arm, "rows_out": rows, "tokens": merge_usage(decision.usage),
                    "detail": {"conditions_from": decision.source, "columns": list(decision.conditions.columns)}}


def station(rt: LineRuntime, component: str, state: LineState) -> Step:
    """One plan component's worker fills its columns; rows it could not fill are listed in ``failed``."""
    agents, batch_id, arm = rt.agents, state["batch_id"], state["arm"]
    batch = rt.batch(state)
    worker = agents.workers[component]
    negatives = state.get("reflection", {}).get(str(arm), []) if component in agents.reflective else []
    context = FillContext(rule=agents.plan.arms[arm].rule, arm_rows=rt.arm_rows(arm), negatives=negatives)
    filled = worker.fill(batch, seed=seed_for(agents.team.seed, batch_id, rt.component_index(component)),
                         context=context)
    rt.look_ahead(component, state, batch, context)  # on Ray: the next batches' fills start now (same rows)
    own = filled.frame[[c for c in filled.frame.columns if c not in batch.columns]]
    update: dict[str, Any] = {"parts": {component: frame_to_arrow(own)}}
    if filled.failures:
        update["failed"] = {component: {str(i): why for i, why in filled.failures.items()}}
    rt.folder.write_llm_calls(batch_id, component, filled.calls)
    detail: dict[str, Any] = {"failed_rows": len(filled.failures), "columns": list(own.columns)}
    if component in agents.reflective:
        detail["negatives_shown"] = len(negatives)
    return update, {"agent": worker.name, "rows_in": len(batch), "rows_out": len(own) - len(filled.failures),
                    "tokens": filled.usage, "detail": detail}


def judges(rt: LineRuntime, state: LineState) -> Step:
    """Every judge scores every row; a judge's notes and LLM calls are kept."""
    batch = rt.batch(state)
    scores: dict[str, list[float]] = {}
    notes: dict[str, dict[str, str]] = {}  # judge -> row position -> what it said (kept if it rejects)
    usage = []
    for judge in rt.agents.judges:
        verdict = judge.judge(batch)
        for k, v in verdict.scores.items():
            scores[k] = v.astype(float).tolist()
        if verdict.notes:
            notes[judge.name] = {str(i): why for i, why in verdict.notes.items()}
        rt.folder.write_llm_calls(state["batch_id"], f"judge_{judge.name}", verdict.calls)
        usage.append(verdict.usage)
    means = {k: round(float(np.nanmean(v)), 4) if np.isfinite(v).any() else None for k, v in scores.items()}
    return {"scores": scores, "judge_notes": notes}, {
        "agent": "judges", "rows_in": len(batch), "rows_out": len(batch), "tokens": merge_usage(usage),
        "detail": {"judges": [j.name for j in rt.agents.judges], "mean_scores": means}}


def sanity(rt: LineRuntime, state: LineState) -> Step:
    """QC stage 1 on the whole batch; rows a worker could not fill are rejected first, with its reason."""
    batch = rt.batch(state)
    verdicts = Verdicts.start(batch.index)
    failed = {int(pos): why for _, rows in sorted(state.get("failed", {}).items()) for pos, why in rows.items()}
    if failed:
        reasons = pd.Series("", index=batch.index, dtype=object)
        for pos, why in failed.items():
            if not reasons.iloc[pos]:
                reasons.iloc[pos] = why
        verdicts.apply(StageResult.from_reasons("worker", reasons))
    keys, _ = rt.pool.upto(state["batches"])
    verdicts.apply(rt.agents.qc.sanity(batch, accepted_keys=keys))
    return _qc_out(verdicts, "sanity", len(batch))


def stage(rt: LineRuntime, name: str, state: LineState) -> Step:
    """An extra QC stage of the team's: it sees the rows still passing; the rows it rejects carry its name."""
    batch = rt.batch(state)
    verdicts = Verdicts.from_dict(state["verdicts"], batch.index)
    rows = batch.loc[verdicts.passing.to_numpy()]
    verdicts.apply(StageResult.from_reasons(name, rt.agents.stages[name].check(rows)))
    update, info = _qc_out(verdicts, name, len(rows))
    return update, {**info, "agent": name}


def objective(rt: LineRuntime, state: LineState) -> Step:
    """QC stage 2: the judges' scores against their thresholds; a judge's note goes with the rows it rejected."""
    batch_id, index = state["batch_id"], pd.RangeIndex(state["rows"])
    verdicts = Verdicts.from_dict(state["verdicts"], index)
    scores = {k: pd.Series(v, index=index) for k, v in state["scores"].items()}
    before = int(verdicts.passing.sum())
    result = rt.agents.qc.objective(scores, verdicts.passing, seed=seed_for(rt.agents.team.seed, batch_id, 13))
    for name, said in (state.get("judge_notes") or {}).items():
        for idx in result.reason.index:
            why = said.get(str(idx))
            if why and f"judge {name!r}" in result.reason[idx]:
                result.reason[idx] = f"{result.reason[idx]} — {why}"
    verdicts.apply(result)
    return _qc_out(verdicts, "objective", before)


def diversity(rt: LineRuntime, state: LineState) -> Step:
    """QC stage 3, then the batch is settled: its accepted and rejected rows go to the run folder."""
    agents, batch_id = rt.agents, state["batch_id"]
    batch = rt.batch(state)
    verdicts = Verdicts.from_dict(state["verdicts"], batch.index)
    before = int(verdicts.passing.sum())
    _, pool_x = rt.pool.upto(state["batches"])
    result, gain, under = agents.qc.diversity(batch, verdicts.passing, pool_x)
    verdicts.apply(result)
    room = state["n_rows"] - state["accepted"]
    kept = verdicts.passing[verdicts.passing].index
    if len(kept) > room:  # the run needs fewer rows: the rest are kept, marked, never dropped
        verdicts.apply(StageResult.from_reasons("surplus", pd.Series(
            f"surplus: the run already has the {state['n_rows']} rows it asked for", index=kept[room:])))
    ok = verdicts.passing
    accepted = _with_ids(agents, agents.schema.format(batch.loc[ok].reset_index(drop=True)), state["accepted"])
    rejected = batch.loc[~ok].reset_index(drop=True).assign(
        batch_id=batch_id, arm=agents.plan.arms[state["arm"]].name,
        stage=verdicts.stage[~ok].to_numpy(), reason=verdicts.reason[~ok].to_numpy())
    rt.folder.write_batch(batch_id, accepted, rejected)
    if agents.alignment is not None:  # the TabGRAA step ranks rows by these
        per_row = row_scores(state["scores"], len(batch))
        rt.folder.write_scores(batch_id, pd.DataFrame({
            "accepted": np.r_[np.ones(int(ok.sum()), bool), np.zeros(int((~ok).sum()), bool)],
            "score": np.r_[per_row[ok.to_numpy()], per_row[~ok.to_numpy()]],
            "stage": np.r_[np.full(int(ok.sum()), ""), verdicts.stage[~ok].astype(str).to_numpy()]}))
    rt.pool.remember(batch_id, accepted)
    quality = float(verdicts.quality[ok].mean()) if ok.any() else 0.0
    update = _qc_out(verdicts, "diversity", before)[0]
    update.update({"gain": gain, "undercovered": under, "kept": int(ok.sum()), "quality": quality})
    return update, {"agent": "diversity", "rows_in": before, "rows_out": int(ok.sum()),
                    "rejected": {k: v for k, v in verdicts.counts().items() if k in ("diversity", "surplus")},
                    "detail": {"coverage_gain": None if gain is None else round(gain, 6),
                               "undercovered_share": None if under is None else round(under, 4)}}


def reflect(rt: LineRuntime, state: LineState) -> Step:
    """DATE's reflection: groups of this batch's accepted rows that lowered a tree's validation score
    become the arm's negative examples for the reflective LLM workers' next prompt."""
    arm = state["arm"]
    accepted = rt.folder.read_accepted([state["batch_id"]]) if state["kept"] else pd.DataFrame()
    negatives = rt.agents.reflector.review(arm, accepted) if len(accepted) else []
    return {"reflection": {**state.get("reflection", {}), str(arm): negatives}}, {
        "agent": "reflection", "rows_in": len(accepted), "rows_out": len(accepted),
        "detail": {"negative_groups": len(negatives), "paths": [g["path"] for g in negatives]}}


def bandit(rt: LineRuntime, state: LineState) -> Step:
    """The batch's reward updates its arm; the run's totals move on; a stop reason ends the run."""
    team, arm, rows, kept = rt.agents.team, state["arm"], state["rows"], state["kept"]
    reward = blend_reward(kept / rows, state["quality"], state["undercovered"], team.bandit.weights)
    policy = PartitionBandit(**state["bandit"])
    policy.update(arm, reward)
    rejected = {s: dict(v) for s, v in state["rejected"].items()}
    for where, kinds in Verdicts.from_dict(state["verdicts"], pd.RangeIndex(rows)).counts().items():
        for k, n in kinds.items():
            rejected.setdefault(where, {})[k] = rejected.get(where, {}).get(k, 0) + n
    accepted, batches = state["accepted"] + kept, state["batches"] + 1
    elapsed = state["elapsed_s"] + max(0.0, time.time() - state.get("batch_started", time.time()))
    idle = 0 if kept else state["idle"] + 1
    stop = ("target" if accepted >= state["n_rows"] else
            "batches" if team.max_batches and batches >= team.max_batches else
            "seconds" if team.max_seconds and elapsed >= team.max_seconds else
            "stalled" if idle >= team.patience else "")
    sources = dict(state["sources"])
    sources[state["source"]] = sources.get(state["source"], 0) + 1
    update = {"bandit": policy.model_dump(), "accepted": accepted, "batches": batches,
              "generated": state["generated"] + rows, "accepted_by_arm": _add(state["accepted_by_arm"], arm, kept),
              "batches_by_arm": _add(state["batches_by_arm"], arm, 1),
              "generated_by_arm": _add(state["generated_by_arm"], arm, rows),
              "reward_by_arm": _add(state["reward_by_arm"], arm, round(reward, 4)), "sources": sources,
              "counts": _class_counts(rt, state), "rejected": rejected,
              "rejected_rows": state["rejected_rows"] + rows - kept, "idle": idle, "elapsed_s": elapsed, "stop": stop}
    return update, {"agent": "bandit", "arm": arm, "rows_in": rows, "rows_out": kept,
                    "detail": {"reward": round(reward, 4), "yield": round(kept / rows, 4), "stop": stop,
                               "accepted_total": accepted, "source": state["source"],
                               "gain": None if state["gain"] is None else round(state["gain"], 6)}}


def align(rt: LineRuntime, state: LineState) -> Step:
    """TabGRAA on the line's own verdicts: the last k batches' rows, ranked by QC, align the LM."""
    al, folder = rt.agents.alignment, rt.folder
    batch_ids = al.batch_ids(state["batches"])
    frames = [folder.read_accepted(batch_ids), folder.read_rejected(batch_ids)]
    scores = pd.concat([f for _, f in folder.read_batches("scores", batch_ids)], ignore_index=True)
    acc = scores[scores.accepted]
    rej = scores[~scores.accepted].reset_index(drop=True)
    judged = (rej.stage != "surplus").to_numpy()  # surplus rows were fine, just not needed
    rejected = frames[1].loc[judged] if len(frames[1]) else frames[1]
    frame = pd.concat([f[rt.agents.schema.names] for f in (frames[0], rejected) if len(f)], ignore_index=True)
    rewards = line_rewards(acc.score.to_numpy(), rej.score.to_numpy()[judged])
    index = int(state.get("aligned", 0))
    metrics = al.step(frame, rewards, index)
    update: dict[str, Any] = {"aligned": index + (1 if metrics.get("steps") else 0)}
    if metrics.get("steps"):
        name = f"model-aligned-{state['batch_id']:06d}"
        al.save(folder.path / name)
        update["lm_dir"] = name
    return update, {"agent": f"TabGRAA ({al.config.loss})", "rows_in": len(frame), "rows_out": metrics.get("rows"),
                    "detail": {**metrics, "batches": batch_ids, "model": update.get("lm_dir")}}


def _qc_out(verdicts: Verdicts, stage_name: str, rows_in: int) -> Step:
    counts = verdicts.counts().get(stage_name, {})
    return {"verdicts": verdicts.to_dict()}, {"agent": stage_name, "rows_in": rows_in,
                                              "rows_out": int(verdicts.passing.sum()),
                                              "rejected": {stage_name: counts} if counts else {}}


def _add(totals: list, arm: int, amount: float) -> list:
    out = list(totals)
    out[arm] += amount
    return out


def _class_counts(rt: LineRuntime, state: LineState) -> dict[str, dict[str, int]]:
    """Accepted rows per class of each column an evolver watches, this batch's added."""
    counts = {c: dict(v) for c, v in state["counts"].items()}
    columns = rt.agents.coordinator.watched
    if not columns or not state["kept"]:
        return counts
    frame = rt.folder.read_accepted([state["batch_id"]])
    for col in columns:
        for k, n in frame[col].astype(str).value_counts().items():
            counts.setdefault(col, {})[k] = counts.get(col, {}).get(k, 0) + int(n)
    return counts


def _with_ids(agents: LineAgents, frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """Identifier columns numbered across the whole run (each batch's LM call counts from 1)."""
    for name, top in agents.id_tops.items():
        if name in frame:
            seq = np.arange(start + 1, start + len(frame) + 1)
            frame[name] = [f"syn-{i:09d}" for i in seq] if top is None else seq + int(top)
    return frame


# ---------------------------------------------------------------------- builder
def build_line_graph(runtime: LineRuntime, *, run_id: str,
                     on_event: Callable[[dict], None] | None = None) -> StateGraph:
    """The line of ``runtime``'s agents as an uncompiled graph. Every node execution appends one event to the
    run folder's trace; ``on_event`` also receives it, with the state after the node (None when it failed)."""
    agents = runtime.agents
    arms = [a.name for a in agents.plan.arms]

    def context(state: Mapping[str, Any], update: dict, info: dict) -> dict:
        arm = info.pop("arm", state.get("arm"))
        return {"batch_id": update.get("batch_id", state.get("batch_id")),
                "arm": arms[arm] if arm is not None else None,
                "rejected": info.pop("rejected", {}), "tokens": info.pop("tokens", None)}

    def record(event: dict, after: dict | None) -> None:
        runtime.folder.append_event(event)
        if on_event is not None:
            on_event({**event, "state": after})

    graph = StateGraph(LineState)

    def add(name: str, body: Callable[[LineState], Step]) -> str:
        graph.add_node(name, traced(name, body, run_id=run_id, context=context, record=record))
        return name

    graph.add_edge(START, add("coordinator", partial(coordinator, runtime)))
    levels = [[add(station_node_name(c), partial(station, runtime, c)) for c in level]
              for level in agents.plan.levels()]
    chain = [add("judges", partial(judges, runtime)), add("sanity", partial(sanity, runtime)),
             *[add(stage_node_name(s), partial(stage, runtime, s)) for s in agents.stages],
             add("objective", partial(objective, runtime)), add("diversity", partial(diversity, runtime)),
             *([add("reflect", partial(reflect, runtime))] if agents.reflector is not None else []),
             add("bandit", partial(bandit, runtime))]
    previous = ["coordinator"]
    for current in [*levels, [chain[0]]]:
        for node in current:
            graph.add_edge(previous if len(previous) > 1 else previous[0], node)  # a list waits for all
        previous = current
    for a, b in zip(chain, chain[1:]):
        graph.add_edge(a, b)
    routes = {END: END, "coordinator": "coordinator"}
    if agents.alignment is not None:  # TabGRAA after every k-th batch, then back to the coordinator
        graph.add_edge(add("align", partial(align, runtime)), "coordinator")
        routes["align"] = "align"
    alignment = agents.alignment
    graph.add_conditional_edges(
        "bandit", lambda s: END if s.get("stop") else "align" if alignment and alignment.due(s) else "coordinator",
        routes)
    return graph


__all__ = ["LineState", "build_line_graph", "initial_state", "merge_parts", "mermaid", "stage_node_name",
           "station_node_name"]
