"""`DreamItem`: one (instruction, table, reference answer) triple with its program, where it came from, and
how it is written out for training — a chat-format JSONL row that `datasets.load_dataset("json", ...)` reads
and trl's `SFTTrainer` takes as a conversational dataset (the ``messages`` column).

An item's instruction and answer are *derived*: the instruction is rendered from the program, the answer is
the program executed on the table. `build_item` is the only way to make one, so they never drift apart.
The id is a hash of the content (table, format, program, phrasing): the same item made twice has one id.

Example:
    >>> import pandas as pd
    >>> from tabline.dream.table import DreamTable
    >>> t = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b"], "sales": [3, 5]}), title="Shops")
    >>> item = build_item(t, "markdown", "max", {"op": "max", "column": "sales", "where": []}, 0)
    >>> item.answer.text(), item.instruction
    ('5', 'What is the largest sales over all rows?')
    >>> [m["role"] for m in item.chat_row()["messages"]], DreamItem.from_json(item.to_json()) == item
    (['system', 'user', 'assistant'], True)
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from tabline.dream.formats import parse, render
from tabline.dream.programs import Answer, Program, depth, execute
from tabline.dream.table import DreamTable
from tabline.dream.tasks import family_of, instruction
from tabline.io import write_text_atomic

SYSTEM_PROMPT = ("You answer questions about the table you are given. Reply with the answer only: a number, "
                 "True or False, a value from the table, or a comma-separated list.")


@dataclass(frozen=True)
class DreamItem:
    """One task on one table. ``direction``: seed, complication, instruction generalisation or table
    generalisation; ``steps``: every change since the seed, in order; ``provenance``: where the table came
    from."""

    table: DreamTable
    fmt: str
    task_type: str
    program: Program
    template: int
    answer: Answer
    direction: str = "seed"
    round: int = 1
    parent: str | None = None
    steps: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    phrasing: str | None = None  # an LLM's wording of the instruction (`with_phrasing`); the program stays the truth

    @cached_property
    def table_json(self) -> dict[str, Any]:
        """The table as plain data, made once per item (rendering is the costly part of an item's life)."""
        return table_to_json(self.table)

    @cached_property
    def id(self) -> str:
        blob = json.dumps([self.table_json["json"], self.table.kind, self.table.title, self.fmt, self.program,
                           self.template], sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    @property
    def instruction(self) -> str:
        return self.phrasing or self.template_instruction

    @property
    def template_instruction(self) -> str:
        """The instruction as the template renders it from the program (what a phrasing must keep)."""
        return instruction(self.program, self.table, self.template)

    def with_phrasing(self, text: str | None) -> "DreamItem":
        """The same item asked in other words (same id, program and answer); None restores the template's."""
        return replace(self, phrasing=text)

    @property
    def family(self) -> str:
        return family_of(self.task_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DreamItem) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable-looking content (a DataFrame): compare, never hash

    def user_content(self) -> str:
        title = f"Table: {self.table.title}\n" if self.table.title else ""
        return f"{self.instruction}\n\n{title}{render(self.table, self.fmt)}"

    def chat_row(self) -> dict[str, Any]:
        """The training row. ``program`` and ``provenance`` are JSON text: their shapes differ from row to row,
        and one Arrow schema has to hold them all."""
        return {"id": self.id,
                "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                             {"role": "user", "content": self.user_content()},
                             {"role": "assistant", "content": self.answer.text()}],
                "task_type": self.task_type, "family": self.family, "direction": self.direction,
                "round": self.round, "format": self.fmt, "table_kind": self.table.kind,
                "answer_kind": self.answer.kind, "steps": len(self.steps), "reasoning_steps": depth(self.program),
                "phrased": self.phrasing is not None,
                "program": json.dumps(self.program, sort_keys=True, default=str),
                "provenance": json.dumps({**self.provenance, "parent": self.parent, "changes": list(self.steps)},
                                         default=str)}

    def to_json(self) -> dict[str, Any]:
        """Plain data (a checkpoint holds it); `from_json` reads it back to an equal item."""
        return {"table": self.table_json,
                "fmt": self.fmt, "task_type": self.task_type, "program": self.program, "template": self.template,
                "answer": self.answer.to_json(), "direction": self.direction, "round": self.round,
                "parent": self.parent, "steps": list(self.steps), "provenance": self.provenance,
                "phrasing": self.phrasing}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DreamItem":
        table = table_from_json(data["table"])
        a = data["answer"]
        return cls(table, data["fmt"], data["task_type"], data["program"], data["template"], Answer(a["kind"], a["value"]),
                   data["direction"], data["round"], data["parent"], tuple(data["steps"]), data["provenance"],
                   data.get("phrasing"))

    def evolved(self, **changes: Any) -> "DreamItem":
        """A child: the changed fields, the answer executed again, this item as its parent."""
        step = changes.pop("step")
        child = replace(self, **changes, parent=self.id, steps=(*self.steps, step))
        return build_item(child.table, child.fmt, child.task_type, child.program, child.template,
                          direction=child.direction, round=child.round, parent=child.parent, steps=child.steps,
                          provenance=child.provenance)


def table_to_json(table: DreamTable) -> dict[str, Any]:
    """A table as plain data (its JSON rendering and attributes); `table_from_json` reads it back.

    Example:
        >>> t = DreamTable.from_frame(pd.DataFrame({"k": ["a"], "v": [1.5]}), kind="hierarchical")
        >>> table_from_json(table_to_json(t)).data.equals(t.data)
        True
    """
    return {"json": render(table, "json"), "kind": table.kind, "title": table.title, "key": table.key,
            "formulas": list(table.formulas), "notes": list(table.notes)}


def table_from_json(data: dict[str, Any]) -> DreamTable:
    return _parsed(data["json"], data["kind"], data["title"], data["key"], tuple(data["formulas"]), tuple(data["notes"]))


@lru_cache(maxsize=4096)
def _parsed(text: str, kind: str, title: str, key: str | None, formulas: tuple[str, ...],
            notes: tuple[str, ...]) -> DreamTable:
    # Many items share one table, and every node reads its items back: parse each table once. Safe because a
    # DreamTable is never changed in place (every evolution builds new data).
    table = parse(text, "json", kind=kind, title=title)
    return replace(table, key=key, formulas=formulas, notes=notes)


def build_item(table: DreamTable, fmt: str, task_type: str, program: Program, template: int, **extra: Any) -> DreamItem:
    """An item whose answer is ``program`` executed on ``table`` (`Unanswerable` if it has none)."""
    return DreamItem(table, fmt, task_type, program, template, execute(program, table.data), **extra)


def write_jsonl(items: Iterable[DreamItem], path: str | os.PathLike) -> int:
    """The items' chat rows, one JSON object a line, written atomically; returns how many.

    Example:
        >>> import tempfile
        >>> write_jsonl([], Path(tempfile.mkdtemp()) / "empty.jsonl")
        0
    """
    rows = [json.dumps(item.chat_row(), ensure_ascii=False) for item in items]
    write_text_atomic("".join(r + "\n" for r in rows), Path(path))
    return len(rows)


def counts(items: Iterable[DreamItem], by: str) -> dict[str, int]:
    """How many items per value of one attribute (``task_type``, ``direction``, ``fmt`` …), sorted by name.

    Example:
        >>> counts([], "task_type")
        {}
    """
    series = pd.Series([getattr(i, by) for i in items], dtype=object)
    return {str(k): int(v) for k, v in sorted(series.value_counts().items())}


__all__ = ["DreamItem", "SYSTEM_PROMPT", "build_item", "counts", "table_from_json", "table_to_json", "write_jsonl"]
