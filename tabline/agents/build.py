"""From a team's specs to the agents the line calls: one factory per role, in one place.

A spec says *what* an agent is (``kind: lm``, ``kind: classifier``, ``kind: python``, ...); these functions
build the object that plays the role (`tabline.agents.roles`). A new kind of agent is a new branch here and
a new class, never a branch in the line.

- `worker_kind` / `build_worker` — a plan component's `Worker`: the embedded LM, a sampler, expressions, an
  LLM, or your python worker (built by the coordinator, which plans around it).
- `build_judges` — the team's `Judge` list and the objective stage's threshold per score name.
- `build_evolvers` — the team's `Evolver` list (rebalancing first).
- `calibration_rows` — the synthetic rows the classifier judge learns from.

Example:
    >>> import pandas as pd
    >>> from tabline.agents.team import Team
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "y"]})
    >>> judges, thresholds = build_judges(Team(judges=[{"kind": "rules", "threshold": 1.0}]), real, Schema.infer(real))
    >>> [j.name for j in judges], thresholds
    (['rules'], {'rules': 1.0})
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd

from tabline.agents.custom_team import build_evolver, build_judge
from tabline.agents.evolvers import Complicator, Generaliser, Rebalancer
from tabline.agents.judges import ClassifierJudge, LabelJudge, RuleJudge
from tabline.agents.plan import Component
from tabline.agents.roles import Evolver, Judge, Worker
from tabline.agents.team import JudgeSpec, Team
from tabline.agents.workers import ExpressionWorker, LMWorker, SamplerWorker
from tabline.io import through_parquet
from tabline.schema import Schema
from tabline.training import TabularLM


def worker_kind(team: Team, component: Component) -> str:
    """The kind of worker a component gets: ``lm``, ``sampler``, ``expression``, ``llm`` or ``python``
    (an LLM worker whose model is ``embedded`` is the LM).

    Example:
        >>> worker_kind(Team(), Component(name="lm", columns=["a"]))
        'lm'
    """
    spec = team.worker_for(component.columns[0])
    kind = component.worker if component.worker != "lm" else spec.kind
    return "lm" if kind == "llm" and spec.model == "embedded" else kind


def build_worker(team: Team, component: Component, *, real: pd.DataFrame, schema: Schema, lm: TabularLM | None,
                 python_workers: dict[str, Worker], expressions: list[str],
                 models: dict[str, Any] | None = None) -> Worker:
    """The `Worker` of ``component``. ``python_workers``: your workers by name (the coordinator built them);
    ``expressions``: the derived columns it detected; ``models``: chat models registered by name."""
    spec = team.worker_for(component.columns[0])
    kind = worker_kind(team, component)
    if kind == "python":
        return python_workers[component.name]
    if kind == "lm":
        return LMWorker(lm, component.columns, temperature=spec.temperature)
    if kind == "sampler":
        return SamplerWorker(real, component.columns)
    if kind == "expression":
        exprs = spec.expressions if spec.kind == "expression" else expressions
        return ExpressionWorker([e for e in exprs if e.split("=")[0].strip().strip("`") in component.columns])
    from tabline.agents.llm.backends import ModelRef
    from tabline.agents.llm.worker import LLMWorker

    ref = ModelRef(spec.model, temperature=spec.temperature, settings=team.llm, registry=models or {})
    return LLMWorker(ref, component.columns, schema, real=real, about=team.about, descriptions=team.descriptions,
                     target=team.target, rows_per_call=spec.rows_per_call, examples=spec.examples,
                     instructions=spec.instructions, name=component.name)


def calibration_rows(lm: TabularLM, spec: JudgeSpec, real: pd.DataFrame, *, seed: int,
                     progress: bool = False) -> pd.DataFrame:
    """The classifier judge's synthetic rows: ``spec.calibration_rows`` rows (at most as many as real rows)
    from the LM, after a Parquet round trip — the values a resumed run reads back from its folder."""
    n = min(spec.calibration_rows, max(2, len(real)))
    return through_parquet(lm.sample(n, seed=seed + 1, progress=progress))


def build_judges(team: Team, real: pd.DataFrame, schema: Schema, *,
                 calibration: Callable[[JudgeSpec], pd.DataFrame] | None = None,
                 models: dict[str, Any] | None = None) -> tuple[list[Judge], dict[str, float | str]]:
    """The team's judges and the objective stage's threshold per score name (``"draw"``: rejection sampling).
    ``calibration(spec)`` gives a classifier judge its synthetic rows (see `calibration_rows`). A team
    without judges gets the rules judge with threshold 0, so every row is still scored."""
    judges: list[Judge] = []
    thresholds: dict[str, float | str] = {}
    for i, spec in enumerate(team.judges):
        if spec.kind == "python":
            judge, threshold = build_judge(team, i, spec, schema)
            judges.append(judge)
            thresholds[judge.name] = threshold
        elif spec.kind == "classifier":
            synthetic = calibration(spec)
            judge = ClassifierJudge(schema, seed=team.seed, mode=spec.mode, smooth=spec.smooth).fit(real, synthetic)
            if spec.mode == "ratio":
                judge.calibrate(synthetic, spec.quantile)
            judges.append(judge)
            thresholds["classifier"] = "draw" if spec.mode == "ratio" else spec.threshold
        elif spec.kind == "llm":
            from tabline.agents.llm.backends import ModelRef
            from tabline.agents.llm.judge import LLMJudge

            ref = ModelRef(spec.model, temperature=0.0, settings=team.llm, registry=models or {})
            judges.append(LLMJudge(ref, schema, real=real, rubric=spec.rubric, about=team.about,
                                   descriptions=team.descriptions, rows_per_call=spec.rows_per_call,
                                   target=team.target, seed=team.seed))
            thresholds["llm"] = spec.threshold
        elif spec.kind == "labels":
            judges.append(LabelJudge(schema, team.target, seed=team.seed).fit(real))
            thresholds["labels.confidence"] = spec.threshold
            thresholds["labels.certainty"] = spec.certainty
        else:
            judges.append(RuleJudge(schema))
            thresholds["rules"] = spec.threshold
    if not judges:
        judges.append(RuleJudge(schema))
        thresholds["rules"] = 0.0
    return judges, thresholds


def build_evolvers(team: Team, real: pd.DataFrame, schema: Schema, *,
                   models: dict[str, Any] | None = None) -> list[Evolver]:
    """The team's evolvers in the order the coordinator asks them: rebalancing first (a class short of its
    ratio outranks every other idea), then the rest as listed."""
    out: list[Evolver] = []
    default_cols = _default_evolver_columns(team, schema)
    for i, ev in sorted(enumerate(team.evolvers), key=lambda p: p[1].kind != "rebalance"):
        if ev.kind == "rebalance":
            out.append(Rebalancer(real, column=ev.column, value=ev.value, ratio=ev.ratio))
        elif ev.kind == "complicate":
            out.append(Complicator(real, columns=ev.columns or default_cols, share=ev.share))
        elif ev.kind == "python":
            out.append(build_evolver(team, i, ev, schema))
        elif ev.kind == "llm":
            from tabline.agents.llm.backends import ModelRef
            from tabline.agents.llm.evolver import LLMEvolver

            ref = ModelRef(ev.model, temperature=ev.temperature, settings=team.llm, registry=models or {})
            out.append(LLMEvolver(ref, real, schema, columns=ev.columns or default_cols, direction=ev.direction,
                                  share=ev.share, count=ev.count, about=team.about, descriptions=team.descriptions,
                                  instructions=ev.instructions, target=team.target))
        else:
            out.append(Generaliser(real, columns=ev.columns or default_cols, share=ev.share))
    return out


def _default_evolver_columns(team: Team, schema: Schema) -> list[str]:
    """The target, then the categorical columns with the fewest classes: two columns in all."""
    cols = [team.target] if team.target else []
    cats = sorted((c for c in schema.columns if c.kind in ("categorical", "boolean") and c.name not in cols),
                  key=lambda c: len(c.categories or []))
    return (cols + [c.name for c in cats])[:2]


__all__ = ["build_evolvers", "build_judges", "build_worker", "calibration_rows", "worker_kind"]
