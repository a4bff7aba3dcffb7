"""Tables and seed items made offline, from the user's tables: seeded sub-tables (a subset of columns, a
number of rows, the paper's attributes sampled — kind, format, a derived column written as a formula), then
seed tasks on each. No LLM is involved; `tabline.agents.dream` adds the LLM-made tables.

A table that cannot carry a task type is skipped *with its reason* (`SeedResult.skipped`), never a crash:
one row, no numeric column, no column that names rows.

Example:
    >>> import numpy as np, pandas as pd
    >>> df = pd.DataFrame({"city": list("abcdef"), "pop": [5, 3, 8, 1, 9, 2], "area": [1.5, 2, 3, 4, 5, 6.5]})
    >>> config = TableSpec(rows=(4, 4), columns=(2, 2), kinds=("flat",), formula_share=0.0)
    >>> [t.data.shape for t in sub_tables(df, 2, config, np.random.default_rng(0), source="cities")]
    [(4, 3), (4, 3)]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tabline.dream.formats import FORMATS
from tabline.dream.items import DreamItem, build_item
from tabline.dream.programs import Unanswerable
from tabline.dream.table import KINDS, DreamTable, canonical_frame, column_kind, find_key
from tabline.dream.tasks import TASK_TYPES, make_program
from tabline.errors import InvalidTableError


class TableSpec(BaseModel):
    """The attributes sampled for each table (TableDreamer §1): rows and columns (inclusive ranges, the key
    column not counted), kinds, formats, and how often a derived column is added.

    Example:
        >>> from pydantic import ValidationError
        >>> try:
        ...     TableSpec(rows=(3, 2))
        ... except ValidationError as exc:
        ...     print(exc.errors()[0]["msg"])
        Value error, rows: the range (3, 2) is empty (low > high)
    """

    model_config = ConfigDict(extra="forbid")

    rows: tuple[int, int] = (5, 12)
    columns: tuple[int, int] = (3, 6)
    kinds: tuple[str, ...] = KINDS
    formats: tuple[str, ...] = FORMATS
    formula_share: float = Field(0.3, ge=0, le=1)

    @field_validator("rows", "columns")
    @classmethod
    def _range(cls, v: tuple[int, int], info) -> tuple[int, int]:
        if v[0] < 1 or v[0] > v[1]:
            raise ValueError(f"{info.field_name}: the range {v} is empty (low > high)" if v[0] > v[1] else
                             f"{info.field_name}: the range {v} must start at 1 or more")
        return v

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [k for k in v if k not in KINDS]
        if bad or not v:
            raise ValueError(f"kinds: {bad or 'none'} — choose from {list(KINDS)}")
        return v

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [f for f in v if f not in FORMATS]
        if bad or not v:
            raise ValueError(f"formats: {bad or 'none'} — choose from {list(FORMATS)}")
        return v


KEY_NAME = "item"


def sub_tables(df: pd.DataFrame, n: int, spec: TableSpec, rng: np.random.Generator, *, source: str) -> list[DreamTable]:
    """``n`` seeded sub-tables of ``df``: a column subset (the key column first when ``df`` has one, else a
    made-up ``item`` column), a row sample, a kind, sometimes a derived column."""
    data, notes = canonical_frame(df)
    if len(data) == 0 or len(data.columns) == 0:
        raise InvalidTableError(f"table {source!r} has no " + ("columns" if len(data) else "rows"))
    key = find_key(data)
    others = [c for c in data.columns if c != key]
    tables = []
    for k in range(n):
        n_cols = int(rng.integers(spec.columns[0], spec.columns[1] + 1))
        chosen = _choose_columns(data, others, n_cols, rng)
        n_rows = min(len(data), int(rng.integers(spec.rows[0], spec.rows[1] + 1)))
        rows = np.sort(rng.choice(len(data), size=n_rows, replace=False))
        frame = data.iloc[rows][chosen].reset_index(drop=True)
        if key is not None:
            frame.insert(0, key, data[key].iloc[rows].to_numpy())
        else:
            frame.insert(0, _free_name(KEY_NAME, chosen), [f"{KEY_NAME} {int(r) + 1}" for r in rows])
        formulas = _formula(frame, rng) if rng.random() < spec.formula_share else []
        kind = str(rng.choice(list(spec.kinds)))
        tables.append(DreamTable.from_frame(frame, title=f"{source} (sample {k + 1})", kind=kind,
                                            key=frame.columns[0], formulas=formulas))
    return tables


def _choose_columns(data: pd.DataFrame, others: list[str], n_cols: int, rng) -> list[str]:
    """A column subset in the table's order, with a numeric column in it when the table has one."""
    if not others:
        return []
    picked = set(rng.choice(others, size=min(n_cols, len(others)), replace=False).tolist())
    numeric = [c for c in others if column_kind(data[c]) == "number"]
    if numeric and not picked & set(numeric):
        picked.pop()
        picked.add(str(rng.choice(numeric)))
    return [c for c in others if c in picked]


def _free_name(name: str, taken: list[str]) -> str:
    while name in taken:
        name = f"{name}_"
    return name


def _formula(frame: pd.DataFrame, rng) -> list[str]:
    numeric = [c for c in frame.columns[1:] if column_kind(frame[c]) == "number"]
    if len(numeric) < 2:
        return []
    a, b = rng.choice(numeric, size=2, replace=False)
    target = _free_name(f"{a} minus {b}", list(frame.columns))
    return [f"{target} = {a} - {b}"]


@dataclass
class SeedResult:
    """Seed items and the task types each table skipped, with the reason."""

    items: list[DreamItem] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def seed_items(tables: list[DreamTable], n: int, rng: np.random.Generator, *, spec: TableSpec | None = None,
               round: int = 1, task_types: tuple[str, ...] = TASK_TYPES) -> SeedResult:
    """``n`` seed items over ``tables``, task types taken in turn (a seeded order), each table in turn; a type
    a table cannot carry is recorded as skipped and the next type is tried."""
    spec = spec or TableSpec()
    out = SeedResult()
    order = [str(t) for t in rng.permutation(list(task_types))]
    seen: set[str] = set()
    k = 0
    for _attempt in range(n * len(order) + len(order)):
        if len(out.items) >= n or not tables:
            break
        table, task_type = tables[k % len(tables)], order[k % len(order)]
        k += 1
        try:
            program = make_program(task_type, table, rng)
            item = build_item(table, str(rng.choice(list(spec.formats))), task_type, program, int(rng.integers(3)),
                              round=round, provenance={"table": table.title, "made_by": "sub-table"})
        except Unanswerable as exc:
            out.skipped.append({"table": table.title, "task_type": task_type, "reason": str(exc)})
            continue
        if item.id not in seen:
            seen.add(item.id)
            out.items.append(item)
    return out


__all__ = ["SeedResult", "TableSpec", "seed_items", "sub_tables"]
