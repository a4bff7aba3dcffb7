"""What each node of the line does. `tabline.graphs.line` wires these into a LangGraph `StateGraph`.

Every method takes the graph state and returns ``(partial state update, trace info)``; the graph wrapper
turns the info into a trace event. The batch travels through the state as JSON (small: one batch), the
accepted rows live in the run folder's batch files, and the accepted pool's row keys and features are a
cache rebuilt from those files whenever it disagrees with the checkpointed list of batches.
"""
from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd

from tabline.agents.bandit import PartitionBandit, blend_reward
from tabline.agents.coordinator import Coordinator
from tabline.agents.llm.calls import merge_usage
from tabline.agents.llm.worker import FillContext, LLMWorker
from tabline.agents.roles import Judge, QCStage, Worker
from tabline.agents.team import Team
from tabline.line.aligning import line_rewards, row_scores
from tabline.line.folder import RunFolder
from tabline.qc.chain import QCChain, Verdicts
from tabline.qc.sanity import row_keys
from tabline.qc.verdicts import StageResult
from tabline.schema import Schema

RESET = "__reset__"


def frame_to_json(df: pd.DataFrame) -> str:
    """A DataFrame as JSON text (values as Python scalars, missing as null) for the graph state."""
    obj = df.astype(object).where(df.notna(), None)
    return json.dumps({"columns": list(map(str, df.columns)), "data": obj.to_numpy().tolist()}, default=_scalar)


def frame_from_json(text: str) -> pd.DataFrame:
    data = json.loads(text)
    return pd.DataFrame(data["data"], columns=data["columns"], dtype=object) if data["data"] else \
        pd.DataFrame(columns=data["columns"], dtype=object)


