"""Evolution in TableDreamer's three directions, as pure seeded functions ``(item, rng) -> child item``:

- *instruction complication*: a condition added to an aggregate, or two numbers composed into a comparison
  (filter → aggregate → compare) or a difference — more reasoning steps;
- *instruction generalisation*: another task type on the same table, or another phrasing;
- *table generalisation*: format conversion, transposition (flat ↔ horizontal), a header renamed, rows or
  columns shuffled, a cell edited.

Every child is built with `DreamItem.evolved`, which executes the program again on the child's table: a
rename renames the program's columns, an edit changes the answer when it should. A change that leaves the
task without an answer raises `Unanswerable` and another change is tried (`evolve` tries a few).

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.dream.items import build_item
    >>> from tabline.dream.table import DreamTable
    >>> t = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b", "c"], "sales": [10, 20, 60]}))
    >>> seed = build_item(t, "markdown", "max", {"op": "max", "column": "sales", "where": []}, 0)
    >>> child = rename_header(seed, np.random.default_rng(0), column="sales")
    >>> child.program["column"], child.answer.value, child.steps
    ('Sales', 60.0, ("rename header 'sales' -> 'Sales'",))
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import pandas as pd

from tabline.dream.formats import FORMATS
from tabline.dream.items import DreamItem
from tabline.dream.programs import AGGREGATES, Unanswerable, columns_of, format_number, rename_columns
from tabline.dream.table import canonical_column, cell_text, column_kind
from tabline.dream.tasks import TASK_TYPES, condition, make_program, phrasings

DIRECTIONS: tuple[str, ...] = ("complication", "instruction generalisation", "table generalisation")
Evolution = Callable[[DreamItem, np.random.Generator], DreamItem]
_NUMBER_OPS = (*AGGREGATES, "count")


# ---------------------------------------------------------------------- instruction complication
def _number_program(item: DreamItem, rng) -> dict[str, Any]:
    """The item's program when it is an aggregate or count, else a fresh mean over the same table."""
    if item.program["op"] in _NUMBER_OPS:
        return copy.deepcopy(item.program)
    return make_program(str(rng.choice(["mean", "sum", "max"])), item.table, rng)


