"""TableDreamer's agents and their roles. The dream graph (`tabline.graphs.dream`) calls these protocols and
nothing else; a new kind of agent is a new class with the role's method.

- `TableMaker` — ``make(n, rng) -> MadeTables``: tables (and the ones it rejected, with the reason).
- `TaskMaker` — ``seed(tables, n, rng, round) -> SeedResult``: seed items (and the types a table skipped).
- `TaskEvolver` — ``direction`` and ``evolve(parents, n, rng, round) -> Evolved``: children in its direction.
- `Answerer` — ``answer(items) -> Answers``: the target model's reply to each item (or a recorded failure).
- `AnswerJudge` — ``judge(items, answers) -> list[Verdict]``: each reply checked against the executed answer.
- `Phraser` — ``phrase(items) -> Phrased``: the instructions in other words (an LLM's), programs untouched.

The offline agents are here: sub-tables of the user's tables (`SubTableMaker`, rows optionally sampled from
the embedded TabularLM), template tasks (`TemplateTaskMaker`), one evolver per direction
(`DirectionEvolver`) and the program-checked judge (`ProgramJudge`). The LLM ones (tables from scratch, the
target model, the 1–5 rubric judge) are in `tabline.agents.llm.dream`.

Example:
    >>> import numpy as np, pandas as pd
    >>> maker = SubTableMaker({"shops": pd.DataFrame({"shop": list("abcdef"), "sales": [3, 1, 4, 1, 5, 9]})})
    >>> made = maker.make(2, np.random.default_rng(0))
    >>> len(made.tables), isinstance(maker, TableMaker)
    (2, True)
    >>> items = TemplateTaskMaker().seed(made.tables, 4, np.random.default_rng(0), round=1).items
    >>> evolved = DirectionEvolver("table generalisation").evolve(items, 3, np.random.default_rng(0), round=1)
    >>> [i.direction for i in evolved.items]
    ['table generalisation', 'table generalisation', 'table generalisation']
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from tabline.dream.answers import Check, check
from tabline.dream.evolve import DIRECTIONS, evolve
from tabline.dream.items import DreamItem
from tabline.dream.making import SeedResult, TableSpec, seed_items, sub_tables
from tabline.dream.programs import Unanswerable
from tabline.dream.table import DreamTable
from tabline.errors import InvalidArgumentError


# ---------------------------------------------------------------------- what agents hand back
@dataclass
class MadeTables:
    """Tables made, tables rejected (``{"reason", "raw"}``), and the LLM calls and tokens behind them."""

    tables: list[DreamTable]
    rejected: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@dataclass
class Evolved:
    """Children made, and why the other attempts made none."""

    items: list[DreamItem]
    skipped: list[str] = field(default_factory=list)


@dataclass
class Reply:
    """The target model's reply to one item: its text (the raw reply when it was not the JSON asked for),
    whether it was structured, and the error when the backend gave up (429s or timeouts past the retries)."""

    text: str
    structured: bool = True
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "structured": self.structured, "error": self.error}


@dataclass
class Answers:
    replies: list[Reply]
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@dataclass
class Verdict:
    """A judged reply: ``correct`` / ``wrong`` / ``unparsable`` / ``failed`` (no reply to judge), a 1–5 score
    (5 correct, 1 otherwise, the rubric's own score for free-form answers) and who judged."""

    verdict: str
    score: int
    judged_by: str
    parsed: Any = None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "judged_by": self.judged_by,
                "parsed": self.parsed, "reason": self.reason}


# ---------------------------------------------------------------------- roles
@runtime_checkable
class TableMaker(Protocol):
    name: str

    def make(self, n: int, rng: np.random.Generator) -> MadeTables: ...


@runtime_checkable
class TaskMaker(Protocol):
    name: str

    def seed(self, tables: list[DreamTable], n: int, rng: np.random.Generator, *, round: int) -> SeedResult: ...


@runtime_checkable
class TaskEvolver(Protocol):
    name: str
    direction: str

    def evolve(self, parents: list[DreamItem], n: int, rng: np.random.Generator, *, round: int) -> Evolved: ...


@runtime_checkable
class Answerer(Protocol):
    name: str

    def answer(self, items: list[DreamItem]) -> Answers: ...


@dataclass
class Phrased:
    """A phraser's output: the items (reworded, or as they were where the wording failed), the failures with
    their reason and raw text, the calls and the token usage."""

    items: list[DreamItem]
    failures: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, Any] | None = None


@runtime_checkable
class Phraser(Protocol):
    name: str

    def phrase(self, items: list[DreamItem]) -> Phrased: ...


@runtime_checkable
class AnswerJudge(Protocol):
    name: str

    def judge(self, items: list[DreamItem], answers: list[Reply]) -> tuple[list[Verdict], dict[str, Any]]: ...


