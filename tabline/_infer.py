"""Heuristics that turn a raw DataFrame column into a `Column`, collecting problems instead of raising.

Used by `Schema.infer`; kept apart so the schema module reads as the data model.

A column with one value in every row is kind ``constant`` (its value keeps its type: int, float, text or
bool); one value plus missing cells is an ordinary column with a single category (or range) that may be missing.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.5, 2.25, None], "y": ["a", "a", "a"], "n": [7, 7, 7], "z": ["b", None, "b"]})
    >>> cols, problems = infer_columns(df)
    >>> cols[0].decimals, cols[0].nullable, problems
    (2, True, [])
    >>> [(c.kind, c.categories) for c in cols[1:]]
    [('constant', ['a']), ('constant', [7]), ('categorical', ['b'])]
"""
from __future__ import annotations

import math
import shlex

import numpy as np
import pandas as pd

from tabline._column import _MAX_DECIMALS, DATETIME_FORMATS, Column
from tabline._values import _as_bool, _category_key, _datetime_seconds, round_decimals

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
        return None, [f"column {name!r} has no values (all {n} are empty): drop it (--drop {_shell(name)})"]

    # booleans: real bools, or the words true/false
    if s.dtype == bool or values.map(lambda v: isinstance(_as_bool(v), bool)).all():
        cats = sorted({_as_bool(v) for v in values}, reverse=True)
        if len(cats) == 1 and not nullable:
            return _constant(name, cats[0]), []
        return Column(name=name, kind="boolean", categories=cats, nullable=nullable), []

    if pd.api.types.is_datetime64_any_dtype(s):  # before numbers: to_numeric turns datetimes into nanoseconds
        t = pd.to_datetime(values)
        fmt = ("%Y-%m-%d" if (t == t.dt.normalize()).all() else
               "%Y-%m-%d %H:%M:%S" if (t == t.dt.floor("s")).all() else "%Y-%m-%d %H:%M:%S.%f")
        return _datetime(name, t, fmt, nullable, values)

    numeric = pd.to_numeric(values, errors="coerce")
    share_numeric = float(numeric.notna().mean())
    if pd.api.types.is_numeric_dtype(s) or share_numeric == 1.0:
        return _numeric(name, numeric.astype(float), nullable, n, values)
    if share_numeric >= 0.5:
        bad = values[numeric.isna()]
        return None, [
            f"column {name!r} mixes numbers ({int(numeric.notna().sum())} values) and text "
            f"({len(bad)} values, first: {bad.iloc[0]!r}); if that text means 'missing', pass "
            f"--na-value {bad.iloc[0]!r}"
        ]

    text = values.astype(str)
    if text.str.match(_DATEISH).all():
        for fmt in DATETIME_FORMATS:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce")
            if parsed.notna().all():
                return _datetime(name, parsed, fmt, nullable, values)

    # Counted by the text form that checks compare: value_counts would merge True with 1 (equal in Python)
    # and keep 3 apart from "3".
    keys = values.map(_category_key)
    counts = keys.value_counts()
    first: dict[str, object] = {}
    for k, v in zip(keys, values):
        first.setdefault(k, v)
    if len(counts) == 1 and not nullable:
        return _constant(name, first[counts.index[0]]), []
    if len(counts) == len(values) and len(values) > 20:
        # unique sentences are free text (notes, reviews), not identifiers
        words = text.str.split().str.len().median()
        return Column(name=name, kind="text" if words >= 3 else "id", nullable=nullable), []
    if len(counts) <= max_categories and (len(counts) <= 20 or len(counts) <= 0.5 * len(values)):
        categories = [_json_value(first[k]) for k in counts.index]
        return Column(name=name, kind="categorical", categories=categories, nullable=nullable), []
    return Column(name=name, kind="text", nullable=nullable), []


def _numeric(name: str, x: pd.Series, nullable: bool, n: int, raw: pd.Series) -> tuple[Column | None, list[str]]:
    inf = np.isinf(x.to_numpy())
    if inf.any():
        return None, [
            f"column {name!r} has {int(inf.sum())} infinite value(s) (first: {x[inf].iloc[0]!r}); "
            "replace them with a number or leave the cell empty"
        ]
    x = x.dropna()
    # as floats, 2**63 - 1 and 2**63 are one number: a constant only if the values as read are one value
    if raw.nunique() == 1 and not nullable:
        return _constant(name, _number(raw.iloc[0], x.iloc[0])), []
    decimals = _decimals(x.to_numpy())
    # whole numbers beyond int64 (1e308, 10**25) stay floats: they cannot be written as 64-bit integers
    is_int = decimals == 0 and float(x.abs().max()) < 2.0**63
    # Row numbers (0..n-1 or 1..n, e.g. an exported index) identify rows; they carry no distribution to learn.
    if is_int and x.is_unique and len(x) == n and len(x) > 20 and (np.diff(np.sort(x.to_numpy())) == 1).all():
        return Column(name=name, kind="id", nullable=False), []
    return Column(
        name=name, kind="numeric", dtype="int" if is_int else "float", decimals=decimals,
        min=float(x.min()), max=float(x.max()), nullable=nullable,
    ), []


def _datetime(name: str, t: pd.Series, fmt: str, nullable: bool, raw: pd.Series) -> tuple[Column | None, list[str]]:
    secs = _datetime_seconds(t)
    # one date written one way is a constant (kept as written); "2020-1-5" beside "2020-01-05" is a date range
    if raw.astype(str).nunique() == 1 and not nullable:
        return _constant(name, raw.iloc[0]), []
    return Column(
        name=name, kind="datetime", datetime_format=fmt, min=float(secs.min()), max=float(secs.max()),
        nullable=nullable,
    ), []


def _decimals(x: np.ndarray) -> int:
    """Smallest number of decimals d with round(x, d) == x for every value, to a few units in the last place
    (at most 15). Exact, not to a tolerance: a column of float32 artifacts such as 3.09999990463257 keeps all
    its 14 decimals, since rounding it to fewer would output values the column never holds.

    Example:
        >>> _decimals(np.array([1.5, 2.25])), _decimals(np.array([3.09999990463257]))
        (2, 14)
    """
    with np.errstate(over="ignore"):  # near 1.8e308 the spacing overflows to inf: any rounding is then "exact"
        ulps = 4 * np.spacing(np.maximum(1.0, np.abs(x)))
    for d in range(_MAX_DECIMALS + 1):
        if np.all(np.abs(round_decimals(x, d) - x) <= ulps):
            return d
    return _MAX_DECIMALS


def _number(raw: object, x: float) -> int | float:
    """A numeric constant in its own type: ints stay ints (when they fit in 64 bits), the rest are floats."""
    if isinstance(raw, (bool, np.bool_)):
        return float(x)
    if isinstance(raw, (int, np.integer)) and -(2**63) <= int(raw) < 2**63:
        return int(raw)
    if isinstance(raw, str) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return float(x)


def _shell(name: str) -> str:
    """``name`` as it would be typed in a shell (repr when it holds a newline or another control character)."""
    return shlex.quote(name) if name.isprintable() else repr(name)


def _json_value(value: object) -> object:
    value = value.item() if isinstance(value, np.generic) else value
    # The schema is JSON: a Timestamp or Decimal (from Parquet, Excel) is kept as the text it compares by, and
    # so is a category inf, which JSON would turn into null.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def _constant(name: str, value: object) -> Column:
    return Column(name=name, kind="constant", categories=[_json_value(value)])
