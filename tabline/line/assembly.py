"""`AssemblyLine`: fit a team on a table, then run the LangGraph line until it has N accepted rows.

Example (a tiny, fast line; the defaults fit a bigger model):
    >>> import tempfile
    >>> from tabline.demo import load_demo_table
    >>> from tabline.agents.team import Team
    >>> team = Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100,
    ...             judges=[{"kind": "rules", "threshold": 1.0}])
    >>> line = AssemblyLine(team).fit(load_demo_table().head(400), progress=False)
    >>> result = line.run(150, tempfile.mkdtemp(), progress=False)
    >>> len(result.data), result.stop_reason
    (150, 'target')
"""
from __future__ import annotations

import json
import os
import pickle
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from langgraph.checkpoint.sqlite import SqliteSaver

from tabline import __version__
from tabline._progress import line_progress
from tabline.agents.coordinator import Coordinator
from tabline.agents.judges import ClassifierJudge, LabelJudge, RuleJudge
from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import merge_usage
from tabline.agents.llm.judge import LLMJudge
from tabline.agents.llm.worker import LLMWorker
from tabline.agents.reflection import Reflector
from tabline.agents.team import Team
from tabline.agents.workers import ExpressionWorker, LMWorker, SamplerWorker
from tabline.errors import InvalidArgumentError, TablineError
from tabline.graphs.line import build_line_graph, mermaid
from tabline.io import write_csv_atomic, write_pickle_atomic, write_text_atomic
from tabline.line.aligning import LineAlignment
from tabline.line.folder import RunFolder
from tabline.line.runtime import LineRuntime
from tabline.qc.chain import QCChain
from tabline.schema import Schema
from tabline.training import TabularLM
from tabline.training.align import AlignConfig


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


