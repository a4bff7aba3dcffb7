"""The ``kind: python`` agents of a team: import each ``ref``, check it against the table and its settings
against its signature, and build the wrapper the line calls (`tabline.agents.wrappers`).

Names come from, first to last: the team's ``name``, the decorator's ``name``, the last part of the ref
(``"my_agents:z_from_depth"`` → ``z_from_depth``). Settings go to the class's constructor, or to each call of
a function as keyword arguments. Refs are looked up on Python's path, then in the team's code folders (the
team file's folder, the folder the run started from; see `tabline.agents.refs`).

Example:
    >>> import pandas as pd
    >>> from tabline.agents.team import Team
    >>> from tabline.schema import Schema
    >>> schema = Schema.infer(pd.DataFrame({"a": [1.0, 2.0, 3.0]}))
    >>> team = Team.from_dict({"judges": [{"kind": "python", "ref": "textwrap:dedent", "settings": {"width": 2}},
    ...                                   {"kind": "python", "ref": "nowhere_at_all:f"}]})
    >>> for p in python_problems(team, schema): print(p)  # doctest: +ELLIPSIS
    judges[0].settings: got an unexpected keyword argument 'width'
    judges[1].ref: no module named 'nowhere_at_all' on the Python path nor in ...
"""
from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from typing import Any

from tabline.agents.custom import AgentInfo, declared
from tabline.agents.wrappers import (PythonEvolver, PythonJudge, PythonStage, PythonWorker, is_runnable,
                                     takes_keyword)
from tabline.agents.refs import RefError, import_ref, where_raised
from tabline.agents.roles import AgentError

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILT_IN_JUDGES = {"classifier", "labels", "rules", "llm"}  # names their scores go by
METHODS = {"worker": "fill", "judge": "score", "evolver": "propose", "qc_stage": "check"}


@dataclass
class Resolved:
    """A python spec's ref, imported: the object, what its decorator declared, and the agent's name."""

    ref: str
    obj: Any
    info: AgentInfo | None
    name: str


def search_path(team: Any) -> list[str]:
    """Where refs are looked for after Python's own path: the team's code folders, then the current folder."""
    return [*team.code_path, os.getcwd()]


def resolve(spec: Any, role: str, search: list[str]) -> Resolved:
    obj = import_ref(spec.ref, search)
    info = declared(obj)
    if info is not None and info.role != role:
        raise RefError(f"{spec.ref} is declared with @{info.role}, but the team uses it as a {role.replace('_', ' ')}")
    name = spec.name or (info.name if info else None) or spec.ref.rpartition(":")[2].rpartition(".")[2]
    if not NAME.match(name):
        raise RefError(f"the agent's name {name!r} must be letters, digits and _ (it names a node of the graph); "
                       "give it one with `name:`")
    return Resolved(spec.ref, obj, info, name)


def settings_problem(obj: Any, settings: dict[str, Any], role: str) -> str | None:
    """Why ``settings`` cannot be given to ``obj`` (a class: its constructor; a function: each call), or None."""
    if is_runnable(obj):
        return "a Runnable takes no settings; build it with them in your module" if settings else None
    if inspect.isclass(obj):
        target, args = obj, ()
    elif callable(obj) and not callable(getattr(obj, METHODS[role], None)):
        target, args = obj, (None,)
        if role == "worker" and takes_keyword(obj, "seed"):
            settings = {**settings, "seed": 0}
    else:
        return (f"settings go to a class's constructor or to a function's calls; {type(obj).__name__} objects "
                "take none") if settings else None
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):  # no signature to check against (some builtins)
        return None
    try:
        signature.bind(*args, **settings)
    except TypeError as exc:
        return str(exc)
    return None


def worker_columns(key: str, spec: Any, info: AgentInfo | None, agent: Any = None) -> list[str]:
    if spec.columns:
        return list(spec.columns)
    if info is not None and info.columns:
        return list(info.columns)
    own = getattr(agent, "columns", None) if agent is not None and not is_runnable(agent) else None
    return list(own) if isinstance(own, (list, tuple)) and own else [key]


def worker_depends_on(spec: Any, info: AgentInfo | None) -> list[str] | None:
    if spec.depends_on is not None:
        return list(spec.depends_on)
    return list(info.depends_on) if info is not None and info.depends_on is not None else None


def judge_threshold(spec: Any, info: AgentInfo | None) -> float:
    if spec.threshold is not None:
        return spec.threshold
    return info.threshold if info is not None and info.threshold is not None else 0.5


