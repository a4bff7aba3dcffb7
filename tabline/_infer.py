"""Heuristics that turn a raw DataFrame column into a `Column`, collecting problems instead of raising.

Used by `Schema.infer`; kept apart so the schema module reads as the data model.

Example:
    >>> import pandas as pd
    >>> cols, problems = infer_columns(pd.DataFrame({"x": [1.5, 2.25, None], "y": ["a", "a", "a"]}))
    >>> cols[0].decimals, cols[0].nullable, problems
    (2, True, ["column 'y' is constant (every row is 'a'): drop it (--drop y) or give it more than one value"])
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.schema import (
    _MAX_DECIMALS, DATETIME_FORMATS, Column, _as_bool, _datetime_seconds,
)

_DATEISH = r"^\s*\d{1,4}[-/.]\d{1,2}([-/.]\d{1,4})?([ T]\d{1,2}:\d{2}(:\d{2})?)?\s*$"


def infer_columns(df: pd.DataFrame, *, max_categories: int = 500) -> tuple[list[Column], list[str]]:
    """Infer one `Column` per DataFrame column; return them with every problem found, worded for users."""
    problems: list[str] = []
    if df.shape[1] == 0:
        return [], ["the table has no columns"]
    if len(df) == 0:
        return [], ["the table has no rows after the header"]
    names = [str(c) for c in df.columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    for d in dupes:
        problems.append(f"column {d!r} appears more than once")
    columns = []
    for name in df.columns:
        col, col_problems = _infer_one(str(name), df[name], max_categories)
        problems += col_problems
        if col is not None:
            columns.append(col)
    return columns, problems


def _infer_one(name: str, s: pd.Series, max_categories: int) -> tuple[Column | None, list[str]]:
    n = len(s)
    values = s.dropna()
    if isinstance(s.dtype, pd.StringDtype) or s.dtype == object:
        stripped = values.astype(str).str.strip()
        values = values[stripped != ""]
    nullable = len(values) < n
    if len(values) == 0:
        return None, [f"column {name!r} has no values (all {n} are empty): drop it (--drop {name})"]

    # booleans: real bools, or the words true/false
    if s.dtype == bool or values.map(lambda v: isinstance(_as_bool(v), bool)).all():
        cats = sorted({_as_bool(v) for v in values}, reverse=True)
        if len(cats) == 1:
            return None, [_constant(name, cats[0])]
        return Column(name=name, kind="boolean", categories=cats, nullable=nullable), []

    numeric = pd.to_numeric(values, errors="coerce")
    share_numeric = float(numeric.notna().mean())
    if pd.api.types.is_numeric_dtype(s) or share_numeric == 1.0:
        return _numeric(name, numeric.astype(float), nullable, n)
    if share_numeric >= 0.5:
        bad = values[numeric.isna()]
        return None, [
            f"column {name!r} mixes numbers ({int(numeric.notna().sum())} values) and text "
            f"({len(bad)} values, first: {bad.iloc[0]!r}); if that text means 'missing', pass "
            f"--na-value {bad.iloc[0]!r}"
        ]

    text = values.astype(str)
    if pd.api.types.is_datetime64_any_dtype(s):
        return _datetime(name, pd.to_datetime(values), "%Y-%m-%d %H:%M:%S", nullable)
    if text.str.match(_DATEISH).all():
        for fmt in DATETIME_FORMATS:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
            if parsed.notna().all():
                return _datetime(name, parsed, fmt, nullable)

    counts = values.value_counts()
    if len(counts) == 1:
        return None, [_constant(name, counts.index[0])]
    if len(counts) == len(values) and len(values) > 20:
        # unique sentences are free text (notes, reviews), not identifiers
        words = text.str.split().str.len().median()
        return Column(name=name, kind="text" if words >= 3 else "id", nullable=nullable), []
    if len(counts) <= max_categories and (len(counts) <= 20 or len(counts) <= 0.5 * len(values)):
        return Column(name=name, kind="categorical", categories=list(counts.index), nullable=nullable), []
    return Column(name=name, kind="text", nullable=nullable), []


def _numeric(name: str, x: pd.Series, nullable: bool, n: int) -> tuple[Column | None, list[str]]:
    inf = np.isinf(x.to_numpy())
    if inf.any():
        return None, [
            f"column {name!r} has {int(inf.sum())} infinite value(s) (first: {x[inf].iloc[0]!r}); "
            "replace them with a number or leave the cell empty"
        ]
    x = x.dropna()
    if x.nunique() == 1:
        return None, [_constant(name, x.iloc[0])]
    decimals = _decimals(x.to_numpy())
    is_int = decimals == 0
    # Row numbers (0..n-1 or 1..n, e.g. an exported index) identify rows; they carry no distribution to learn.
    if is_int and x.is_unique and len(x) == n and len(x) > 20 and (np.diff(np.sort(x.to_numpy())) == 1).all():
        return Column(name=name, kind="id", nullable=False), []
    return Column(
        name=name, kind="numeric", dtype="int" if is_int else "float", decimals=decimals,
        min=float(x.min()), max=float(x.max()), nullable=nullable,
    ), []


def _datetime(name: str, t: pd.Series, fmt: str, nullable: bool) -> tuple[Column | None, list[str]]:
    secs = _datetime_seconds(t)
    if secs.nunique() == 1:
        return None, [_constant(name, t.iloc[0])]
    return Column(
        name=name, kind="datetime", datetime_format=fmt, min=float(secs.min()), max=float(secs.max()),
        nullable=nullable,
    ), []


def _decimals(x: np.ndarray) -> int:
    """Smallest number of decimals d with round(x, d) == x for every value (at most 6)."""
    scale = np.maximum(1.0, np.abs(x))
    for d in range(_MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(x, d) - x) <= 1e-9 * scale):
            return d
    return _MAX_DECIMALS


def _constant(name: str, value: object) -> str:
    value = value.item() if isinstance(value, np.generic) else value
    return f"column {name!r} is constant (every row is {value!r}): drop it (--drop {name}) or give it more than one value"
