"""The line's roles as protocols: what a `Worker`, `Judge`, `Evolver` and extra `QCStage` must offer.

The line calls these methods and nothing else, for tabline's own agents and for yours alike (a function you
name in a team is wrapped by `tabline.agents.custom` into an object with the role's method). A new kind of
agent is a new class with the method, never a new branch in the line.

- `Worker` — ``columns`` it fills and ``fill(batch, *, seed, context) -> Filled``: those columns, indexed like
  ``batch`` (the partial rows: the columns of the stations before it), plus the rows it could not fill and
  its LLM calls. ``context`` (`FillContext`) is what the line knows about the batch beyond its rows.
- `Judge` — ``name`` and ``judge(batch) -> Judgement``: one score in [0, 1] per row under each score's name
  (1 = best), plus what it wants kept beside the rows (notes, LLM calls, tokens).
- `Evolver` — ``name``, ``watches`` (columns whose accepted class counts it reads) and
  ``propose(turn) -> Proposal``: starting values for the next batch's rows (one row per row to make), or
  none to pass, plus its LLM calls.
- `QCStage` — ``name`` and ``check(batch) -> Series``: per row the reason it is rejected, "" where it passes.

Whatever an agent made beside its answer — LLM calls to keep in the run folder, their tokens, rows it gave
up on — comes back in the answer (`Filled`, `Judgement`, `Proposal`), so the line never asks an agent what
kind it is.

`AgentError` is how an agent's fault stops the run: one message naming the agent and what it did.

Example:
    >>> import pandas as pd
    >>> class Double:
    ...     name, columns = "double", ["y"]
    ...     def fill(self, batch, *, seed=0, context=None):
    ...         return Filled(pd.DataFrame({"y": batch.x * 2}, index=batch.index))
    >>> isinstance(Double(), Worker), isinstance(Double(), Judge)
    (True, False)
    >>> Double().fill(pd.DataFrame({"x": [1, 2]})).frame["y"].tolist()
    [2, 4]

(Your own functions and classes need none of this: `tabline.agents.custom` wraps them into these roles.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from tabline.errors import TablineError


@dataclass
class FillContext:
    """What the line tells a worker about the batch beyond its rows: the arm (rule, real rows) and DATE's
    reflection (groups of generated rows that lowered validation accuracy). Workers that need none of it
    ignore it.

    Example:
        >>> FillContext(rule="`carat` > 1").negatives
        []
    """

    rule: str = ""
    arm_rows: pd.DataFrame | None = None
    negatives: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Filled:
    """A worker's answer for one batch. ``frame``: its columns, indexed like the batch; ``failures``: row
    label -> why it could not fill that row (the line rejects the row at stage ``worker`` with that reason);
    ``calls`` and ``usage``: the LLM calls made and their tokens, for the run folder.

    Example:
        >>> f = Filled(pd.DataFrame({"y": [1, None]}), failures={1: "no valid value"})
        >>> len(f.frame), f.failures, f.usage
        (2, {1: 'no valid value'}, None)
    """

    frame: pd.DataFrame
    failures: dict[Any, str] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@runtime_checkable
class Worker(Protocol):
    """Fills ``columns`` for a batch of partial rows (see `Filled`)."""

    name: str
    columns: list[str]

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled: ...


@dataclass
class Judgement:
    """A judge's verdict on one batch. ``scores``: score name -> one value in [0, 1] per row of the batch
    (the objective stage thresholds each name); ``notes``: row label -> text kept with the row's reason when
    it is rejected; ``calls`` and ``usage``: the LLM calls made and their tokens, for the run folder.

    Example:
        >>> j = Judgement({"rules": pd.Series([1.0, 0.5])})
        >>> list(j.scores), j.notes
        (['rules'], {})
    """

    scores: dict[str, pd.Series]
    notes: dict[Any, str] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@runtime_checkable
class Judge(Protocol):
    """Scores every row of a batch (see `Judgement`)."""

    name: str

    def judge(self, batch: pd.DataFrame) -> Judgement: ...


@dataclass
class Proposal:
    """An evolver's answer for one turn. ``conditions``: starting values of the next batch's rows (one row per
    row to make), or None when it passes; ``calls`` and ``usage``: the LLM calls made and their tokens.

    Example:
        >>> Proposal().conditions is None
        True
    """

    conditions: pd.DataFrame | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@runtime_checkable
class Evolver(Protocol):
    """Proposes the next batch's starting values from a `tabline.agents.evolvers.Turn`, or passes. ``watches``:
    the columns whose accepted rows per class the line counts for it (`Turn.counts`)."""

    name: str
    watches: list[str]

    def propose(self, turn: Any) -> Proposal: ...


@runtime_checkable
class QCStage(Protocol):
    """An extra QC stage: per row of the batch, the reason it is rejected ("" = it passes)."""

    name: str

    def check(self, batch: pd.DataFrame) -> pd.Series: ...


class AgentError(TablineError):
    """An agent raised, or returned something the line cannot use (the wrong length, the wrong columns, a
    value that is not a score). The run stops with this message; its last checkpoint is intact, so once the
    agent is fixed ``tabline run --resume RUN_DIR`` continues from the last finished batch.

    Example:
        >>> str(AgentError("returned 3 rows for a batch of 4", agent="bmi", role="worker"))
        "worker 'bmi' returned 3 rows for a batch of 4"
    """

    def __init__(self, message: str, *, agent: str, role: str, prefixed: bool = False):
        self.agent, self.role = agent, role
        super().__init__(message if prefixed else f"{role} {agent!r} {message}")


__all__ = ["AgentError", "Evolver", "FillContext", "Filled", "Judge", "Judgement", "Proposal", "QCStage", "Worker"]
