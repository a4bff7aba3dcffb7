"""Your own agents: a plain function (or a class, or a LangChain `Runnable`) as a worker, judge, evolver or
extra QC stage, beside tabline's own.

What each role is, as the simplest thing that works:

- **worker** — ``fn(batch, **settings) -> Series | DataFrame``: the values of its column(s) for the batch's
  rows, indexed like ``batch``. ``batch`` holds the columns the stations before it made. A function with a
  ``seed`` parameter gets the station's seed for the batch (draw from it, and a resumed run makes the same
  rows). A class with ``fill(batch, *, seed)`` and ``columns`` (the `Worker` protocol) works too.
- **judge** — ``fn(batch, **settings) -> Series`` of scores in [0, 1] (1 = best) or booleans; a class with
  ``score(batch)``, or the full `Judge` protocol. The objective stage rejects a row scored below the
  judge's ``threshold`` (default 0.5) with the reason ``objective: judge 'name' scored 0.20 < 0.5``.
- **evolver** — ``fn(turn, **settings) -> DataFrame | dict | None``: starting values of the next batch's
  rows (a dict ``{column: value}`` sets every row), or None to pass. ``turn`` is a
  `tabline.agents.evolvers.Turn` (batch id, rows wanted, the arm's real rows, accepted counts, seed).
- **QC stage** — ``fn(batch, **settings) -> Series``: per row a reason to reject it ("" to keep it), or a
  boolean (True = keep). It runs after sanity, on the rows still in; rejected rows carry its name as stage.
- A LangChain ``Runnable`` (a chain, a compiled LangGraph graph) is a worker or judge as it is: it gets
  each row as a dict and answers the value (or a mapping holding the worker's columns; a judge's
  ``score``); rows go through ``Runnable.batch``.

The decorators declare what the line needs to know, the function stays a plain function:
``@worker(columns=..., depends_on=..., name=...)``, ``@judge(threshold=..., name=...)``, ``@evolver``,
``@qc_stage``. The wrappers `PythonWorker`, `PythonJudge`, `PythonEvolver`, `PythonStage` (from
`tabline.agents.wrappers`) give your agent its role's method and check what it returns: a crash, the wrong
number of rows or the wrong columns stop the run with an `AgentError` naming the agent and what it
returned; values the table cannot take are left to the QC stages, which reject those rows with stage and
reason.

Example:
    >>> import pandas as pd
    >>> @worker(columns=["total"], depends_on=["price", "qty"])
    ... def total(batch):
    ...     return batch.price * batch.qty
    >>> total(pd.DataFrame({"price": [2.0], "qty": [3]})).tolist()  # still a plain function
    [6.0]
    >>> station = PythonWorker(total, name="total", columns=["total"])
    >>> station.fill(pd.DataFrame({"price": [2.0, 5.0], "qty": [3, 1]})).frame
       total
    0    6.0
    1    5.0
    >>> PythonWorker(lambda batch: batch.price[:1], name="short", columns=["total"]).fill(
    ...     pd.DataFrame({"price": [2.0, 5.0]}))
    Traceback (most recent call last):
    tabline.agents.roles.AgentError: worker 'short' returned 1 rows for a batch of 2
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# the wrappers live apart (checking what user code returns is its own idea); users meet them here
from tabline.agents.wrappers import PythonEvolver, PythonJudge, PythonStage, PythonWorker, is_runnable


@dataclass(frozen=True)
class AgentInfo:
    """What a decorator declared about an agent (None = not declared: the team's YAML or a default decides)."""

    role: str  # "worker", "judge", "evolver" or "qc_stage"
    name: str | None = None
    columns: tuple[str, ...] | None = None
    depends_on: tuple[str, ...] | None = None
    threshold: float | None = None


_ATTR = "__tabline_agent__"
_DECLARED: dict[int, tuple[Any, AgentInfo]] = {}  # objects that refuse new attributes (pydantic Runnables)


def declared(obj: Any) -> AgentInfo | None:
    """What ``obj``'s decorator declared, or None."""
    try:
        info = getattr(obj, _ATTR, None)
    except Exception:  # an object whose __getattr__ misbehaves has declared nothing
        info = None
    if isinstance(info, AgentInfo):
        return info
    entry = _DECLARED.get(id(obj))
    return entry[1] if entry is not None and entry[0] is obj else None


def _declare(obj: Any, info: AgentInfo) -> Any:
    try:
        setattr(obj, _ATTR, info)
    except (AttributeError, TypeError, ValueError):
        _DECLARED[id(obj)] = (obj, info)  # kept alive with its entry, so the id is never reused
    return obj


def _names(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _decorate(obj: Any, info: AgentInfo) -> Any:
    return (lambda o: _declare(o, info)) if obj is None else _declare(obj, info)


def worker(obj: Any = None, *, columns: str | list[str] | None = None, depends_on: list[str] | None = None,
           name: str | None = None) -> Any:
    """Declare a worker: the ``columns`` it fills (default: the team's key), the columns it reads
    (``depends_on``; default: every column tabline's own workers make — it runs after them; ``[]``: none, it
    runs first) and its ``name`` in traces and the graph (default: the name the team's ref uses).

    Example:
        >>> @worker(columns="z", depends_on=["x", "y"])
        ... def z(batch):
        ...     return batch.x + batch.y
        >>> declared(z).columns, declared(z).depends_on
        (('z',), ('x', 'y'))
    """
    return _decorate(obj, AgentInfo("worker", name, _names(columns), _names(depends_on)))


def judge(obj: Any = None, *, threshold: float | None = None, name: str | None = None) -> Any:
    """Declare a judge: the ``threshold`` its score must reach (default 0.5; the team's ``threshold`` wins)
    and its ``name`` (the reason of the rows it rejects names it).

    Example:
        >>> @judge(threshold=0.8)
        ... def positive(batch):
        ...     return (batch.price > 0).astype(float)
        >>> declared(positive).threshold
        0.8
    """
    return _decorate(obj, AgentInfo("judge", name, threshold=threshold))


def evolver(obj: Any = None, *, name: str | None = None) -> Any:
    """Declare an evolver (its ``name`` appears as the source of the conditions it sets).

    Example:
        >>> @evolver
        ... def only_fair(turn):
        ...     return {"cut": "Fair"}
        >>> declared(only_fair).role
        'evolver'
    """
    return _decorate(obj, AgentInfo("evolver", name))


def qc_stage(obj: Any = None, *, name: str | None = None) -> Any:
    """Declare an extra QC stage (its ``name`` is the stage of the rows it rejects).

    Example:
        >>> @qc_stage(name="round")
        ... def round_stones(batch):
        ...     return (batch.x - batch.y).abs() < 0.2
        >>> declared(round_stones).name
        'round'
    """
    return _decorate(obj, AgentInfo("qc_stage", name))


__all__ = ["AgentInfo", "PythonEvolver", "PythonJudge", "PythonStage", "PythonWorker", "declared", "evolver",
           "is_runnable", "judge", "qc_stage", "worker"]
