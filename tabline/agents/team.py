"""The `Team`: what users write (in Python or YAML) to define an assembly line's agents and QC.

Every section is pydantic with ``extra="forbid"``: a typo in a key is an error naming the key and where it
is, never a silent default. `Team.check(schema)` then checks the names against the table (columns,
target, expressions) and lists every problem at once.

Example:
    >>> team = Team.from_dict({"target": "cut", "workers": {"*": {"kind": "lm"}},
    ...                        "evolvers": [{"kind": "rebalance", "column": "cut", "ratio": 0.5}]})
    >>> team.evolvers[0].ratio, team.bandit.policy, [j.kind for j in team.judges]
    (0.5, 'ucb1', ['classifier', 'rules'])
    >>> Team.from_dict({"wokers": {}})
    Traceback (most recent call last):
    tabline.agents.team.InvalidTeamError: team: 1 problem(s): wokers: unknown field
"""
from __future__ import annotations

from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tabline.agents.custom_team import python_problems
from tabline.agents.llm.backends import LLMSettings, parse_model_spec
from tabline.agents.plan import Arm, Component
from tabline.agents.refs import RefError, check_ref_text, ref_of
from tabline.errors import TablineError
from tabline.io import read_settings_file
from tabline.schema import Schema, _describe_validation_error
from tabline.training import TabularLMConfig