class AssemblyLine:
    """The team's agents, fitted on one table, driven by the LangGraph line.

    ``models`` registers LangChain chat models built in Python under names the team can use as ``model:``
    (``AssemblyLine(team, models={"mine": ChatAnthropic(...)})``); shorthands need no registration.

    ``align_every=k`` runs a TabGRAA step after every k batches: the accepted and rejected rows of those
    batches, ranked by their judge scores, align the line's TabularLM against its SFT self (``align`` holds
    the `AlignConfig`: loss, β, learning rate, B). See `tabline.line.aligning`."""

    def __init__(self, team: Team | None = None, *, lm: TabularLM | None = None,
                 models: dict[str, Any] | None = None, align_every: int | None = None,
                 align: AlignConfig | dict | None = None):
        self.team = team or Team()
        self.lm = lm
        self.models = dict(models or {})
        if align_every is not None and (not isinstance(align_every, (int, np.integer)) or align_every < 1):
            raise InvalidArgumentError(f"align_every must be a positive whole number of batches, got {align_every!r}")
        self.align_every = align_every
        self.align_config = AlignConfig(**align) if isinstance(align, dict) else (align or AlignConfig())
        self.runtime: LineRuntime | None = None

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, schema: Schema | None = None, *, progress: bool = True) -> "AssemblyLine":
        """Learn everything the line needs from ``df``: the LM (unless one was given), the plan and arms,
        the judges and the QC chain's view of the real rows."""
        team = self.team
        if self.lm is not None:
            schema = schema or self.lm.schema
        schema = schema or Schema.infer(df)
        schema.validate_table(df)
        team.check(schema, self.models)
        real = schema.format(schema.coerce(df[schema.names])).reset_index(drop=True)
        coordinator = Coordinator(team).fit(real, schema, models=self.models)
        kinds = {self._kind(c) for c in coordinator.plan.components}
        needs_lm = "lm" in kinds or any(j.kind == "classifier" for j in team.judges)
        if self.lm is None and needs_lm:
            lm_config = team.lm.model_copy(update={"seed": team.seed}) if "seed" not in team.lm.model_fields_set else team.lm
            self.lm = TabularLM(lm_config).fit(real, schema, progress=progress)
        workers = {c.name: self._worker(c, real, schema, coordinator) for c in coordinator.plan.components}
        judges, thresholds = self._judges(real, schema, progress)
        qc = QCChain(real, schema, thresholds=thresholds, batch_threshold=team.qc.batch_threshold,
                     min_distance=team.qc.min_distance, min_gain=team.qc.min_gain, cells=team.qc.cells,
                     seed=team.seed)
        id_tops = {c.name: (pd.to_numeric(real[c.name], errors="coerce").max()
                            if pd.api.types.is_numeric_dtype(real[c.name]) else None)
                   for c in schema.columns if c.kind == "id"}
        reflector = None
        reflective = [w for w in workers.values() if isinstance(w, LLMWorker)
                      and team.worker_for(w.columns[0]).reflection]
        if reflective and team.target is not None:
            reflector = Reflector(real, schema, team.target, coordinator.partitions.members, seed=team.seed)
        alignment = None
        if self.align_every:
            if not any(isinstance(w, LMWorker) for w in workers.values()):
                raise InvalidArgumentError("align_every aligns the embedded TabularLM, but no column of this team "
                                           "is generated by it (every worker is an LLM, sampler or expression)")
            alignment = LineAlignment(self.align_every, self.align_config)
            alignment.attach(self.lm, real)
        self.runtime = LineRuntime(team=team, schema=schema, coordinator=coordinator, workers=workers,
                                   judges=judges, qc=qc, id_tops=id_tops, reflector=reflector, alignment=alignment)
        return self

    def _kind(self, comp) -> str:
        spec = self.team.worker_for(comp.columns[0])
        kind = comp.worker if comp.worker != "lm" else spec.kind
        return "lm" if kind == "llm" and spec.model == "embedded" else kind

    def _worker(self, comp, real: pd.DataFrame, schema: Schema, coordinator: Coordinator):
        spec = self.team.worker_for(comp.columns[0])
        kind = self._kind(comp)
        if kind == "lm":
            return LMWorker(self.lm, comp.columns, temperature=spec.temperature)
        if kind == "sampler":
            return SamplerWorker(real, comp.columns)
        if kind == "expression":
            exprs = spec.expressions if spec.kind == "expression" else coordinator.expressions
            return ExpressionWorker([e for e in exprs if e.split("=")[0].strip().strip("`") in comp.columns])
        team = self.team
        ref = ModelRef(spec.model, temperature=spec.temperature, settings=team.llm, registry=self.models)
        return LLMWorker(ref, comp.columns, schema, real=real, about=team.about,
                         descriptions=team.descriptions, target=team.target, rows_per_call=spec.rows_per_call,
                         examples=spec.examples, instructions=spec.instructions, name=comp.name)

    def _judges(self, real: pd.DataFrame, schema: Schema, progress: bool) -> tuple[list, dict[str, float]]:
        judges, thresholds = [], {}
        for spec in self.team.judges:
            if spec.kind == "classifier":
                n = min(spec.calibration_rows, max(2, len(real)))
                synthetic = self.lm.sample(n, seed=self.team.seed + 1, progress=progress)
                judge = ClassifierJudge(schema, seed=self.team.seed).fit(real, synthetic)
                judge.mode = spec.mode
                if spec.mode == "ratio":
                    judge.calibrate(synthetic, spec.quantile)
                judges.append(judge)
                thresholds["classifier"] = "draw" if spec.mode == "ratio" else spec.threshold
            elif spec.kind == "llm":
                ref = ModelRef(spec.model, temperature=0.0, settings=self.team.llm, registry=self.models)
                judges.append(LLMJudge(ref, schema, real=real, rubric=spec.rubric, about=self.team.about,
                                       descriptions=self.team.descriptions, rows_per_call=spec.rows_per_call,
                                       target=self.team.target, seed=self.team.seed))
                thresholds["llm"] = spec.threshold
            elif spec.kind == "labels":
                judges.append(LabelJudge(schema, self.team.target, seed=self.team.seed).fit(real))
                thresholds["labels.confidence"] = spec.threshold
                thresholds["labels.certainty"] = spec.certainty
            else:
                judges.append(RuleJudge(schema))
                thresholds["rules"] = spec.threshold
        if not judges:
            judges.append(RuleJudge(schema))
            thresholds["rules"] = 0.0
        return judges, thresholds

    @property
    def plan(self):
        self._require_fitted()
        return self.runtime.plan

    def _require_fitted(self) -> None:
        if self.runtime is None:
            raise TablineError("fit the line first: AssemblyLine(team).fit(df)")

    # ------------------------------------------------------------------ run
    def run(self, n_rows: int, output: str | os.PathLike | None = None, *, progress: bool = True) -> LineResult:
        """Generate until ``n_rows`` rows are accepted (or a budget ends the run) into run folder ``output``."""
        self._require_fitted()
        if not isinstance(n_rows, (int, np.integer)) or n_rows <= 0:
            raise InvalidArgumentError(f"n_rows must be a positive whole number, got {n_rows!r}")
        output = Path(output) if output else Path("runs") / f"line-{datetime.now():%Y%m%d-%H%M%S}"
        folder = RunFolder(output)
        folder.create()
        run_id = uuid.uuid4().hex[:12]
        if self.lm is not None:
            self.lm.save(folder.model)
        write_pickle_atomic(self.runtime, folder.line)
        if self.runtime.coordinator.llm_records:
            write_text_atomic(json.dumps(self.runtime.coordinator.llm_records, indent=1, ensure_ascii=False),
                              output / "llm-coordinator.json")
        write_text_atomic(self.team.to_yaml(), output / "team.yaml")
        write_text_atomic(self.plan.model_dump_json(indent=2), output / "plan.json")
        write_text_atomic(mermaid(build_line_graph(self.runtime, run_id=run_id)), output / "graph.mmd")
        folder.write_manifest({"run_id": run_id, "n_rows": int(n_rows), "seed": self.team.seed,
                               "status": "running", "tabline": __version__,
                               "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        return _drive(self.runtime, folder, run_id, self.runtime.initial_state(int(n_rows)), progress)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, progress: bool = True,
               models: dict[str, Any] | None = None) -> LineResult:
        """Continue a run from its last checkpoint (e.g. after a crash or a kill); a finished run is read back.
        ``models``: the Python chat models the run was started with (shorthands are rebuilt on their own)."""
        folder = RunFolder(run_dir)
        manifest = folder.read_manifest()
        try:
            with open(folder.line, "rb") as fh:
                runtime: LineRuntime = pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError) as exc:
            raise TablineError(f"cannot read the fitted line in {folder.line}: {exc}") from None
        lm = TabularLM.load(folder.model) if folder.model.exists() else None
        for worker in runtime.workers.values():
            if isinstance(worker, LMWorker):
                worker.lm = lm
        for agent in [*runtime.workers.values(), *runtime.judges, *runtime.coordinator.evolvers]:
            ref = getattr(agent, "ref", None)
            if ref is not None:
                ref.bind_registry(models)
                ref.check_resumable()
        if manifest.get("status") == "done":
            return _result(folder, runtime.schema)
        return _drive(runtime, folder, manifest["run_id"], None, progress)