# ---------------------------------------------------------------------- offline agents
class SubTableMaker:
    """Seeded sub-tables of the user's tables (``frames``: source name -> table), tables taken in turn. With
    ``lm`` (a fitted `TabularLM` of one of them, named by ``lm_source``), that source's rows are sampled from
    the model instead — new rows with the real table's columns."""

    name = "sub-tables"

    def __init__(self, frames: dict[str, pd.DataFrame], spec: TableSpec | None = None, *, lm: Any = None,
                 lm_source: str | None = None):
        if not frames:
            raise InvalidArgumentError("give at least one table to make sub-tables from")
        self.frames, self.spec, self.lm, self.lm_source = dict(frames), spec or TableSpec(), lm, lm_source

    def make(self, n: int, rng: np.random.Generator) -> MadeTables:
        names = list(self.frames)
        tables: list[DreamTable] = []
        for j, source in enumerate(names):  # sources in turn: source j makes tables j, j + len(names), ...
            count = len(range(j, n, len(names)))
            if not count:
                continue
            frame = self.frames[source]
            if self.lm is not None and source == self.lm_source:
                frame = self.lm.sample(count * self.spec.rows[1], seed=int(rng.integers(2**31)), progress=False)
                source = f"{source} (rows from the TabularLM)"
            tables += sub_tables(frame, count, self.spec, rng, source=source)
        return MadeTables(tables)


class TemplateTaskMaker:
    """Seed tasks from the task types' makers, instructions from their templates."""

    name = "template tasks"

    def __init__(self, spec: TableSpec | None = None):
        self.spec = spec or TableSpec()

    def seed(self, tables: list[DreamTable], n: int, rng: np.random.Generator, *, round: int) -> SeedResult:
        return seed_items(tables, n, rng, spec=self.spec, round=round)


class DirectionEvolver:
    """One of the paper's three directions: ``n`` children of the parents, taken in a seeded order (each
    parent once before any twice); a child already made is not made again."""

    def __init__(self, direction: str):
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(f"direction {direction!r} is not one of {list(DIRECTIONS)}")
        self.direction = direction
        self.name = f"{direction} evolver"

    def evolve(self, parents: list[DreamItem], n: int, rng: np.random.Generator, *, round: int) -> Evolved:
        out = Evolved([])
        seen: set[str] = set()
        if not parents:
            return out
        for attempt in range(3 * n):
            if len(out.items) >= n:
                break
            if attempt % len(parents) == 0:
                order = rng.permutation(len(parents))
            parent = parents[int(order[attempt % len(parents)])]
            try:
                child = replace(evolve(parent, self.direction, rng), round=round)
            except Unanswerable as exc:
                out.skipped.append(str(exc))
                continue
            if child.id not in seen:
                seen.add(child.id)
                out.items.append(child)
        return out


class ProgramJudge:
    """Checks each reply against the executed reference (exact, numeric tolerance, set, bool); a free-form
    reference (none of those kinds) goes to ``rubric`` — an LLM judge with the paper's 1–5 scale — when one
    is given, else it stays unjudged."""

    name = "program judge"

    def __init__(self, *, rel_tol: float = 1e-2, rubric: Any = None):
        self.rel_tol, self.rubric = rel_tol, rubric

    def judge(self, items: list[DreamItem], answers: list[Reply]) -> tuple[list[Verdict], dict[str, Any]]:
        verdicts, calls = [], []
        for item, reply in zip(items, answers):
            if reply.error and not reply.text:
                verdicts.append(Verdict("failed", 0, self.name, reason=reply.error))
            elif item.answer.kind in ("number", "bool", "text", "list"):
                verdicts.append(_from_check(check(reply.text, item.answer, rel_tol=self.rel_tol), self.name))
            elif self.rubric is not None:
                verdict, call = self.rubric.score(item, reply.text)
                verdicts.append(verdict)
                calls.append(call)
            else:
                verdicts.append(Verdict("unjudged", 0, self.name, reason="free-form answer and no --judge-llm"))
        usage = self.rubric.caller.usage.take() if self.rubric is not None else None
        return verdicts, {"calls": calls, "usage": usage}


def _from_check(result: Check, judge: str) -> Verdict:
    parsed = result.parsed if not isinstance(result.parsed, float) or np.isfinite(result.parsed) else None
    return Verdict(result.verdict, 5 if result.verdict == "correct" else 1, judge, parsed, result.reason)


__all__ = ["AnswerJudge", "Answerer", "Answers", "DirectionEvolver", "Evolved", "MadeTables", "Phrased", "Phraser",
           "ProgramJudge", "Reply", "SubTableMaker", "TableMaker", "TaskEvolver", "TaskMaker", "TemplateTaskMaker", "Verdict"]