class InvalidTeamError(TablineError):
    """A team definition (Python or YAML) has unknown keys, bad values, or names the table does not have."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _ref(value: Any) -> Any:
    """A ref as text; a function or class given from Python becomes its import path (what team.yaml keeps)."""
    try:
        return check_ref_text(value) if isinstance(value, str) else None if value is None else ref_of(value)
    except RefError as exc:
        raise ValueError(str(exc)) from None


Ref = Annotated[str, BeforeValidator(_ref)]
AgentName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class _Python(_Spec):
    """What every ``kind: python`` agent may set: ``ref`` (``"package.module:name"``, or the function itself
    from Python), ``settings`` (keyword arguments of the function's calls or the class's constructor) and
    ``name`` (in traces, the graph and rejection reasons). See docs/custom-agents.md."""

    ref: Ref | None = None
    settings: dict[str, Any] = {}
    name: AgentName | None = None

    def _python_fields(self, kind: str, extra: tuple[str, ...] = ()) -> None:
        if kind == "python" and not self.ref:
            raise ValueError("a python agent needs 'ref', e.g. ref: 'my_agents:bmi'")
        # by value, not by fields set: a dumped built-in spec (ref=None, settings={}) must validate again
        given = [f for f in ("ref", "settings", "name", *extra) if getattr(self, f) not in (None, {}, [])]
        if kind != "python" and given:
            raise ValueError(f"{given} only apply to kind 'python', not {kind!r}")


class WorkerSpec(_Python):
    """Who fills a column. ``lm`` = the embedded TabularLM (default); ``sampler`` = joint resampling of real
    values; ``expression`` = derived from other columns; ``llm`` = a prompted chat model (``model``: a
    backend shorthand, see docs/llm.md), ``rows_per_call`` rows per request, shown ``examples`` real rows of
    the arm, and — with ``reflection`` and a team target — DATE's negative examples from the last batch.
    ``python`` = your own function (``ref``), filling ``columns`` (default: the key) after the stations that
    make ``depends_on`` (default: after every built-in worker; ``[]``: first)."""

    kind: Literal["lm", "sampler", "expression", "llm", "python"] = "lm"
    temperature: float = Field(1.0, ge=0)
    expressions: list[str] = []
    model: str | None = None  # for kind="llm": a backend shorthand such as "openai:gpt-4o-mini"
    rows_per_call: int = Field(20, ge=1, le=500)
    examples: int = Field(30, ge=0, le=500)
    instructions: str = ""
    reflection: bool = True
    columns: list[str] = []  # kind "python": the columns it fills, when more than the key
    depends_on: list[str] | None = None  # kind "python": the columns it reads

    @model_validator(mode="after")
    def _kind_fields(self) -> "WorkerSpec":
        self._python_fields(self.kind, ("columns", "depends_on"))
        if self.kind == "expression" and not self.expressions:
            raise ValueError("an expression worker needs 'expressions', e.g. ['total = price * qty']")
        if self.kind != "expression" and self.expressions:
            raise ValueError(f"'expressions' only applies to kind 'expression', not {self.kind!r}")
        if self.kind == "llm" and not self.model:
            raise ValueError("an llm worker needs 'model', e.g. 'openai:gpt-4o-mini'")
        return self


class CoordinatorSpec(_Spec):
    """How the coordinator splits columns into components and the data into arms (partitions)."""

    components: list[Component] | None = None  # a plan written by hand; None = derived from the data
    depends_on: dict[str, list[str]] = {}  # hints: column -> columns it must come after
    group_threshold: float = Field(0.8, gt=0, le=1)
    edge_threshold: float = Field(0.2, gt=0, le=1)
    # One LM station for every LM component: the LM already models them jointly, and one call costs less
    # than one per component (benchmarks/RESULTS.md, "stations"). False = one station per component (T²).
    fuse_lm: bool = True
    detect_expressions: bool = True
    # DATE arms are opt-in: on the demo table anchoring batches to tree leaves raised C2ST AUC 0.615 -> 0.728
    # (docs/assembly-line.md). auto: tree on the target, else clusters.
    partitions: Literal["auto", "tree", "cluster", "none"] = "none"
    arms: list[Arm] | None = None  # arms written by hand (pandas query rules); None = derived
    max_arms: int = Field(6, ge=1, le=64)
    min_arm_rows: int = Field(50, ge=1)
    # An LLM task manager (T²) splits the columns instead of the measured dependence; its plan is checked
    # (exact cover, acyclic) and the errors are shown to it on retry. None = the measured plan.
    model: str | None = None
    temperature: float = Field(0.0, ge=0)


class EvolverSpec(_Python):
    """An evolution agent. ``rebalance`` brings ``column``'s class ``value`` (default: the rarest) to ``ratio``
    of the accepted rows. ``complicate`` draws conditions from rare combinations and tails of ``columns``;
    ``generalise`` combines their values in ways the real table does not have. Both act on ``share`` of
    the batches. ``python``: your own function of the turn (``ref``)."""

    kind: Literal["rebalance", "complicate", "generalise", "llm", "python"]
    column: str | None = None
    value: Any = None
    ratio: float | None = Field(None, gt=0, lt=1)
    columns: list[str] = []
    share: float = Field(0.2, gt=0, le=1)
    # kind "llm": a chat model proposes `count` value combinations of `columns` in `direction`
    model: str | None = None
    direction: Literal["complicate", "generalise"] = "complicate"
    count: int = Field(20, ge=1, le=500)
    temperature: float = Field(0.7, ge=0)
    instructions: str = ""

    @model_validator(mode="after")
    def _kind_fields(self) -> "EvolverSpec":
        self._python_fields(self.kind)
        if self.kind == "rebalance" and (self.column is None or self.ratio is None):
            raise ValueError("a rebalance evolver needs 'column' and 'ratio', e.g. column: smoker, ratio: 0.5")
        if self.kind == "llm" and not self.model:
            raise ValueError("an llm evolver needs 'model', e.g. 'openai:gpt-4o-mini'")
        return self


class JudgeSpec(_Python):
    """A judge and its row thresholds for the objective stage. ``classifier`` with ``mode="ratio"``
    (default): rejection sampling, a row is kept with probability min(1, r/M), r = φ/(1 − φ), M the
    ``quantile`` of r over the calibration rows; with ``mode="score"``: indistinguishability score
    1 − 2|0.5 − φ| ≥ ``threshold``, φ = P(real|x). ``labels`` (needs a target): CLLM confidence ≥ ``threshold``
    and certainty ≥ ``certainty``. ``rules``: share of the schema's constraints a row keeps ≥ ``threshold``.
    ``python``: your own function's score ≥ ``threshold`` (default: the decorator's, else 0.5)."""

    kind: Literal["classifier", "labels", "rules", "llm", "python"]
    mode: Literal["ratio", "score"] = "ratio"
    quantile: float = Field(0.95, gt=0, le=1)
    # classifier: a small, regularised model (True) that learns where the LM is off, not the training rows'
    # own noise; False = the evaluation's full-size classifier (rejects more, fits the training sample).
    smooth: bool = True
    # None = the kind's default: 0 (0.5 for llm); for python the decorator's threshold, else 0.5 (decided when
    # the ref is imported, so None must survive a dump and reload of the team)
    threshold: float | None = Field(None, ge=0, le=1)
    certainty: float = Field(0.0, ge=0, le=1)
    calibration_rows: int = Field(4000, ge=50)  # synthetic rows the classifier judge learns from
    # kind "llm": a chat model scores rows 1-5 against `rubric`; the score maps to (s - 1) / 4, so the
    # default threshold 0.5 keeps rows scored 3 or more
    model: str | None = None
    rubric: str = ""
    rows_per_call: int = Field(20, ge=1, le=500)

    @model_validator(mode="after")
    def _llm_fields(self) -> "JudgeSpec":
        self._python_fields(self.kind)
        if self.kind == "llm":
            if not self.model:
                raise ValueError("an llm judge needs 'model', e.g. 'openai:gpt-4o-mini'")
        if self.threshold is None and self.kind != "python":
            self.threshold = 0.5 if self.kind == "llm" else 0.0
        return self


class StageSpec(_Python):
    """An extra QC stage of your own (``ref``): it runs after sanity, on the rows still in."""

    kind: Literal["python"] = "python"

    @model_validator(mode="after")
    def _kind_fields(self) -> "StageSpec":
        self._python_fields(self.kind)
        return self


class QCSpec(_Spec):
    """Settings of the QC chain's objective and diversity stages (sanity has no knobs: it always applies),
    and ``stages`` of your own between sanity and objective."""

    stages: list[StageSpec] = []
    batch_threshold: float = Field(0.0, ge=0, le=1)
    min_distance: float = Field(0.0, ge=0, le=1)  # near-duplicate radius (distance in [0, 1]); 0 = off
    min_gain: float | None = None  # reject a batch whose coverage gain is below this; None = off
    cells: int = Field(32, ge=1)


class BanditSpec(_Spec):
    """Arm choice and reward. ``uniform`` and ``greedy`` exist as baselines for the ablation. The reward is
    ``weights``·(QC yield, judged quality, diversity gain) / Σweights. With ``mix="real"`` an arm closes once
    it holds (1 + ``slack``) × its real share of the requested rows, so the bandit cannot skew the mix far."""

    policy: Literal["ucb1", "thompson", "uniform", "greedy"] = "ucb1"
    c: float = Field(2.0, ge=0)
    weights: tuple[float, float, float] = (0.4, 0.4, 0.2)
    mix: Literal["real", "free"] = "real"
    slack: float = Field(0.25, ge=0)


def _batch_rows(value: Any) -> int | str:
    if value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"batch_rows must be a whole number of rows (at least 1) or 'auto', got {value!r}")
    return value


SINGLE_ARM_BATCH_ROWS = 4096  # measured: benchmarks/RESULTS.md, "line13" (the line's overhead by batch size)
ARMS_BATCH_ROWS = 512


class Unset:
    """The type of `UNSET`: an option that was not given, where None is a value of its own."""


UNSET = Unset()


class Team(_Spec):
    """The whole line's definition. Every field has a default: ``Team()`` is the offline default team."""

    target: str | None = None
    about: str = ""  # what the table is, in a sentence or two (LLM agents read it)
    descriptions: dict[str, str] = {}  # column -> meaning (T²'s ξ); adds to the schema's descriptions
    seed: int = 0
    # Rows per batch. "auto": 4096 when the bandit has one arm (nothing to choose between batches, and the
    # graph's and QC's cost per batch is spread over more rows), 512 with arms (each batch teaches the bandit).
    batch_rows: Annotated[int | str, BeforeValidator(_batch_rows)] = "auto"
    max_batches: int | None = Field(None, ge=1)
    max_seconds: float | None = Field(None, gt=0)
    # Consecutive batches that accept nothing before the run stops as "stalled" instead of looping forever.
    patience: int = Field(20, ge=1)
    lm: TabularLMConfig = TabularLMConfig()
    coordinator: CoordinatorSpec = CoordinatorSpec()
    workers: dict[str, WorkerSpec] = {"*": WorkerSpec()}
    evolvers: list[EvolverSpec] = []
    judges: list[JudgeSpec] = [JudgeSpec(kind="classifier"), JudgeSpec(kind="rules", threshold=1.0)]
    qc: QCSpec = QCSpec()
    bandit: BanditSpec = BanditSpec()
    llm: LLMSettings = LLMSettings()
    # Folders where the refs of python agents are looked for after Python's path (a team file's folder)
    _code_path: list[str] = PrivateAttr(default_factory=list)

    @property
    def code_path(self) -> list[str]:
        """Folders searched for python agents' modules after Python's own path (and before the current folder)."""
        return list(self._code_path)

    def with_code_path(self, folders: list[str]) -> "Team":
        """This team, looking for its python agents' modules in ``folders`` too (a resumed run's, from run.json)."""
        team = self.model_copy()
        team._code_path = [str(Path(f).resolve()) for f in folders]
        return team

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "team", code_path: list[str] | None = None) -> "Team":
        """Validate a mapping (e.g. parsed YAML); `InvalidTeamError` names every bad key at once."""
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InvalidTeamError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
        try:
            team = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidTeamError(f"{source}: {_describe_validation_error(exc)}") from None
        return team.with_code_path(code_path) if code_path else team

    @classmethod
    def load(cls, path: str | Path, *, code_path: list[str] | None = None) -> "Team":
        """Read a team from YAML (or JSON, a subset of YAML). Its python agents' modules are looked for in the
        file's folder too (or in ``code_path``, when given)."""
        code_path = code_path if code_path is not None else [str(Path(path).resolve().parent)]
        return cls.from_dict(read_settings_file(path, "team", InvalidTeamError), source=str(path),
                             code_path=code_path)

    def with_options(
        self, *, target: str | None = None, seed: int | None = None, max_batches: int | None = None,
        max_seconds: float | None = None, time_budget_s: float | str | None | Unset = UNSET,
        rebalance: Sequence[Mapping[str, Any]] = (), llm_columns: Mapping[str, str] | None = None,
        judge_llm: str | None = None, coordinator_llm: str | None = None, about: str | None = None,
    ) -> "Team":
        """This team with command-line style overrides (None / empty: keep the team's own); validated like a team
        file, so every bad value is named at once.

        ``rebalance`` adds rebalance evolvers (``{"column", "value", "ratio"}``); ``llm_columns`` maps a column
        (or ``"*"``) to the chat model that fills it; ``judge_llm`` replaces any LLM judge by one on that model.

        Example:
            >>> team = Team().with_options(target="cut", llm_columns={"notes": "openai:gpt-4o-mini"})
            >>> team.target, team.worker_for("notes").kind, team.worker_for("carat").kind
            ('cut', 'llm', 'lm')
        """
        changes: dict[str, Any] = {k: v for k, v in {"target": target, "seed": seed, "max_batches": max_batches,
                                                       "max_seconds": max_seconds, "about": about}.items()
                                   if v is not None}
        if not isinstance(time_budget_s, Unset):
            changes["lm"] = {**self.lm.model_dump(), "time_budget_s": time_budget_s}
        if rebalance:
            changes["evolvers"] = [e.model_dump() for e in self.evolvers] + [{"kind": "rebalance", **r} for r in rebalance]
        if llm_columns:
            workers = {k: w.model_dump() for k, w in self.workers.items()}
            for column, model in llm_columns.items():
                workers[column] = {**workers.get(column, {}), "kind": "llm", "model": model}
            changes["workers"] = workers
        if judge_llm:
            changes["judges"] = [j.model_dump() for j in self.judges if j.kind != "llm"] + [{"kind": "llm", "model": judge_llm}]
        if coordinator_llm:
            changes["coordinator"] = {**self.coordinator.model_dump(), "model": coordinator_llm}
        if not changes:
            return self
        return Team.from_dict({**self.model_dump(), **changes}, source="options", code_path=self.code_path)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_defaults=True), sort_keys=False) or "{}\n"

    def rows_per_batch(self, arms: int) -> int:
        """The batch size the line uses with ``arms`` arms (``batch_rows``, "auto" resolved).

        Example:
            >>> Team().rows_per_batch(1), Team().rows_per_batch(4), Team(batch_rows=100).rows_per_batch(4)
            (4096, 512, 100)
        """
        if self.batch_rows != "auto":
            return self.batch_rows
        return SINGLE_ARM_BATCH_ROWS if arms <= 1 else ARMS_BATCH_ROWS

    def worker_for(self, column: str) -> WorkerSpec:
        """The spec of the built-in worker that fills ``column`` ("*" when the column has none of its own).
        Python workers fill the columns they declare, whatever their key: the coordinator places those."""
        own = self.workers.get(column)
        return own if own is not None and own.kind != "python" else self.workers.get("*") or WorkerSpec()

    def model_specs(self) -> list[tuple[str, str]]:
        """(where, model) for every role that names a chat model."""
        out = [(f"workers.{k}", w.model) for k, w in self.workers.items() if w.kind == "llm" and w.model]
        if self.coordinator.model:
            out.append(("coordinator.model", self.coordinator.model))
        out += [(f"judges[{i}]", j.model) for i, j in enumerate(self.judges) if j.kind == "llm" and j.model]
        out += [(f"evolvers[{i}]", e.model) for i, e in enumerate(self.evolvers) if e.kind == "llm" and e.model]
        return out

    def problems(self, schema: Schema, models: Any = None) -> list[str]:
        """Every way the team does not fit the table, one sentence each. ``models``: names of chat models
        registered from Python (they need no shorthand)."""
        names = set(schema.names)
        out = []
        for where, spec in self.model_specs():
            if models and spec in models:
                continue
            try:
                kind = parse_model_spec(spec)[0]
            except TablineError as exc:
                out.append(f"{where}: {exc}")
                continue
            if kind == "embedded" and not where.startswith("workers."):
                out.append(f"{where}: 'embedded' is the TabularLM and can only fill columns; name a chat model")

        def need(col: Any, where: str) -> None:
            if col not in names:
                out.append(f"{where} names unknown column {col!r}; columns are {schema.names}")

        for col in self.descriptions:
            need(col, "descriptions")
        if self.target is not None:
            need(self.target, "target")
        for key, spec in self.workers.items():
            if key != "*" and spec.kind != "python":  # a python worker's key may name it; checked below
                need(key, f"workers.{key}")
        for col, parents in self.coordinator.depends_on.items():
            need(col, f"coordinator.depends_on.{col}")
            for p in parents:
                need(p, f"coordinator.depends_on.{col}")
        for i, ev in enumerate(self.evolvers):
            where = f"evolvers[{i}] ({ev.kind})"
            if ev.column is not None:
                need(ev.column, where)
                if ev.column in names and ev.kind == "rebalance":
                    kind = schema.column(ev.column).kind
                    if kind not in ("categorical", "boolean"):
                        out.append(f"{where}: column {ev.column!r} is {kind}; rebalancing needs classes")
                    elif ev.value is not None and not schema.check(
                            _one_row(schema, ev.column, ev.value))[ev.column].all():
                        out.append(f"{where}: column {ev.column!r} has no class {ev.value!r}")
            for c in ev.columns:
                need(c, where)
        kinds = [j.kind for j in self.judges]
        for dup in sorted({k for k in kinds if kinds.count(k) > 1 and k != "python"}):
            out.append(f"judges: {dup!r} is listed more than once")
        if "labels" in kinds:
            if self.target is None:
                out.append("judges: the 'labels' judge needs a target (team 'target' or --target)")
            elif self.target in names and schema.column(self.target).kind not in ("categorical", "boolean"):
                out.append(f"judges: the 'labels' judge needs a categorical target; {self.target!r} is "
                           f"{schema.column(self.target).kind}")
        return out + python_problems(self, schema)

    def check(self, schema: Schema, models: Any = None) -> None:
        problems = self.problems(schema, models)
        if problems:
            raise InvalidTeamError(f"team: {len(problems)} problem(s): " + "; ".join(problems))


def _one_row(schema: Schema, column: str, value: Any):
    import pandas as pd

    frame = pd.DataFrame({c: [None] for c in schema.names}, dtype=object)
    frame[column] = [value]
    return frame