def _drive(runtime: LineRuntime, folder: RunFolder, run_id: str, initial: dict | None, progress: bool) -> LineResult:
    runtime.folder = folder
    n_rows = folder.read_manifest()["n_rows"]
    config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10_000_000}
    conn = sqlite3.connect(folder.checkpoints, check_same_thread=False)
    try:
        saver = SqliteSaver(conn)
        with line_progress(n_rows, enabled=progress) as bar:
            def on_event(event: dict) -> None:
                if event["node"] == "bandit":
                    s = event["state"]
                    bar(s["accepted"], event["arm"], event["rows_out"] / max(1, event["rows_in"]))

            graph = build_line_graph(runtime, run_id=run_id, on_event=on_event).compile(checkpointer=saver)
            if initial is None:
                snapshot = graph.get_state(config)
                if not snapshot.values:
                    raise TablineError(f"{folder.path} has no checkpoint to resume from; start the run again")
                if runtime.alignment is not None:
                    lm = next(w.lm for w in runtime.workers.values() if isinstance(w, LMWorker))
                    runtime.alignment.restore(lm, folder.path, snapshot.values.get("lm_dir"), runtime.coordinator.real)
                bar(snapshot.values.get("accepted", 0), None, None)
            for _ in graph.stream(initial, config, stream_mode="updates", durability="sync"):
                pass
            final = graph.get_state(config).values
    finally:
        conn.close()
    return _finish(runtime, folder, final)


def _finish(runtime: LineRuntime, folder: RunFolder, state: dict) -> LineResult:
    batches = state["accepted_batches"]
    data = folder.read_accepted(batches)
    data = data if len(data.columns) else pd.DataFrame(columns=runtime.schema.names)
    rejected = folder.read_rejected(batches)
    trace = pd.read_json(folder.trace, lines=True) if folder.trace.exists() else pd.DataFrame()
    seconds = trace.groupby("node")["seconds"].sum().round(3).to_dict() if len(trace) else {}
    plan = runtime.plan
    history = pd.DataFrame(state["history"])
    arms = []
    for k, arm in enumerate(plan.arms):
        h = history[history.arm == k] if len(history) else history
        arms.append({"arm": arm.name, "rule": arm.rule, "real_rows": arm.size, "batches": int(len(h)),
                     "generated": int(h.rows.sum()) if len(h) else 0, "accepted": int(state["accepted_by_arm"][k]),
                     "mean_reward": round(float(h.reward.mean()), 4) if len(h) else None})
    report = {
        "run_id": folder.read_manifest()["run_id"], "n_requested": state["n_rows"], "accepted": len(data),
        "generated": state["generated"], "yield": round(len(data) / max(1, state["generated"]), 4),
        "batches": state["batches"], "stop_reason": state["stop"], "seconds": round(state["elapsed_s"], 2),
        "seconds_by_node": seconds, "rejections": state["rejected"], "rejected_rows": state["rejected_rows"],
        "llm": merge_usage([runtime.coordinator.llm_usage] + ([t for t in trace["tokens"] if isinstance(t, dict)]
                                                              if "tokens" in trace else [])),
        "arms": arms, "conditions_from": history.source.value_counts().to_dict() if len(history) else {},
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


def _result(folder: RunFolder, schema: Schema) -> LineResult:
    from tabline.io import read_table

    report = json.loads((folder.path / "report.json").read_text(encoding="utf-8"))
    rejected_path = folder.path / "rejected.csv"
    rejected = pd.read_csv(rejected_path) if rejected_path.stat().st_size > 1 else pd.DataFrame()
    data = read_table(folder.path / "data.csv")
    return LineResult(schema.format(schema.coerce(data[schema.names])), rejected, report, folder.path)
