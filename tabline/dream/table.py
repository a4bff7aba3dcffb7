"""`DreamTable`: the table a TableDreamer task is asked about — a flat DataFrame of records (the *logical*
table every task program runs on) plus the paper's attributes: kind (flat, horizontal = attributes as rows,
hierarchical = two header levels), title, the key column that names rows, and derived columns written as
formulas (``profit = revenue - cost``) that code computes, never a model.

Cells are *canonical*: what a reader of the rendered table sees. Text is stripped with whitespace collapsed,
a text column whose every cell reads as a number becomes numeric, headers are strings, duplicated headers get
a suffix. Rendering and parsing back (`tabline.dream.formats`) therefore give the same values, and a reference
answer is computed on exactly the values the target model reads.

Example:
    >>> import pandas as pd
    >>> t = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b"], "revenue": [10, 7], "cost": [4, 9]}),
    ...                           title="Shops", formulas=["profit = revenue - cost"])
    >>> t.data["profit"].tolist(), t.key
    ([6, -2], 'shop')
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from tabline.errors import InvalidTableError

TableKind = Literal["flat", "horizontal", "hierarchical"]
KINDS: tuple[str, ...] = ("flat", "horizontal", "hierarchical")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_BOOLS = {"True": True, "False": False}


# ---------------------------------------------------------------------- cells
def is_missing(v: Any) -> bool:
    """Whether a cell is empty (None, NaN, pandas NA).

    Example:
        >>> is_missing(float("nan")), is_missing(0), is_missing("")
        (True, False, False)
    """
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def cell_text(v: Any) -> str:
    """A cell as text, the same in every format: empty when missing, ``repr`` for floats (it reads back exactly).

    Example:
        >>> cell_text(3), cell_text(0.1 + 0.2), cell_text(None), cell_text(np.bool_(True))
        ('3', '0.30000000000000004', '', 'True')
    """
    if is_missing(v):
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return " ".join(str(v).split())


def canonical_column(values: pd.Series | list) -> pd.Series:
    """A column as a reader sees it: numbers when every non-empty cell reads as one (int when all are whole and
    none is missing), booleans when every cell is True/False, else stripped text with missing cells as None.

    Example:
        >>> canonical_column(["1", "2", ""]).tolist(), canonical_column(["1", "2"]).tolist()
        ([1.0, 2.0, nan], [1, 2])
        >>> canonical_column([" a  b", None]).tolist()
        ['a b', None]
    """
    s = pd.Series(values, dtype=object).reset_index(drop=True)
    texts = [cell_text(v) for v in s]
    present = [t for t in texts if t != ""]
    if present and all(t in _BOOLS for t in present) and len(present) == len(texts):
        return pd.Series([_BOOLS[t] for t in texts], dtype=bool)
    if present and all(_NUMBER.match(t) for t in present):
        nums = [float(t) if t else np.nan for t in texts]
        whole = all(t and "." not in t and "e" not in t.lower() for t in texts)
        if whole:
            return pd.Series([int(t) for t in texts], dtype="int64")
        return pd.Series(nums, dtype="float64")
    return pd.Series([t if t != "" else None for t in texts], dtype=object)


def column_kind(series: pd.Series) -> str:
    """``number``, ``boolean`` or ``text`` — the answer of the column-type task.

    Example:
        >>> column_kind(pd.Series([1.5, 2])), column_kind(pd.Series(["x"])), column_kind(pd.Series([True]))
        ('number', 'text', 'boolean')
    """
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "number"
    return "text"


def canonical_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``df`` with string headers (duplicates suffixed, blanks named) and canonical columns, plus notes on
    what was renamed.

    Example:
        >>> frame, notes = canonical_frame(pd.DataFrame([[1, 2]], columns=["a", "a"]))
        >>> list(frame.columns), notes
        (['a', 'a (2)'], ["header 'a' is duplicated: the second is 'a (2)'"])
    """
    notes: list[str] = []
    names: list[str] = []
    for k, raw in enumerate(df.columns):
        name = " ".join(str(raw).split()) if not is_missing(raw) else ""
        if not name or name.startswith("Unnamed:"):
            name = f"column {k + 1}"
            notes.append(f"header {k + 1} is blank: named {name!r}")
        if name in names:
            base, n = name, 2
            while f"{base} ({n})" in names:
                n += 1
            name = f"{base} ({n})"
            notes.append(f"header {base!r} is duplicated: the second is {name!r}")
        names.append(name)
    columns = {name: canonical_column(df.iloc[:, k].tolist()) for k, name in enumerate(names)}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(df))), notes


