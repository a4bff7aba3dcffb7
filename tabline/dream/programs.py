"""Task programs: a task's ground truth is a small JSON-serialisable program over the logical table
(``{"op": "mean", "column": "price", "where": [...]}``); running it gives the reference answer, so an answer
is never a model's guess and is recomputed after every change to the table or the task.

`execute` runs one; a program that has no answer on a table (a tie for the maximum, a lookup that matches no
row, a division by zero, a column the table lacks) raises `Unanswerable` with the reason, which the task
makers and evolvers report as a skip. `rename_columns` follows a header rename through a program.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"shop": ["a", "b", "c"], "sales": [10, 20, 60], "area": ["N", "S", "N"]})
    >>> execute({"op": "mean", "column": "sales", "where": [{"column": "area", "cmp": "==", "value": "N"}]}, df)
    Answer(kind='number', value=35.0)
    >>> execute({"op": "compare", "cmp": ">", "left": {"op": "max", "column": "sales"},
    ...          "right": {"op": "sum", "column": "sales", "where": [{"column": "area", "cmp": "==", "value": "S"}]}}, df)
    Answer(kind='bool', value=True)
"""
from __future__ import annotations

import copy
import math
import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from tabline.dream.table import cell_text, column_kind, is_missing

Program = dict[str, Any]
COLUMN_ARGS = ("column", "column_b", "key", "match", "group")  # arguments that name a column
CHILD_ARGS = ("left", "right")  # arguments that hold a sub-program
AGGREGATES = ("sum", "mean", "max", "min", "median", "range")
_CMP: dict[str, Callable[[Any, Any], Any]] = {"==": operator.eq, "!=": operator.ne, ">": operator.gt,
                                              "<": operator.lt, ">=": operator.ge, "<=": operator.le}


class Unanswerable(ValueError):
    """A program has no single right answer on this table; the message says why."""


@dataclass(frozen=True)
class Answer:
    """A reference answer: ``kind`` number / text / bool / list, and its value.

    Example:
        >>> Answer("number", 2.5).text(), Answer("list", ["b", "a"]).text(), Answer("bool", False).text()
        ('2.5', 'b, a', 'False')
    """

    kind: str
    value: Any

    def text(self) -> str:
        """The answer as the assistant turn states it."""
        if self.kind == "number":
            return format_number(self.value)
        if self.kind == "list":
            return ", ".join(cell_text(v) for v in self.value)
        return cell_text(self.value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": list(self.value) if self.kind == "list" else self.value}


def format_number(x: float) -> str:
    """A number as a person writes it: whole numbers without decimals, others to at most 4 decimals.

    Example:
        >>> format_number(3.0), format_number(2 / 3), format_number(-0.5), format_number(1e20)
        ('3', '0.6667', '-0.5', '100000000000000000000')
    """
    x = float(x)
    if x.is_integer():
        return str(int(x))
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "0") or x == 0 else f"{x:.3g}"


# ---------------------------------------------------------------------- walking programs
def columns_of(program: Program) -> set[str]:
    """Every column a program names, its conditions and sub-programs included.

    Example:
        >>> sorted(columns_of({"op": "sum", "column": "a", "where": [{"column": "b", "cmp": "==", "value": 1}]}))
        ['a', 'b']
    """
    out = {program[a] for a in COLUMN_ARGS if a in program}
    out |= {c["column"] for c in program.get("where", [])}
    for child in CHILD_ARGS:
        if child in program:
            out |= columns_of(program[child])
    return out


def rename_columns(program: Program, mapping: dict[str, str]) -> Program:
    """A copy of ``program`` with columns renamed by ``mapping`` (old -> new).

    Example:
        >>> rename_columns({"op": "max", "column": "a", "where": [{"column": "a", "cmp": ">", "value": 0}]}, {"a": "A"})
        {'op': 'max', 'column': 'A', 'where': [{'column': 'A', 'cmp': '>', 'value': 0}]}
    """
    out = copy.deepcopy(program)
    for a in COLUMN_ARGS:
        if a in out:
            out[a] = mapping.get(out[a], out[a])
    for cond in out.get("where", []):
        cond["column"] = mapping.get(cond["column"], cond["column"])
    for child in CHILD_ARGS:
        if child in out:
            out[child] = rename_columns(out[child], mapping)
    return out