# ---------------------------------------------------------------------- checking a team against a table
def python_problems(team: Any, schema: Any) -> list[str]:
    """Every problem of the team's python agents, one sentence each, naming the YAML key."""
    names, out, search = set(schema.names), [], search_path(team)
    owner = {key: f"workers.{key}" for key, spec in team.workers.items() if spec.kind != "python" and key != "*"}
    seen: dict[tuple[str, str], str] = {}

    def need(col: Any, where: str) -> None:
        if col not in names:
            out.append(f"{where} names unknown column {col!r}; columns are {schema.names}")

    def named(role: str, name: str, where: str) -> None:
        if (role, name) in seen:
            out.append(f"{where}: the name {name!r} is taken by {seen[role, name]}; give one of them `name:`")
        seen.setdefault((role, name), where)

    def load(spec: Any, role: str, where: str) -> Resolved | None:
        try:
            found = resolve(spec, role, search)
        except RefError as exc:
            out.append(f"{where}.ref: {exc}")
            return None
        problem = settings_problem(found.obj, spec.settings, role)
        if problem:
            out.append(f"{where}.settings: {problem}")
        named(role, found.name, where)
        return found

    for key, spec in team.workers.items():
        if spec.kind != "python":
            continue
        where = f"workers.{key}"
        if key == "*":
            out.append(f"{where}: a python worker fills the columns it names; key it by its column")
            continue
        found = load(spec, "worker", where)
        if found is None:
            continue
        for col in worker_columns(key, spec, found.info):
            need(col, where)
            if col in owner:
                out.append(f"{where}: column {col!r} is filled by {owner[col]} already")
            owner.setdefault(col, where)
        for col in worker_depends_on(spec, found.info) or []:
            need(col, f"{where}.depends_on")
    for i, spec in enumerate(team.judges):
        if spec.kind == "python":
            found = load(spec, "judge", f"judges[{i}]")
            if found is not None and found.name in BUILT_IN_JUDGES:
                out.append(f"judges[{i}]: {found.name!r} is the name of a built-in judge; give yours another `name:`")
    for i, spec in enumerate(team.evolvers):
        if spec.kind == "python":
            load(spec, "evolver", f"evolvers[{i}]")
    for i, spec in enumerate(team.qc.stages):
        load(spec, "qc_stage", f"qc.stages[{i}]")
    return out


# ---------------------------------------------------------------------- building the line's agents
def _load(team: Any, spec: Any, role: str, where: str) -> tuple[Resolved, Any, dict[str, Any]]:
    """The resolved ref, the agent (a class is instantiated with the settings) and the settings left for calls."""
    try:
        found = resolve(spec, role, search_path(team))
    except RefError as exc:
        from tabline.agents.team import InvalidTeamError

        raise InvalidTeamError(f"team: {where}.ref: {exc}") from None
    if not inspect.isclass(found.obj):
        return found, found.obj, dict(spec.settings)
    try:
        return found, found.obj(**spec.settings), {}
    except Exception as exc:  # the user's constructor
        raise AgentError(f"({spec.ref}) raised {type(exc).__name__} while being built: {exc}{where_raised(exc)}",
                         agent=found.name, role=role.replace("_", " ")) from exc


def build_workers(team: Any, schema: Any) -> dict[str, PythonWorker]:
    """The team's python workers by name (components of the plan carry these names)."""
    out: dict[str, PythonWorker] = {}
    for key, spec in team.workers.items():
        if spec.kind == "python":
            found, agent, settings = _load(team, spec, "worker", f"workers.{key}")
            info = found.info or declared(agent)
            out[found.name] = PythonWorker(agent, name=found.name, columns=worker_columns(key, spec, info, agent),
                                           ref=spec.ref, settings=settings, depends_on=worker_depends_on(spec, info),
                                           schema=schema)
    return out


def build_judge(team: Any, index: int, spec: Any, schema: Any) -> tuple[PythonJudge, float]:
    found, agent, settings = _load(team, spec, "judge", f"judges[{index}]")
    return (PythonJudge(agent, name=found.name, ref=spec.ref, settings=settings, schema=schema),
            judge_threshold(spec, found.info or declared(agent)))


def build_evolver(team: Any, index: int, spec: Any, schema: Any) -> PythonEvolver:
    found, agent, settings = _load(team, spec, "evolver", f"evolvers[{index}]")
    return PythonEvolver(agent, name=found.name, schema=schema, ref=spec.ref, settings=settings)


def build_stages(team: Any, schema: Any) -> dict[str, PythonStage]:
    out: dict[str, PythonStage] = {}
    for i, spec in enumerate(team.qc.stages):
        found, agent, settings = _load(team, spec, "qc_stage", f"qc.stages[{i}]")
        out[found.name] = PythonStage(agent, name=found.name, ref=spec.ref, settings=settings, schema=schema)
    return out


def python_refs(team: Any) -> list[str]:
    """Every ref the team names, in order."""
    specs = [*team.workers.values(), *team.judges, *team.evolvers, *team.qc.stages]
    return list(dict.fromkeys(s.ref for s in specs if getattr(s, "kind", "python") == "python" and s.ref))


__all__ = ["build_evolver", "build_judge", "build_stages", "build_workers", "python_problems", "python_refs",
           "search_path"]