def _scalar(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def seed_for(*parts: int) -> int:
    """A 31-bit seed from the run seed, the batch and the station: independent streams, reproducible."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


class LineRuntime:
    """The fitted line: team, schema, coordinator, one worker per component, judges and the QC chain."""

    def __init__(self, *, team: Team, schema: Schema, coordinator: Coordinator, workers: dict[str, Worker],
                 judges: list[Judge], qc: QCChain, id_tops: dict[str, Any], reflector: Any = None,
                 alignment: Any = None, stages: dict[str, QCStage] | None = None):
        self.team, self.schema, self.coordinator = team, schema, coordinator
        self.workers, self.judges, self.qc, self.id_tops = workers, judges, qc, id_tops
        self.stages = dict(stages or {})  # extra QC stages (yours), by name, in the order they run after sanity
        self.reflector = reflector  # DATE's tree feedback for LLM workers (None = off)
        self.alignment = alignment  # TabGRAA every k batches (a `tabline.line.aligning.LineAlignment`, None = off)
        self.folder: RunFolder | None = None
        self._pool: dict = {}  # batch id -> (keys, features); "stack" -> (batch ids, all keys, all features)

    @property
    def plan(self):
        return self.coordinator.plan

    # ------------------------------------------------------------------ state helpers
    def initial_state(self, n_rows: int) -> dict[str, Any]:
        arms = [a.name for a in self.plan.arms]
        bandit = PartitionBandit(arms=arms, policy=self.team.bandit.policy, c=self.team.bandit.c, seed=self.team.seed)
        return {
            "n_rows": n_rows, "batches": 0, "accepted": 0, "generated": 0, "accepted_batches": [],
            "accepted_by_arm": [0] * len(arms), "counts": {}, "rejected": {}, "rejected_rows": 0,
            "bandit": bandit.model_dump(), "idle": 0, "elapsed_s": 0.0, "stop": "", "history": [],
            "quotas": self.coordinator.quotas(n_rows),
        }

    def batch_frame(self, state: dict[str, Any]) -> pd.DataFrame:
        """The current batch: conditions plus every station's columns so far, in schema order. Its index is
        a RangeIndex, so row labels are positions (the keys of ``failed`` and ``judge_notes``)."""
        parts = [frame_from_json(state["conditions"])]
        parts += [frame_from_json(v) for k, v in sorted(state.get("parts", {}).items()) if k != RESET]
        frame = pd.concat([p.reset_index(drop=True) for p in parts], axis=1)
        frame = frame.loc[:, ~frame.columns.duplicated()]
        return frame[[c for c in self.schema.names if c in frame.columns]]

    def pool(self, batch_ids: list[int]) -> tuple[set[int], np.ndarray]:
        """Row keys and diversity features of the accepted rows of ``batch_ids`` (cached; rebuilt from files)."""
        ids = tuple(batch_ids)
        cached = self._pool.get("stack")
        if cached is not None and cached[0] == ids:
            return cached[1], cached[2]
        if cached is not None and cached[0] == ids[:-1] and ids[-1] in self._pool:
            keys, x = set(cached[1]), cached[2]  # one more batch: extend instead of rebuilding
            new_keys, new_x = self._pool[ids[-1]]
            keys.update(new_keys.tolist())
            x = np.vstack([x, new_x]) if len(new_x) else x
        else:
            missing = [b for b in ids if b not in self._pool]
            for b, frame in self.folder.read_batches("accepted", missing):
                self._remember(b, frame)
            keys = set()
            for b in ids:
                keys.update(self._pool[b][0].tolist())
            xs = [self._pool[b][1] for b in ids if len(self._pool[b][1])]
            x = np.vstack(xs) if xs else self.qc.features(pd.DataFrame(columns=self.schema.names))
        for stale in [k for k in self._pool if k != "stack" and k not in ids]:
            del self._pool[stale]  # written by a step the checkpoint does not know (a killed run)
        self._pool["stack"] = (ids, keys, x)
        return keys, x

    def _remember(self, batch_id: int, frame: pd.DataFrame) -> None:
        if len(frame):
            self._pool[batch_id] = (row_keys(frame, self.schema).to_numpy(), self.qc.features(frame))
        else:
            self._pool[batch_id] = (np.empty(0, dtype=np.uint64), np.empty((0, 0)))

    # ------------------------------------------------------------------ nodes
    def coordinator_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        team = self.team
        batch_id = state["batches"] + 1
        need = state["n_rows"] - state["accepted"]
        yield_so_far = state["accepted"] / state["generated"] if state["generated"] else 1.0
        rows = min(team.batch_rows, max(32, math.ceil(1.2 * need / max(yield_so_far, 0.05))))
        bandit = PartitionBandit(**state["bandit"])
        decision = self.coordinator.turn(batch_id=batch_id, rows=rows, bandit=bandit,
                                         accepted_by_arm=state["accepted_by_arm"], quotas=state["quotas"],
                                         counts=state["counts"], accepted=state["accepted"],
                                         yield_estimate=yield_so_far)
        rows = len(decision.conditions)
        update = {"batch_id": batch_id, "rows": rows, "arm": decision.arm, "source": decision.source,
                  "conditions": frame_to_json(decision.conditions), "parts": {RESET: ""}, "failed": {RESET: ""},
                  "bandit": bandit.model_dump(), "batch_started": time.time()}
        llm = [ev for ev in self.coordinator.evolvers if hasattr(ev, "usage")]
        for ev in llm:
            if self.folder is not None:
                self.folder.write_llm_calls(batch_id, ev.name, ev.last_calls)
        return update, {"agent": "coordinator", "arm": decision.arm, "rows_out": rows,
                        "tokens": merge_usage([ev.usage.take() for ev in llm]),
                        "detail": {"conditions_from": decision.source, "columns": list(decision.conditions.columns)}}

    def station_node(self, name: str, state: dict[str, Any]) -> tuple[dict, dict]:
        batch = self.batch_frame(state)
        worker = self.workers[name]
        index = [c.name for c in self.plan.components].index(name)
        seed = seed_for(self.team.seed, state["batch_id"], index)
        update: dict[str, Any] = {}
        info: dict[str, Any] = {"agent": worker.name, "rows_in": len(batch)}
        if isinstance(worker, LLMWorker):
            arm = state["arm"]
            negatives = state.get("reflection", {}).get(str(arm), []) if self.team.worker_for(worker.columns[0]).reflection else []
            context = FillContext(rule=self.plan.arms[arm].rule,
                                  arm_rows=self.coordinator.real.iloc[self.coordinator.partitions.members[arm]],
                                  negatives=negatives)
            out = worker.fill(batch, seed=seed, context=context)
            update["failed"] = {name: {str(i): why for i, why in worker.last_failures.items()}}
            if self.folder is not None:
                self.folder.write_llm_calls(state["batch_id"], name, worker.last_calls)
            info["tokens"] = worker.usage.take()
            info["detail"] = {"failed_rows": len(worker.last_failures), "negatives_shown": len(negatives)}
        else:
            out = worker.fill(batch, seed=seed)
        own = out[[c for c in out.columns if c not in batch.columns]]
        update["parts"] = {name: frame_to_json(own)}
        info["rows_out"] = len(own) - len(getattr(worker, "last_failures", {}) or {})
        info.setdefault("detail", {})["columns"] = list(own.columns)
        return update, info

    def judges_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        batch = self.batch_frame(state)
        scores: dict[str, list[float]] = {}
        notes: dict[str, dict[str, str]] = {}  # judge -> row position -> what it said (kept if it rejects)
        usage = []
        for judge in self.judges:
            verdict = judge.judge(batch)
            for k, v in verdict.scores.items():
                scores[k] = v.astype(float).tolist()
            if verdict.notes:
                notes[judge.name] = {str(i): why for i, why in verdict.notes.items()}
            if verdict.calls and self.folder is not None:
                self.folder.write_llm_calls(state["batch_id"], f"judge_{judge.name}", verdict.calls)
            if verdict.usage:
                usage.append(verdict.usage)
        means = {k: round(float(np.nanmean(v)), 4) if np.isfinite(v).any() else None for k, v in scores.items()}
        return {"scores": scores, "judge_notes": notes}, {
            "agent": "judges", "rows_in": len(batch), "rows_out": len(batch), "tokens": merge_usage(usage),
            "detail": {"judges": [j.name for j in self.judges], "mean_scores": means}}

    def sanity_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        batch = self.batch_frame(state)
        verdicts = Verdicts.start(batch.index)
        failed = {int(pos): why for name, rows in sorted(state.get("failed", {}).items()) if name != RESET
                  for pos, why in rows.items()}
        if failed:  # rows an LLM worker could not fill: rejected first, with the worker's reason
            reasons = pd.Series("", index=batch.index, dtype=object)
            for pos, why in failed.items():
                if not reasons.iloc[pos]:
                    reasons.iloc[pos] = why
            verdicts.apply(StageResult.from_reasons("worker", reasons))
        keys, _ = self.pool(state["accepted_batches"])
        verdicts.apply(self.qc.sanity(batch, accepted_keys=keys))
        return self._qc_out(verdicts, "sanity", len(batch))

    def objective_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        batch = self.batch_frame(state)
        verdicts = Verdicts.from_dict(state["verdicts"], batch.index)
        scores = {k: pd.Series(v, index=batch.index) for k, v in state["scores"].items()}
        before = int(verdicts.passing.sum())
        result = self.qc.objective(scores, verdicts.passing, seed=seed_for(self.team.seed, state["batch_id"], 13))
        for name, said in (state.get("judge_notes") or {}).items():  # a judge's note goes with the rows it rejected
            for idx in result.reason.index:
                why = said.get(str(idx)) if isinstance(said, dict) else None
                if why and f"judge {name!r}" in result.reason[idx]:
                    result.reason[idx] = f"{result.reason[idx]} — {why}"
        verdicts.apply(result)
        return self._qc_out(verdicts, "objective", before)

    def stage_node(self, name: str, state: dict[str, Any]) -> tuple[dict, dict]:
        """An extra QC stage of the team's: it sees the rows still passing; the rows it rejects carry its name."""
        batch = self.batch_frame(state)
        verdicts = Verdicts.from_dict(state["verdicts"], batch.index)
        rows = batch.loc[verdicts.passing.to_numpy()]
        before = len(rows)
        verdicts.apply(StageResult.from_reasons(name, self.stages[name].check(rows)))
        update, info = self._qc_out(verdicts, name, before)
        return update, {**info, "agent": name}

    def diversity_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        """Stage 3, then the batch is settled: accepted and rejected rows go to the run folder."""
        batch = self.batch_frame(state)
        verdicts = Verdicts.from_dict(state["verdicts"], batch.index)
        before = int(verdicts.passing.sum())
        _, pool_x = self.pool(state["accepted_batches"])
        result, gain, under = self.qc.diversity(batch, verdicts.passing, pool_x)
        verdicts.apply(result)
        room = state["n_rows"] - state["accepted"]
        kept = verdicts.passing[verdicts.passing].index
        if len(kept) > room:  # the run needs fewer rows: the rest are kept, marked, never dropped
            surplus = kept[room:]
            verdicts.apply(StageResult.from_reasons("surplus", pd.Series(
                f"surplus: the run already has the {state['n_rows']} rows it asked for", index=surplus)))
        ok = verdicts.passing
        accepted = self._with_ids(self.schema.format(batch.loc[ok].reset_index(drop=True)), state["accepted"])
        rejected = batch.loc[~ok].reset_index(drop=True).assign(
            batch_id=state["batch_id"], arm=self.plan.arms[state["arm"]].name,
            stage=verdicts.stage[~ok].to_numpy(), reason=verdicts.reason[~ok].to_numpy())
        self.folder.write_batch(state["batch_id"], accepted, rejected)
        if self.alignment is not None:
            per_row = row_scores(state["scores"], len(batch))
            self.folder.write_scores(state["batch_id"], pd.DataFrame({
                "accepted": np.r_[np.ones(int(ok.sum()), bool), np.zeros(int((~ok).sum()), bool)],
                "score": np.r_[per_row[ok.to_numpy()], per_row[~ok.to_numpy()]],
                "stage": np.r_[np.full(int(ok.sum()), ""), verdicts.stage[~ok].astype(str).to_numpy()]}))
        self._remember(state["batch_id"], accepted)
        quality = float(verdicts.quality[ok].mean()) if ok.any() else 0.0
        update = self._qc_out(verdicts, "diversity", before)[0]
        update.update({"gain": gain, "undercovered": under, "kept": int(ok.sum()), "quality": quality})
        return update, {"agent": "diversity", "rows_in": before, "rows_out": int(ok.sum()),
                        "rejected": {k: v for k, v in verdicts.counts().items() if k in ("diversity", "surplus")},
                        "detail": {"coverage_gain": round(gain, 6),
                                                                   "undercovered_share": round(under, 4)}}

    def reflect_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        """DATE's reflection: groups of this batch's accepted rows that lowered a tree's validation score
        become the arm's negative examples for the LLM workers' next prompt."""
        arm = state["arm"]
        accepted = self.folder.read_accepted([state["batch_id"]]) if state["kept"] else pd.DataFrame()
        negatives = self.reflector.review(arm, accepted) if len(accepted) else []
        return {"reflection": {**state.get("reflection", {}), str(arm): negatives}}, {
            "agent": "reflection", "rows_in": len(accepted), "rows_out": len(accepted),
            "detail": {"negative_groups": len(negatives), "paths": [g["path"] for g in negatives]}}

    def align_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        """TabGRAA on the line's own verdicts: the last k batches' rows, ranked by QC, align the LM."""
        al = self.alignment
        batch_ids = state["accepted_batches"][-al.every:]
        frames = [self.folder.read_accepted(batch_ids), self.folder.read_rejected(batch_ids)]
        scores = pd.concat([f for _, f in self.folder.read_batches("scores", batch_ids)], ignore_index=True)
        acc = scores[scores.accepted]
        rej = scores[~scores.accepted].reset_index(drop=True)
        judged = (rej.stage != "surplus").to_numpy()  # surplus rows were fine, just not needed
        rejected = frames[1].loc[judged] if len(frames[1]) else frames[1]
        frame = pd.concat([f[self.schema.names] for f in (frames[0], rejected) if len(f)], ignore_index=True)
        rewards = line_rewards(acc.score.to_numpy(), rej.score.to_numpy()[judged])
        index = int(state.get("aligned", 0))
        metrics = al.step(frame, rewards, index)
        update: dict[str, Any] = {"aligned": index + (1 if metrics.get("steps") else 0)}
        if metrics.get("steps"):
            name = f"model-aligned-{state['batch_id']:06d}"
            al.save(self.folder.path / name)
            update["lm_dir"] = name
        return update, {"agent": f"TabGRAA ({al.config.loss})", "rows_in": len(frame),
                        "rows_out": metrics.get("rows"), "detail": {**metrics, "batches": batch_ids,
                                                                    "model": update.get("lm_dir")}}

    def bandit_node(self, state: dict[str, Any]) -> tuple[dict, dict]:
        team, arm, rows, kept = self.team, state["arm"], state["rows"], state["kept"]
        reward = blend_reward(kept / rows, state["quality"], state["undercovered"], team.bandit.weights)
        bandit = PartitionBandit(**state["bandit"])
        bandit.update(arm, reward)
        accepted_by_arm = list(state["accepted_by_arm"])
        accepted_by_arm[arm] += kept
        counts = self._class_counts(state)
        rejected = {s: dict(v) for s, v in state["rejected"].items()}
        for stage, kinds in Verdicts.from_dict(state["verdicts"], pd.RangeIndex(rows)).counts().items():
            for k, n in kinds.items():
                rejected.setdefault(stage, {})[k] = rejected.get(stage, {}).get(k, 0) + n
        accepted = state["accepted"] + kept
        batches = state["batches"] + 1
        elapsed = state["elapsed_s"] + max(0.0, time.time() - state.get("batch_started", time.time()))
        idle = 0 if kept else state["idle"] + 1
        stop = ("target" if accepted >= state["n_rows"] else
                "batches" if team.max_batches and batches >= team.max_batches else
                "seconds" if team.max_seconds and elapsed >= team.max_seconds else
                "stalled" if idle >= team.patience else "")
        history = state["history"] + [{"batch": state["batch_id"], "arm": arm, "source": state["source"],
                                       "rows": rows, "accepted": kept, "reward": round(reward, 4),
                                       "gain": round(state["gain"], 6)}]
        update = {"bandit": bandit.model_dump(), "accepted": accepted, "batches": batches,
                  "generated": state["generated"] + rows,
                  "accepted_batches": state["accepted_batches"] + [state["batch_id"]],
                  "accepted_by_arm": accepted_by_arm, "counts": counts, "rejected": rejected,
                  "rejected_rows": state["rejected_rows"] + rows - kept, "idle": idle, "elapsed_s": elapsed,
                  "stop": stop, "history": history}
        return update, {"agent": "bandit", "arm": arm, "rows_in": rows, "rows_out": kept,
                        "detail": {"reward": round(reward, 4), "yield": round(kept / rows, 4), "stop": stop,
                                   "accepted_total": accepted}}

    # ------------------------------------------------------------------ helpers
    def _qc_out(self, verdicts: Verdicts, stage: str, rows_in: int) -> tuple[dict, dict]:
        stage_counts = verdicts.counts().get(stage, {})
        out = int(verdicts.passing.sum())
        return {"verdicts": verdicts.to_dict()}, {"agent": stage, "rows_in": rows_in, "rows_out": out,
                                                   "rejected": {stage: stage_counts} if stage_counts else {}}

    def _class_counts(self, state: dict[str, Any]) -> dict[str, dict[str, int]]:
        counts = {c: dict(v) for c, v in state["counts"].items()}
        columns = [ev.column for ev in self.coordinator.evolvers if getattr(ev, "column", None)]
        if not columns or not state["kept"]:
            return counts
        frame = self.folder.read_accepted([state["batch_id"]])
        for col in columns:
            for k, n in frame[col].astype(str).value_counts().items():
                counts.setdefault(col, {})[k] = counts.get(col, {}).get(k, 0) + int(n)
        return counts

    def _with_ids(self, frame: pd.DataFrame, start: int) -> pd.DataFrame:
        """Identifier columns numbered across the whole run (each batch's LM call counts from 1)."""
        for name, top in self.id_tops.items():
            if name in frame:
                seq = np.arange(start + 1, start + len(frame) + 1)
                frame[name] = [f"syn-{i:09d}" for i in seq] if top is None else seq + int(top)
        return frame