def add_condition(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """One more condition on an aggregate, count or arg-max/min."""
    p = copy.deepcopy(item.program)
    if p["op"] not in (*_NUMBER_OPS, "argmax", "argmin"):
        raise Unanswerable(f"a {p['op']} program takes no condition")
    used = tuple(c["column"] for c in p.get("where", [])) + tuple(x for x in (p.get("column"),) if x)
    cond = condition(item.table, rng, exclude=used)
    p["where"] = [*p.get("where", []), cond]
    return item.evolved(program=p, direction="complication", step=f"add condition on {cond['column']!r}")


def compose(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """Filter → aggregate → compare (or subtract): the item's number against the same number under a
    condition."""
    left = _number_program(item, rng)
    right = copy.deepcopy(left)
    used = tuple(c["column"] for c in right.get("where", [])) + ((right["column"],) if "column" in right else ())
    right["where"] = [*right.get("where", []), condition(item.table, rng, exclude=used)]
    if rng.random() < 0.5:
        program, task_type = {"op": "compare", "cmp": str(rng.choice([">", "<"])), "left": left, "right": right}, "compare"
    else:
        program, task_type = {"op": "arith", "fn": "-", "left": left, "right": right}, "arithmetic"
    return item.evolved(program=program, task_type=task_type, template=int(rng.integers(3)),
                        direction="complication", step=f"compose {task_type} of two {left['op']} programs")


# ---------------------------------------------------------------------- instruction generalisation
def rephrase(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """The same program in another of its type's phrasings."""
    n = phrasings(item.program)
    template = (item.template + 1 + int(rng.integers(n - 1))) % n
    return item.evolved(template=template, direction="instruction generalisation",
                        step=f"rephrase with template {template}")


def new_task_type(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """Another task type on the same table (the first of a seeded order the table can carry)."""
    reasons = []
    for task_type in rng.permutation([t for t in TASK_TYPES if t != item.task_type]):
        try:
            program = make_program(str(task_type), item.table, rng)
            return item.evolved(task_type=str(task_type), program=program, template=int(rng.integers(3)),
                                direction="instruction generalisation", step=f"switch to task type {task_type}")
        except Unanswerable as exc:
            reasons.append(f"{task_type}: {exc}")
    raise Unanswerable("no other task type fits the table (" + "; ".join(reasons[:3]) + ")")


# ---------------------------------------------------------------------- table generalisation
def convert_format(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    fmt = str(rng.choice([f for f in FORMATS if f != item.fmt]))
    return item.evolved(fmt=fmt, direction="table generalisation", step=f"format {item.fmt} -> {fmt}")


def transpose(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """Flat or hierarchical ↔ horizontal (attributes as rows)."""
    t = item.table
    if t.kind != "horizontal" and t.key is None:
        raise Unanswerable("transposing needs a key column to head the records")
    if item.program["op"] == "header":
        raise Unanswerable("a header-position task has no meaning on a transposed table")
    kind = "flat" if t.kind == "horizontal" else "horizontal"
    return item.evolved(table=t.with_data(t.data, kind=kind), direction="table generalisation",
                        step=f"transpose {t.kind} -> {kind}")


def _new_names(name: str) -> list[str]:
    plain = name.replace("_", " ")
    return [n for n in (plain.title(), plain.upper(), plain.capitalize(), f"{plain} value", f"{plain} (recorded)")
            if n != name]


def rename_header(item: DreamItem, rng: np.random.Generator, column: str | None = None) -> DreamItem:
    """One header renamed (a column the task uses, when it uses any), in the table and the program."""
    t = item.table
    used = [c for c in t.data.columns if c in columns_of(item.program)]
    chosen = column or str(rng.choice(used or list(t.data.columns)))
    names = [n for n in _new_names(chosen) if n not in t.data.columns]
    if not names:
        raise Unanswerable(f"no new name for {chosen!r}")
    new = names[0] if column else names[int(rng.integers(len(names)))]
    column = chosen
    mapping = {column: new}
    return item.evolved(table=t.renamed(mapping), program=rename_columns(item.program, mapping), direction="table generalisation",
                        step=f"rename header {column!r} -> {new!r}")


def shuffle_rows(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    t = item.table
    order = rng.permutation(len(t.data))
    return item.evolved(table=t.with_data(t.data.iloc[order]), direction="table generalisation", step="shuffle rows")


def shuffle_columns(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    t = item.table
    order = [t.data.columns[k] for k in rng.permutation(len(t.data.columns))]
    return item.evolved(table=t.with_data(t.data[order]), direction="table generalisation", step="shuffle columns")


def edit_cell(item: DreamItem, rng: np.random.Generator) -> DreamItem:
    """One cell changed (never the key, never a derived cell — those follow their inputs): a number scaled by
    0.5–1.5, a text cell set to another value of its column. The answer is executed again and may change —
    that is the point."""
    t = item.table
    fixed = {t.key, *t.derived()}
    used = [c for c in t.data.columns if c in columns_of(item.program) and c not in fixed]
    candidates = used or [c for c in t.data.columns if c not in fixed]
    column = str(rng.choice(candidates)) if candidates else None
    filled = t.data.index[t.data[column].notna()] if column else []
    if column is None or not len(filled):
        raise Unanswerable("no cell to edit")
    row = int(rng.choice(filled))
    data = t.data.copy()
    old = data.at[row, column]
    if column_kind(data[column]) == "number":
        new: Any = float(format_number(float(old) * rng.uniform(0.5, 1.5)))
        new = int(round(new)) if pd.api.types.is_integer_dtype(data[column]) else new
    elif column_kind(data[column]) == "boolean":
        new = not bool(old)
    else:
        others = [v for v in data[column].dropna().unique() if v != old]
        if not others:
            raise Unanswerable(f"column {column!r} has one value")
        new = others[int(rng.integers(len(others)))]
    if new == old:
        raise Unanswerable("the edit changed nothing")
    values = data[column].astype(object).tolist()
    values[row] = new
    data[column] = canonical_column(values)
    return item.evolved(table=t.with_data(data).recomputed(), direction="table generalisation",
                        step=f"edit {column!r} of row {row + 1}: {cell_text(old)} -> {cell_text(new)}")


EVOLUTIONS: dict[str, tuple[Evolution, ...]] = {
    "complication": (add_condition, compose),
    "instruction generalisation": (rephrase, new_task_type),
    "table generalisation": (convert_format, transpose, rename_header, shuffle_rows, shuffle_columns, edit_cell),
}


def evolve(item: DreamItem, direction: str, rng: np.random.Generator, *, tries: int = 6) -> DreamItem:
    """A child of ``item`` in ``direction``: the direction's changes in a seeded order, the next one tried when
    a change leaves no answer; `Unanswerable` (with the reasons) after ``tries`` (at least one of each)."""
    if direction not in EVOLUTIONS:
        raise Unanswerable(f"unknown direction {direction!r}; one of {list(DIRECTIONS)}")
    reasons = []
    changes = EVOLUTIONS[direction]
    # a seeded order in which every change gets its turn before any is tried again
    order = [changes[int(k)] for _ in range(-(-tries // len(changes))) for k in rng.permutation(len(changes))]
    for change in order[:max(tries, len(changes))]:
        try:
            return change(item, rng)
        except Unanswerable as exc:
            reasons.append(f"{change.__name__}: {exc}")
    raise Unanswerable(f"no {direction} of item {item.id} has an answer (" + "; ".join(reasons[:3]) + ")")


__all__ = ["DIRECTIONS", "EVOLUTIONS", "add_condition", "compose", "convert_format", "edit_cell", "evolve",
           "new_task_type", "rename_header", "rephrase", "shuffle_columns", "shuffle_rows", "transpose"]