# ---------------------------------------------------------------------- formulas
@dataclass(frozen=True)
class Formula:
    """A derived column, ``target = expression`` over other columns with + - * / and parentheses.

    Example:
        >>> f = Formula.parse("margin % = (revenue - cost) / revenue * 100", ["revenue", "cost"])
        >>> f.target, f.evaluate(pd.DataFrame({"revenue": [10.0], "cost": [4.0]})).tolist()
        ('margin %', [60.0])
    """

    target: str
    expression: str
    columns: tuple[str, ...]

    @classmethod
    def parse(cls, text: str, columns: list[str]) -> "Formula":
        if text.count("=") != 1:
            raise InvalidTableError(f"formula {text!r} must read 'target = expression'")
        target, expression = (" ".join(p.split()) for p in text.split("="))
        if not target or not expression:
            raise InvalidTableError(f"formula {text!r} must read 'target = expression'")
        used = tuple(c for c in sorted(columns, key=len, reverse=True) if c in expression)
        formula = cls(target, expression, used)
        formula._tree()  # refuse a bad expression now, not when it is evaluated
        return formula

    def _tree(self) -> tuple[ast.Expression, dict[str, str]]:
        text, names = self.expression, {}
        for k, col in enumerate(self.columns):  # longest first, so "net cost" wins over "cost"
            names[f"__c{k}"] = col
            text = text.replace(col, f" __c{k} ")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            raise InvalidTableError(f"formula '{self.target} = {self.expression}' is not arithmetic over the "
                                    "table's columns") from None
        for node in ast.walk(tree):
            ok = isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div,
                                   ast.USub, ast.UAdd, ast.Load))
            ok = ok or (isinstance(node, ast.Constant) and isinstance(node.value, (int, float)))
            ok = ok or (isinstance(node, ast.Name) and node.id in names)
            if not ok:
                raise InvalidTableError(f"formula '{self.target} = {self.expression}' may use only the table's "
                                        "columns, numbers, + - * / and parentheses")
        return tree, names

    def renamed(self, mapping: dict[str, str]) -> str:
        """The formula's text with columns renamed (old -> new).

        Example:
            >>> Formula.parse("net = gross - tax", ["gross", "tax"]).renamed({"tax": "Tax"})
            'net = gross - Tax'
        """
        text = self.expression
        for k, col in enumerate(self.columns):
            text = text.replace(col, f"\0{k}\0")
        for k, col in enumerate(self.columns):
            text = text.replace(f"\0{k}\0", mapping.get(col, col))
        return f"{mapping.get(self.target, self.target)} = {text}"

    def evaluate(self, frame: pd.DataFrame) -> pd.Series:
        tree, names = self._tree()
        missing = [c for c in names.values() if c not in frame]
        if missing:
            raise InvalidTableError(f"formula '{self.target} = {self.expression}' names missing column(s) {missing}")
        env = {k: pd.to_numeric(frame[c], errors="coerce") for k, c in names.items()}
        with np.errstate(all="ignore"):
            value = eval(compile(tree, "<formula>", "eval"), {"__builtins__": {}}, env)  # checked tree: arithmetic only
        series = pd.Series(value, index=frame.index) if np.isscalar(value) else value
        return canonical_column(series.replace([np.inf, -np.inf], np.nan).tolist())


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class DreamTable:
    """A table with the paper's attributes. ``data``: the logical table (one row per record); ``groups``:
    column -> its upper header for hierarchical tables; ``key``: the column that names rows (unique, no
    missing cells), or None. Build one with `from_frame`.

    Example:
        >>> t = DreamTable.from_frame(pd.DataFrame({"city": ["x", "y"], "pop": [3, 4]}), kind="horizontal")
        >>> t.display().values.tolist()
        [['pop', 3, 4]]
    """

    data: pd.DataFrame
    title: str = ""
    kind: str = "flat"
    key: str | None = None
    groups: dict[str, str] = field(default_factory=dict)
    formulas: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, title: str = "", kind: str = "flat", key: str | None = None,
                   groups: dict[str, str] | None = None, formulas: list[str] | tuple[str, ...] = ()) -> "DreamTable":
        if kind not in KINDS:
            raise InvalidTableError(f"table kind {kind!r} is not one of {list(KINDS)}")
        if isinstance(df.columns, pd.MultiIndex):
            groups = {" ".join(str(b).split()): " ".join(str(a).split()) for a, b in df.columns}
            df = df.set_axis([b for _, b in df.columns], axis=1)
        data, notes = canonical_frame(df)
        if len(data.columns) == 0 or len(data) == 0:
            raise InvalidTableError(f"table {title or '(untitled)'} has no " + ("columns" if len(data) else "rows"))
        for text in formulas:
            f = Formula.parse(text, list(data.columns))
            data[f.target] = f.evaluate(data)
        if key is not None and key not in data:
            raise InvalidTableError(f"key column {key!r} is not in the table (columns: {list(data.columns)[:8]})")
        key = key if key is not None else find_key(data)
        if key is not None and not is_key(data[key]):
            raise InvalidTableError(f"key column {key!r} has missing or repeated values")
        groups = {c: g for c, g in (groups or default_groups(data, key)).items() if c in data}
        if kind == "horizontal" and key is None:
            raise InvalidTableError("a horizontal table needs a key column (unique values, none missing) to head "
                                    "its columns")
        return cls(data, title, kind, key, groups, tuple(formulas), tuple(notes))

    def with_data(self, data: pd.DataFrame, **changes: Any) -> "DreamTable":
        """The same attributes over new (already canonical) data."""
        groups = {c: g for c, g in changes.pop("groups", self.groups).items() if c in data}
        return replace(self, data=data.reset_index(drop=True), groups=groups, **changes)

    def derived(self) -> list[str]:
        """The columns computed by formulas."""
        return [Formula.parse(f, list(self.data.columns)).target for f in self.formulas]

    def renamed(self, mapping: dict[str, str]) -> "DreamTable":
        """Headers renamed (old -> new) everywhere: data, key, upper headers, formulas."""
        formulas = tuple(Formula.parse(f, list(self.data.columns)).renamed(mapping) for f in self.formulas)
        return self.with_data(self.data.rename(columns=mapping), key=mapping.get(self.key, self.key),
                              groups={mapping.get(c, c): g for c, g in self.groups.items()}, formulas=formulas)

    def recomputed(self) -> "DreamTable":
        """Derived columns computed again from their inputs (after a cell edit)."""
        data = self.data.copy()
        for text in self.formulas:
            f = Formula.parse(text, list(data.columns))
            data[f.target] = f.evaluate(data)
        return self.with_data(data)

    def display(self) -> pd.DataFrame:
        """The table as drawn: flat as is; horizontal with one row per attribute and the key's values as
        headers; hierarchical with two header levels (MultiIndex columns)."""
        if self.kind == "horizontal":
            rest = [c for c in self.data.columns if c != self.key]
            rows = [[c, *self.data[c].tolist()] for c in rest]
            return pd.DataFrame(rows, columns=[self.key, *[cell_text(v) for v in self.data[self.key]]], dtype=object)
        if self.kind == "hierarchical":
            top = [self.groups.get(c, "") for c in self.data.columns]
            return self.data.set_axis(pd.MultiIndex.from_arrays([top, list(self.data.columns)]), axis=1)
        return self.data

    @classmethod
    def from_display(cls, frame: pd.DataFrame, *, kind: str, title: str = "") -> "DreamTable":
        """Back from a drawn (and parsed) table: the inverse of `display`, cells made canonical again."""
        if kind == "horizontal":
            key = str(frame.columns[0])
            records = {key: list(frame.columns[1:])}
            for _, row in frame.iterrows():
                records[str(row.iloc[0])] = row.iloc[1:].tolist()
            return cls.from_frame(pd.DataFrame(records), title=title, kind=kind, key=key)
        return cls.from_frame(frame, title=title, kind=kind)

    def numeric_columns(self) -> list[str]:
        return [c for c in self.data.columns if column_kind(self.data[c]) == "number" and self.data[c].notna().any()]

    def text_columns(self) -> list[str]:
        return [c for c in self.data.columns if column_kind(self.data[c]) == "text" and c != self.key]


def is_key(series: pd.Series) -> bool:
    """Whether a column can name rows: no missing cell and no repeated value (as text).

    Example:
        >>> is_key(pd.Series(["a", "b"])), is_key(pd.Series(["a", "a"]))
        (True, False)
    """
    texts = [cell_text(v) for v in series]
    return all(texts) and len(set(texts)) == len(texts)


def find_key(data: pd.DataFrame) -> str | None:
    """The first text column that can name rows, else the first such column of any kind but boolean/float."""
    candidates = [c for c in data.columns if column_kind(data[c]) == "text"]
    candidates += [c for c in data.columns if pd.api.types.is_integer_dtype(data[c])]
    return next((c for c in candidates if is_key(data[c])), None)


def default_groups(data: pd.DataFrame, key: str | None) -> dict[str, str]:
    """Upper headers for a hierarchical drawing when none are given: what a row is, then its figures."""
    return {c: "Item" if c == key else "Figures" if column_kind(data[c]) == "number" else "Details"
            for c in data.columns}


__all__ = ["DreamTable", "Formula", "KINDS", "TableKind", "canonical_column", "canonical_frame", "cell_text",
           "column_kind", "default_groups", "find_key", "is_key", "is_missing"]
