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
from tabline.agents.build import build_judges, build_worker, calibration_rows, worker_kind
from tabline.agents.coordinator import Coordinator
from tabline.agents.custom_team import build_stages, python_refs, search_path
from tabline.agents.llm.backends import BackendError
from tabline.agents.plan import Plan
from tabline.agents.reflection import Reflector
from tabline.agents.refs import module_file
from tabline.agents.roles import AgentError
from tabline.agents.team import JudgeSpec, Team
from tabline.errors import InvalidArgumentError, OutputError, TablineError
from tabline.graphs.line import build_line_graph, initial_state, mermaid
from tabline.graphs.line_runtime import LineAgents, LineRuntime
from tabline.io import through_parquet, write_text_atomic
from tabline.line.driving import LineResult, drive, read_result
from tabline.otel import OtelExport, otel_export
from tabline.qc.chain import QCChain
from tabline.run_folder import RunFolder
from tabline.schema import Schema
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.tabgraa import AlignConfig, LineAlignment


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
    the `AlignConfig`: loss, β, learning rate, B). See `tabline.training.tabgraa`.

    ``executor``: where the heavy stations run. None or ``"local"``: in this process; ``"ray"`` (or
    ``"auto"``, ``"HOST:PORT"``, ``"ray://HOST:PORT"``, a `tabline.cluster.connect.RayConfig`): on Ray
    actors, each holding a replica of the models, while this process keeps the graph, coordinator, QC and
    checkpoint — the same rows as a local run with the same seed (docs/ray.md).

    The agents themselves come from the team's specs through `tabline.agents.build`; the graph they run in
    is `tabline.graphs.line`."""

    def __init__(self, team: Team | None = None, *, lm: TabularLM | None = None,
                 models: dict[str, Any] | None = None, align_every: int | None = None,
                 align: AlignConfig | dict | None = None, executor: Any = None):
        self.team = team or Team()
        self.executor = _executor(executor)
        if self.executor is not None and align_every is not None:
            raise InvalidArgumentError("align_every changes the TabularLM during the run, and the Ray replicas hold "
                                       "a fixed copy of it: run TabGRAA inside the line without --ray")
        self.lm = lm
        self.models = dict(models or {})
        if align_every is not None and (not isinstance(align_every, (int, np.integer)) or align_every < 1):
            raise InvalidArgumentError(f"align_every must be a positive whole number of batches, got {align_every!r}")
        self.align_every = align_every
        self.align_config = AlignConfig(**align) if isinstance(align, dict) else (align or AlignConfig())
        self.agents: LineAgents | None = None
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
        kinds = {c.name: worker_kind(team, c) for c in coordinator.plan.components}
        needs_lm = "lm" in kinds.values() or any(j.kind == "classifier" for j in team.judges)
        if self.lm is None and needs_lm:
            self.lm = self._fit_lm(real, schema, lm_config or self._lm_config(), progress, folder)
        workers = {c.name: build_worker(team, c, real=real, schema=schema, lm=self.lm,
                                        python_workers=coordinator.custom_workers,
                                        expressions=coordinator.expressions, models=self.models)
                   for c in coordinator.plan.components}
        judges, thresholds = build_judges(team, real, schema, models=self.models,
                                          calibration=lambda spec: self._calibration_rows(spec, real, progress, folder))
        qc = QCChain(real, schema, thresholds=thresholds, batch_threshold=team.qc.batch_threshold,
                     min_distance=team.qc.min_distance, min_gain=team.qc.min_gain, cells=team.qc.cells,
                     coverage=len(coordinator.plan.arms) > 1, seed=team.seed)
        id_tops = {c.name: (pd.to_numeric(real[c.name], errors="coerce").max()
                            if pd.api.types.is_numeric_dtype(real[c.name]) else None)
                   for c in schema.columns if c.kind == "id"}
        # DATE's reflection: LLM workers whose spec asks for it are shown the rows that lowered quality
        reflective = frozenset(name for name, kind in kinds.items()
                               if kind == "llm" and team.worker_for(workers[name].columns[0]).reflection)
        reflector = None
        if reflective and team.target is not None:
            reflector = Reflector(real, schema, team.target, coordinator.partitions.members, seed=team.seed)
        alignment = None
        if self.align_every:
            if "lm" not in kinds.values():
                raise InvalidArgumentError("align_every aligns the embedded TabularLM, but no column of this team "
                                           "is generated by it (every worker is an LLM, sampler or expression)")
            alignment = LineAlignment(self.align_every, self.align_config)
            alignment.attach(self.lm, real)
        self.agents = LineAgents(team=team, schema=schema, coordinator=coordinator, workers=workers, judges=judges,
                                 qc=qc, id_tops=id_tops, stages=build_stages(team, schema),
                                 reflective=reflective, reflector=reflector, alignment=alignment, lm=self.lm)

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

    def _calibration_rows(self, spec: JudgeSpec, real: pd.DataFrame, progress: bool,
                          folder: RunFolder | None) -> pd.DataFrame:
        """The classifier judge's synthetic rows: read from the run folder when it has them, else sampled
        (and saved there, so a resumed run's judge learns from the same rows)."""
        if folder is not None and folder.calibration.exists():
            rows = folder.read_table(folder.calibration, "the classifier judge's calibration rows")
        else:
            rows = calibration_rows(self.lm, spec, real, seed=self.team.seed, progress=progress)
            if folder is not None:
                folder.write_table(rows, folder.calibration)
        self._calibration = rows
        return rows

    @property
    def plan(self) -> Plan:
        self._require_fitted()
        return self.agents.plan

    def _require_fitted(self) -> None:
        if self.agents is None:
            raise TablineError("fit the line first: AssemblyLine(team).fit(df), or run(n, output, data=df)")

    # ------------------------------------------------------------------ run
    def run(self, n_rows: int, output: str | os.PathLike | None = None, *, data: pd.DataFrame | None = None,
            schema: Schema | None = None, progress: bool = True, otel: Any = None) -> LineResult:
        """Generate until ``n_rows`` rows are accepted (or a budget ends the run) into run folder ``output``.

        ``data``: fit on this table inside the run folder (the folder exists before the fit starts, the LM
        checkpoints every epoch, and `resume` continues a fit that was killed); without it the line must
        have been fitted with `fit`. ``otel``: also export the trace as OpenTelemetry spans — by default when
        ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; True, False, or a ``TracerProvider`` / ``SpanExporter`` of yours
        (`tabline.otel`, docs/otel.md)."""
        if not isinstance(n_rows, (int, np.integer)) or n_rows <= 0:
            raise InvalidArgumentError(f"n_rows must be a positive whole number, got {n_rows!r}")
        export = otel_export(otel)
        if data is None:
            self._require_fitted()
        elif self.agents is not None:
            raise InvalidArgumentError("this line is fitted already: call run(n, output) without data")
        output = Path(output) if output else Path("runs") / f"line-{datetime.now():%Y%m%d-%H%M%S}"
        folder = RunFolder(output)
        with folder.lock(), _resume_hint(folder):
            folder.create()
            if data is not None:
                real, schema = self._prepare(data, schema)
            else:
                real, schema = self.agents.coordinator.real, self.agents.schema
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
            return self._start(folder, run_id, int(n_rows), progress, export)

    def _code_record(self) -> dict[str, Any]:
        """Where the team's python agents came from: `resume` imports their refs again, looking in the same
        folders (nothing of the code itself is kept in the run folder)."""
        refs = python_refs(self.team)
        if not refs:
            return {}
        return {"code": {"path": search_path(self.team), "modules": {ref: module_file(ref) for ref in refs}}}

    def _start(self, folder: RunFolder, run_id: str, n_rows: int, progress: bool,
               export: OtelExport | None = None) -> LineResult:
        """Save what the fitted line decided (plan, graph), mark the run as running and drive it."""
        agents = self.agents
        write_text_atomic(self.plan.model_dump_json(indent=2), folder.plan)
        if agents.coordinator.llm_records:
            write_text_atomic(json.dumps(agents.coordinator.llm_records, indent=1, ensure_ascii=False),
                              folder.path / "llm-coordinator.json")
        runtime = LineRuntime(agents, folder)
        write_text_atomic(mermaid(build_line_graph(runtime, run_id=run_id)), folder.path / "graph.mmd")
        if folder.read_manifest().get("status") != "running":
            folder.update_manifest(status="running", uses_lm=self.lm is not None)
        if self.executor is None:
            return drive(runtime, run_id, initial_state(agents, n_rows), progress, export)
        from tabline.cluster.stations import ray_stations

        with ray_stations(self.executor, agents, run_id=run_id) as (remote, stations):
            result = drive(LineRuntime(remote, folder, ahead=stations), run_id, initial_state(agents, n_rows), progress,
                           export)
            folder.update_manifest(executor={"kind": "ray", "address": self.executor.address,
                                             "replicas": len(stations.actors), "remote": stations.keys,
                                             "calls": stations.calls, "llm_budget": stations.budget_stats()})
        return result

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, progress: bool = True,
               models: dict[str, Any] | None = None, executor: Any = None, otel: Any = None) -> LineResult:
        """Continue a run from where it stopped — in the LM's fit (from its last epoch) or between batches
        (from the last checkpoint); a finished run is read back. ``models``: the Python chat models the run
        was started with (shorthands are rebuilt on their own). ``executor``: as in `AssemblyLine`, for the rest
        of the run (a run started on Ray may go on locally and the other way round: the rows are the same).
        ``otel``: as in `run` (the continued part is one more run span, with the same run id). Nothing is
        unpickled: the line is re-fitted from the folder's plain files with the run's seeds, which gives the
        same agents."""
        export = otel_export(otel)
        folder = RunFolder(run_dir)
        with folder.lock(), _resume_hint(folder):
            manifest = folder.read_manifest()
            if manifest.get("kind") == "dream":
                raise TablineError(f"{folder.path} holds a `tabline dream` run; continue it with "
                                   f"`tabline dream --resume {folder.path}`")
            schema = _load_schema(folder)
            if manifest.get("status") == "done":
                return read_result(folder, schema)
            missing = [m for m in manifest.get("registered_models", []) if m not in (models or {})]
            if missing:
                raise BackendError(f"this run used the Python chat model(s) registered as {missing}; resume it from "
                                   f"Python with AssemblyLine.resume(run_dir, models={{{missing[0]!r}: model, ...}})")
            code_path = manifest.get("code", {}).get("path", [])
            line = cls(Team.load(folder.team, code_path=code_path), models=models, align_every=manifest.get("align_every"),
                       align=manifest.get("align"), executor=executor)
            if folder.model.exists():
                line.lm = TabularLM.load(folder.model)
            elif manifest.get("uses_lm"):
                raise TablineError(f"run folder {folder.path} is missing model/ (the fitted LM); it was deleted or "
                                   f"moved — restore it, then `tabline run --resume {folder.path}`")
            real = folder.read_table(folder.real, "the real rows the line learns from")
            line._build(real, schema, progress=progress, folder=folder,
                        lm_config=TabularLMConfig(**manifest["lm"]))
            return line._start(folder, manifest["run_id"], int(manifest["n_rows"]), progress, export)


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


def _executor(value: Any) -> Any:
    """None for this process, else the `RayConfig` of ``value`` (Ray itself is imported only to run)."""
    if value is None or value == "local":
        return None
    from tabline.cluster.connect import RayConfig

    return RayConfig.from_value(value)


def _load_schema(folder: RunFolder) -> Schema:
    if not folder.schema.exists():
        raise TablineError(f"run folder {folder.path} is missing schema.json; restore it, then resume")
    return Schema.load(folder.schema)
