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

import contextlib
import json
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from tabline import __version__
from tabline.agents.coordinator import Coordinator
from tabline.agents.custom_team import build_judge, build_stages, python_refs, search_path
from tabline.agents.judges import ClassifierJudge, LabelJudge, RuleJudge
from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.judge import LLMJudge
from tabline.agents.llm.worker import LLMWorker
from tabline.agents.reflection import Reflector
from tabline.agents.team import Team
from tabline.agents.workers import ExpressionWorker, LMWorker, SamplerWorker
from tabline.agents.llm.backends import BackendError
from tabline.agents.plan import Plan
from tabline.agents.refs import module_file
from tabline.agents.roles import AgentError
from tabline.errors import InvalidArgumentError, OutputError, TablineError
from tabline.graphs.line import build_line_graph, mermaid
from tabline.io import write_text_atomic
from tabline.line.aligning import LineAlignment
from tabline.line.driving import LineResult, drive, read_result
from tabline.line.folder import RunFolder, through_parquet
from tabline.line.runtime import LineRuntime
from tabline.qc.chain import QCChain
from tabline.schema import Schema
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.align import AlignConfig


class AssemblyLine:
    """The team's agents, fitted on one table, driven by the LangGraph line.

    Two ways to run: ``AssemblyLine(team).run(n, "runs/x", data=df)`` makes the run folder first and fits
    inside it, so a kill even during the LM's training loses nothing (``tabline run`` does this); or
    ``AssemblyLine(team).fit(df)`` in memory, then ``.run(n, "runs/x")``. Either way the folder then holds
    everything `resume` needs, as plain data.

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
        self._calibration: pd.DataFrame | None = None  # the classifier judge's synthetic rows

    # ------------------------------------------------------------------ fit
    def fit(self, df: pd.DataFrame, schema: Schema | None = None, *, progress: bool = True) -> "AssemblyLine":
        """Learn everything the line needs from ``df``, in memory: the LM (unless one was given), the plan and
        arms, the judges and the QC chain's view of the real rows."""
        real, schema = self._prepare(df, schema)
        self._build(real, schema, progress=progress)
        return self

    def _prepare(self, df: pd.DataFrame, schema: Schema | None) -> tuple[pd.DataFrame, Schema]:
        if self.lm is not None:
            schema = schema or self.lm.schema
        schema = schema or Schema.infer(df)
        schema.validate_table(df)
        self.team.check(schema, self.models)
        # The rows as a resumed run reads them back from real.parquet: both compute on identical values.
        return through_parquet(schema.format(schema.coerce(df[schema.names])).reset_index(drop=True)), schema

    def _lm_config(self) -> TabularLMConfig:
        lm = self.team.lm
        return lm.model_copy(update={"seed": self.team.seed}) if "seed" not in lm.model_fields_set else lm

    def _build(self, real: pd.DataFrame, schema: Schema, *, progress: bool, folder: RunFolder | None = None,
               lm_config: TabularLMConfig | None = None) -> None:
        """Fit the line's agents on ``real``. With a run ``folder``, the LM trains with a checkpoint after
        every epoch, and each fitted piece is read from the folder if it is there already, else saved to it."""
        team = self.team
        plan = Plan.model_validate_json(folder.plan.read_text(encoding="utf-8")) \
            if folder is not None and folder.plan.exists() else None
        coordinator = Coordinator(team).fit(real, schema, models=self.models, plan=plan)
        kinds = {self._kind(c) for c in coordinator.plan.components}
        needs_lm = "lm" in kinds or any(j.kind == "classifier" for j in team.judges)
        if self.lm is None and needs_lm:
            self.lm = self._fit_lm(real, schema, lm_config or self._lm_config(), progress, folder)
        workers = {c.name: self._worker(c, real, schema, coordinator) for c in coordinator.plan.components}
        judges, thresholds = self._judges(real, schema, progress, folder)
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
                                   judges=judges, qc=qc, id_tops=id_tops, reflector=reflector, alignment=alignment,
                                   stages=build_stages(team, schema))

    def _fit_lm(self, real: pd.DataFrame, schema: Schema, config: TabularLMConfig, progress: bool,
                folder: RunFolder | None) -> TabularLM:
        if folder is None:
            return TabularLM(config).fit(real, schema, progress=progress)
        if not folder.model.exists():
            lm = TabularLM(config).fit(real, schema, progress=progress, checkpoint=folder.fit_checkpoint)
            lm.save(folder.model)
        shutil.rmtree(folder.fit_checkpoint, ignore_errors=True)
        # The line samples from the saved weights, exactly what a resumed run loads.
        return TabularLM.load(folder.model)

    def _kind(self, comp) -> str:
        spec = self.team.worker_for(comp.columns[0])
        kind = comp.worker if comp.worker != "lm" else spec.kind
        return "lm" if kind == "llm" and spec.model == "embedded" else kind

    def _worker(self, comp, real: pd.DataFrame, schema: Schema, coordinator: Coordinator):
        spec = self.team.worker_for(comp.columns[0])
        kind = self._kind(comp)
        if kind == "python":
            return coordinator.custom_workers[comp.name]
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

    def _calibration_rows(self, spec, real: pd.DataFrame, progress: bool, folder: RunFolder | None) -> pd.DataFrame:
        if folder is not None and folder.calibration.exists():
            return folder.read_table(folder.calibration, "the classifier judge's calibration rows")
        n = min(spec.calibration_rows, max(2, len(real)))
        synthetic = through_parquet(self.lm.sample(n, seed=self.team.seed + 1, progress=progress))
        if folder is not None:
            folder.write_table(synthetic, folder.calibration)
        return synthetic

    def _judges(self, real: pd.DataFrame, schema: Schema, progress: bool,
                folder: RunFolder | None) -> tuple[list, dict[str, float]]:
        judges, thresholds = [], {}
        for i, spec in enumerate(self.team.judges):
            if spec.kind == "python":
                judge, threshold = build_judge(self.team, i, spec, schema)
                judges.append(judge)
                thresholds[judge.name] = threshold
            elif spec.kind == "classifier":
                synthetic = self._calibration = self._calibration_rows(spec, real, progress, folder)
                judge = ClassifierJudge(schema, seed=self.team.seed, mode=spec.mode, smooth=spec.smooth).fit(real, synthetic)
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
            raise TablineError("fit the line first: AssemblyLine(team).fit(df), or run(n, output, data=df)")

    # ------------------------------------------------------------------ run
    def run(self, n_rows: int, output: str | os.PathLike | None = None, *, data: pd.DataFrame | None = None,
            schema: Schema | None = None, progress: bool = True) -> LineResult:
        """Generate until ``n_rows`` rows are accepted (or a budget ends the run) into run folder ``output``.

        ``data``: fit on this table inside the run folder (the folder exists before the fit starts, the LM
        checkpoints every epoch, and `resume` continues a fit that was killed); without it the line must
        have been fitted with `fit`."""
        if not isinstance(n_rows, (int, np.integer)) or n_rows <= 0:
            raise InvalidArgumentError(f"n_rows must be a positive whole number, got {n_rows!r}")
        if data is None:
            self._require_fitted()
        elif self.runtime is not None:
            raise InvalidArgumentError("this line is fitted already: call run(n, output) without data")
        output = Path(output) if output else Path("runs") / f"line-{datetime.now():%Y%m%d-%H%M%S}"
        folder = RunFolder(output)
        with folder.lock(), _resume_hint(folder):
            folder.create()
            if data is not None:
                real, schema = self._prepare(data, schema)
            else:
                real, schema = self.runtime.coordinator.real, self.runtime.schema
            run_id = uuid.uuid4().hex[:12]
            write_text_atomic(self.team.to_yaml(), folder.team)
            write_text_atomic(schema.to_json(), folder.schema)
            folder.write_table(real, folder.real)
            if self.lm is not None:
                self.lm.save(folder.model)
            if self._calibration is not None:
                folder.write_table(self._calibration, folder.calibration)
            folder.write_manifest({
                "run_id": run_id, "n_rows": int(n_rows), "seed": self.team.seed, "status": "fitting",
                "tabline": __version__, "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "lm": self._lm_config().model_dump(), "align_every": self.align_every,
                "align": self.align_config.model_dump(), "registered_models": sorted(self.models),
                **self._code_record()})
            if data is not None:
                self._build(real, schema, progress=progress, folder=folder)
            return self._start(folder, run_id, int(n_rows), progress)

    def _code_record(self) -> dict[str, Any]:
        """Where the team's python agents came from: `resume` imports their refs again, looking in the same
        folders (nothing of the code itself is kept in the run folder)."""
        refs = python_refs(self.team)
        if not refs:
            return {}
        return {"code": {"path": search_path(self.team), "modules": {ref: module_file(ref) for ref in refs}}}

    def _start(self, folder: RunFolder, run_id: str, n_rows: int, progress: bool) -> LineResult:
        """Save what the fitted line decided (plan, graph), mark the run as running and drive it."""
        runtime = self.runtime
        write_text_atomic(self.plan.model_dump_json(indent=2), folder.plan)
        if runtime.coordinator.llm_records:
            write_text_atomic(json.dumps(runtime.coordinator.llm_records, indent=1, ensure_ascii=False),
                              folder.path / "llm-coordinator.json")
        write_text_atomic(mermaid(build_line_graph(runtime, run_id=run_id)), folder.path / "graph.mmd")
        if folder.read_manifest().get("status") != "running":
            folder.update_manifest(status="running", uses_lm=self.lm is not None)
        return drive(runtime, folder, run_id, runtime.initial_state(n_rows), progress)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, progress: bool = True,
               models: dict[str, Any] | None = None) -> LineResult:
        """Continue a run from where it stopped — in the LM's fit (from its last epoch) or between batches
        (from the last checkpoint); a finished run is read back. ``models``: the Python chat models the run
        was started with (shorthands are rebuilt on their own). Nothing is unpickled: the line is re-fitted
        from the folder's plain files with the run's seeds, which gives the same agents."""
        folder = RunFolder(run_dir)
        with folder.lock(), _resume_hint(folder):
            manifest = folder.read_manifest()
            schema = _load_schema(folder)
            if manifest.get("status") == "done":
                return read_result(folder, schema)
            missing = [m for m in manifest.get("registered_models", []) if m not in (models or {})]
            if missing:
                raise BackendError(f"this run used the Python chat model(s) registered as {missing}; resume it from "
                                   f"Python with AssemblyLine.resume(run_dir, models={{{missing[0]!r}: model, ...}})")
            code_path = manifest.get("code", {}).get("path", [])
            line = cls(Team.load(folder.team, code_path=code_path), models=models, align_every=manifest.get("align_every"),
                       align=manifest.get("align"))
            if folder.model.exists():
                line.lm = TabularLM.load(folder.model)
            elif manifest.get("uses_lm"):
                raise TablineError(f"run folder {folder.path} is missing model/ (the fitted LM); it was deleted or "
                                   f"moved — restore it, then `tabline run --resume {folder.path}`")
            real = folder.read_table(folder.real, "the real rows the line learns from")
            line._build(real, schema, progress=progress, folder=folder,
                        lm_config=TabularLMConfig(**manifest["lm"]))
            return line._start(folder, manifest["run_id"], int(manifest["n_rows"]), progress)


@contextlib.contextmanager
def _resume_hint(folder: RunFolder) -> Iterator[None]:
    """A write the machine refused ends the run with that error and what to do next: everything written
    before it is intact, so the run continues once the cause is fixed."""
    try:
        yield
    except OutputError as exc:
        if not folder.manifest.exists():
            raise
        raise OutputError(f"{exc}. Nothing written so far is lost: once that is fixed, "
                          f"`tabline run --resume {folder.path}` continues the run") from exc
    except AgentError as exc:  # your agent's fault: the checkpoint before the failed step is intact
        if not folder.manifest.exists():
            raise
        raise AgentError(f"{exc}. Every finished batch is kept: once the agent is fixed, "
                         f"`tabline run --resume {folder.path}` continues the run", agent=exc.agent, role=exc.role,
                         prefixed=True) from exc


def _load_schema(folder: RunFolder) -> Schema:
    if not folder.schema.exists():
        raise TablineError(f"run folder {folder.path} is missing schema.json; restore it, then resume")
    return Schema.load(folder.schema)