def depth(program: Program) -> int:
    """Reasoning steps: 1 per operation, 1 per condition.

    Example:
        >>> depth({"op": "compare", "left": {"op": "sum", "column": "a"}, "right": {"op": "count", "where": [{}]}})
        4
    """
    return 1 + len(program.get("where", [])) + sum(depth(program[c]) for c in CHILD_ARGS if c in program)


# ---------------------------------------------------------------------- helpers
def _column(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        raise Unanswerable(f"the table has no column {name!r}")
    return df[name]


def _numbers(df: pd.DataFrame, name: str) -> pd.Series:
    col = _column(df, name)
    if column_kind(col) != "number":
        raise Unanswerable(f"column {name!r} is not numeric")
    return col.astype(float)


def _mask(df: pd.DataFrame, where: list[dict[str, Any]]) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for cond in where:
        col, cmp, value = _column(df, cond["column"]), cond["cmp"], cond["value"]
        if cmp not in _CMP:
            raise Unanswerable(f"unknown comparison {cmp!r}")
        if isinstance(value, str) and cmp in ("==", "!="):
            hit = col.map(lambda v: cell_text(v).casefold() == value.casefold())
            mask &= hit if cmp == "==" else ~hit & col.map(lambda v: not is_missing(v))
        else:
            if column_kind(col) != "number" or isinstance(value, str):
                raise Unanswerable(f"condition {cmp} {value!r} needs numeric column, {cond['column']!r} is not")
            nums = col.astype(float)
            mask &= _CMP[cmp](nums, float(value)) & nums.notna()
    return mask


def _rows(df: pd.DataFrame, program: Program) -> pd.DataFrame:
    rows = df[_mask(df, program.get("where", []))]
    if rows.empty:
        raise Unanswerable("no row meets the conditions")
    return rows


def _row(df: pd.DataFrame, key: str, value: Any) -> pd.Series:
    keys = _column(df, key).map(cell_text)
    hit = df[keys == cell_text(value)]
    if len(hit) != 1:
        raise Unanswerable(f"{len(hit)} rows have {key} = {value!r}")
    return hit.iloc[0]


def _cell_number(df: pd.DataFrame, p: Program, row_arg: str) -> float:
    value = _row(df, p["key"], p[row_arg])[_numbers(df, p["column"]).name]
    if is_missing(value):
        raise Unanswerable(f"the {p['column']} of {p[row_arg]!r} is missing")
    return float(value)


def _present(series: pd.Series) -> pd.Series:
    present = series.dropna()
    if present.empty:
        raise Unanswerable(f"column {series.name!r} has no values under the conditions")
    return present


def _single_best(scores: pd.Series, labels: pd.Series, largest: bool) -> Any:
    scores = scores.dropna()
    if scores.empty:
        raise Unanswerable("no values to compare")
    best = scores.max() if largest else scores.min()
    winners = labels[scores[scores == best].index]
    if len(winners) != 1:
        raise Unanswerable(f"{len(winners)} rows tie for the {'largest' if largest else 'smallest'} value")
    return winners.iloc[0]


def _number(x: float) -> "Answer":
    if not math.isfinite(x):
        raise Unanswerable("the result is not a finite number (division by zero?)")
    return Answer("number", float(x))


def _typed(series: pd.Series, value: Any) -> Answer:
    if is_missing(value):
        raise Unanswerable("the cell is missing")
    kind = column_kind(series)
    if kind == "number":
        return Answer("number", float(value))
    if kind == "boolean":
        return Answer("bool", bool(value))
    return Answer("text", cell_text(value))


# ---------------------------------------------------------------------- operations
def _aggregate(df: pd.DataFrame, p: Program) -> Answer:
    rows = _rows(df, p)
    values = _present(_numbers(rows, p["column"]))
    op = p["op"]
    x = values.max() - values.min() if op == "range" else getattr(values, op)()
    return _number(float(x))


def _claim_total(df: pd.DataFrame, p: Program) -> Answer:
    actual = _aggregate(df, {"op": p["agg"], "column": p["column"], "where": p.get("where", [])}).value
    return Answer("bool", math.isclose(actual, float(p["value"]), rel_tol=1e-9, abs_tol=1e-9))


def _corr_sign(df: pd.DataFrame, p: Program) -> Answer:
    pair = pd.concat([_numbers(df, p["column"]), _numbers(df, p["column_b"])], axis=1).dropna()
    if len(pair) < 3:
        raise Unanswerable("fewer than 3 rows have both values")
    r = np.corrcoef(pair.iloc[:, 0], pair.iloc[:, 1])[0, 1] if pair.std().gt(0).all() else np.nan
    if not np.isfinite(r) or abs(r) < 0.1:  # a weak correlation's sign is noise, not an answer
        raise Unanswerable(f"the correlation ({r:.3f}) is too weak to have a sign")
    return Answer("text", "positive" if r > 0 else "negative")


def _top_k(df: pd.DataFrame, p: Program) -> Answer:
    k, values = int(p["k"]), _numbers(df, p["column"]).dropna()
    if len(values) <= k:
        raise Unanswerable(f"only {len(values)} rows have a {p['column']}; top {k} would be all of them")
    ordered = values.sort_values(ascending=p.get("order") == "asc", kind="stable")
    if ordered.iloc[k - 1] == ordered.iloc[k]:
        raise Unanswerable(f"rows tie at place {k}")
    labels = _column(df, p["key"])
    return Answer("list", [cell_text(v) for v in labels[ordered.index[:k]]])


def _group_scores(df: pd.DataFrame, p: Program) -> pd.Series:
    groups = _column(df, p["group"]).map(cell_text)
    values = _numbers(df, p["column"])
    frame = pd.DataFrame({"g": groups, "v": values})
    frame = frame[(frame.g != "") & frame.v.notna()]
    if frame.g.nunique() < 2:
        raise Unanswerable(f"column {p['group']!r} has fewer than 2 groups with values")
    return frame.groupby("g").v.agg(p["agg"])


def _group_argmax(df: pd.DataFrame, p: Program) -> Answer:
    scores = _group_scores(df, p)
    labels = pd.Series(scores.index, index=scores.index)
    return Answer("text", _single_best(scores, labels, largest=p.get("largest", True)))


def _trend(df: pd.DataFrame, p: Program) -> Answer:
    values = _numbers(df, p["column"])
    if values.isna().any() or len(values) < 3:
        raise Unanswerable("a trend needs at least 3 rows and no missing value")
    steps = np.diff(values.to_numpy())
    return Answer("text", "increasing" if (steps > 0).all() else "decreasing" if (steps < 0).all() else "neither")


def _lookup(df: pd.DataFrame, p: Program) -> Answer:
    row = _row(df, p["match"], p["value"])
    return _typed(_column(df, p["column"]), row[p["column"]])


def _compare(df: pd.DataFrame, p: Program) -> Answer:
    left, right = execute(p["left"], df), execute(p["right"], df)
    if left.kind != "number" or right.kind != "number":
        raise Unanswerable("compare needs two numbers")
    if math.isclose(left.value, right.value, rel_tol=1e-9):
        raise Unanswerable("the two sides are equal")
    return Answer("bool", bool(_CMP[p["cmp"]](left.value, right.value)))


def _arith(df: pd.DataFrame, p: Program) -> Answer:
    left, right = execute(p["left"], df), execute(p["right"], df)
    if left.kind != "number" or right.kind != "number":
        raise Unanswerable("arithmetic needs two numbers")
    if p["fn"] == "/" and right.value == 0:
        raise Unanswerable("division by zero")
    return _number({"+": operator.add, "-": operator.sub, "/": operator.truediv}[p["fn"]](left.value, right.value))


def _claim_compare(df: pd.DataFrame, p: Program) -> Answer:
    a, b = _cell_number(df, p, "row"), _cell_number(df, p, "row_b")
    if a == b:
        raise Unanswerable("the two rows have the same value")
    return Answer("bool", bool(_CMP[p["cmp"]](a, b)))


def _claim_cell(df: pd.DataFrame, p: Program) -> Answer:
    actual = _lookup(df, {"match": p["key"], "value": p["row"], "column": p["column"]})
    claimed = p["value"]
    if actual.kind == "number":
        return Answer("bool", math.isclose(actual.value, float(claimed), rel_tol=1e-9, abs_tol=1e-12))
    return Answer("bool", cell_text(actual.value).casefold() == cell_text(claimed).casefold())


def _header(df: pd.DataFrame, p: Program) -> Answer:
    if not 1 <= int(p["position"]) <= len(df.columns):
        raise Unanswerable(f"the table has no column {p['position']}")
    return Answer("text", str(df.columns[int(p["position"]) - 1]))


def _pct_change(df: pd.DataFrame, p: Program) -> Answer:
    a, b = _cell_number(df, p, "row"), _cell_number(df, p, "row_b")
    if a == 0:
        raise Unanswerable("the starting value is 0")
    return _number((b - a) / abs(a) * 100)


OPS: dict[str, Callable[[pd.DataFrame, Program], Answer]] = {
    **{name: _aggregate for name in AGGREGATES},
    "count": lambda df, p: Answer("number", float(_mask(df, p.get("where", [])).sum())),
    "distinct": lambda df, p: Answer("number", float(len(set(_column(df, p["column"]).map(cell_text)) - {""}))),
    "difference": lambda df, p: _number(_cell_number(df, p, "row") - _cell_number(df, p, "row_b")),
    "ratio": lambda df, p: _arith(df, {"fn": "/", "left": {"op": "cell", **{k: p[k] for k in ("key", "row", "column")}},
                                       "right": {"op": "cell", "key": p["key"], "row": p["row_b"], "column": p["column"]}}),
    "pct_change": _pct_change,
    "n_rows": lambda df, p: Answer("number", float(len(df))),
    "n_columns": lambda df, p: Answer("number", float(len(df.columns))),
    "header": _header,
    "column_type": lambda df, p: Answer("text", column_kind(_column(df, p["column"]))),
    "cell": lambda df, p: _lookup(df, {"match": p["key"], "value": p["row"], "column": p["column"]}),
    "lookup": _lookup,
    "claim_cell": _claim_cell,
    "claim_compare": _claim_compare,
    "claim_total": _claim_total,
    "argmax": lambda df, p: Answer("text", cell_text(_single_best(_numbers(_rows(df, p), p["column"]),
                                                                  _column(df, p["key"]), largest=True))),
    "argmin": lambda df, p: Answer("text", cell_text(_single_best(_numbers(_rows(df, p), p["column"]),
                                                                  _column(df, p["key"]), largest=False))),
    "corr_sign": _corr_sign,
    "top_k": _top_k,
    "group_argmax": _group_argmax,
    "trend": _trend,
    "compare": _compare,
    "arith": _arith,
}


def execute(program: Program, df: pd.DataFrame) -> Answer:
    """Run ``program`` on the logical table ``df``; `Unanswerable` when it has no single right answer."""
    op = program.get("op")
    if op not in OPS:
        raise Unanswerable(f"unknown operation {op!r}")
    try:
        return OPS[op](df, program)
    except KeyError as exc:
        raise Unanswerable(f"operation {op!r} lacks argument {exc}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, Unanswerable):
            raise
        raise Unanswerable(f"operation {op!r} failed on this table: {exc}") from None


__all__ = ["AGGREGATES", "Answer", "OPS", "Program", "Unanswerable", "columns_of", "depth", "execute",
           "format_number", "rename_columns"]
