"""Cell-level value rules the schema applies: blanks, booleans written as words, rounding, constants,
category keys, datetimes and constraint rules. Kept apart so `tabline.schema` reads as the data model.

Example:
    >>> _as_bool(" TRUE "), _category_key(3.0), float(round_decimals(2.675, 2))
    (True, '3', 2.68)
"""
from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from tabline.errors import InvalidSchemaError

_BOOL_STRINGS = {"true": True, "false": False}


def _blank(s: pd.Series) -> pd.Series:
    """True for text cells holding nothing but spaces: missing, as inference counts them."""
    if not (s.dtype == object or isinstance(s.dtype, pd.StringDtype)):
        return pd.Series(False, index=s.index)
    try:
        stripped = s.str.strip()  # NaN where a cell is not text; vectorised (this runs on every batch's cells)
    except AttributeError:  # an object column holding no text at all
        return pd.Series(False, index=s.index)
    return stripped.eq("").fillna(False).astype(bool)


def _as_bool(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return _BOOL_STRINGS.get(str(v).strip().lower(), v)


_WHOLE = 2.0**53  # every float at least this large is a whole number


def round_decimals(x: Any, decimals: int) -> Any:
    """``x`` (a Series or an array) rounded to ``decimals``. Floats too large to hold a fraction are left as
    they are: numpy rounds by multiplying with 10**decimals, which turns 1e308 into inf.

    Example:
        >>> round_decimals(np.array([1.25, 1e308]), 1).tolist()
        [1.2, 1e+308]
    """
    with np.errstate(over="ignore", invalid="ignore"):
        rounded = np.round(x, decimals)
        whole = np.abs(x) >= _WHOLE
    if isinstance(x, pd.Series):
        return rounded.where(~whole.fillna(False).astype(bool), x)
    return np.where(whole, x, rounded)


def _holds_constant(s: pd.Series, value: Any) -> pd.Series:
    if isinstance(value, bool):
        return s.map(lambda v: _as_bool(v) is value).astype(bool)
    if isinstance(value, (int, float)):  # compared as numbers: "7", 7 and 7.0 all hold the constant 7
        return pd.to_numeric(s, errors="coerce") == value
    return s.map(_category_key, na_action="ignore") == _category_key(value)


def _constant_series(s: pd.Series, value: Any) -> pd.Series:
    # the value's own type: an int constant prints as 7, not 7.0, and a bool one as True, not "True"
    if isinstance(value, bool):
        return s.map(_as_bool, na_action="ignore").astype(object)
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return pd.to_numeric(s, errors="coerce").round().astype("Int64")
    if isinstance(value, float):
        return pd.to_numeric(s, errors="coerce").astype(float)
    return s


def _category_key(v: Any) -> str:
    # CSV round trips turn 3 into "3" and True into "True", and a reader turns a column of "true" into
    # booleans: compare categories by a canonical text form, booleans in any spelling as "True"/"False".
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return "True" if v.lower() == "true" else "False"
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _to_datetime(s: pd.Series, fmt: str | None) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        return s
    return pd.to_datetime(s, format=fmt, errors="coerce")


def _as_written(t: pd.Series, fmt: str, unit: str | None = None) -> pd.Series:
    # Compared as the format writes them: "2000-01-01 00:00:00" is inside a range that starts a microsecond
    # later in the same second, since the format cannot say anything finer.
    t = pd.to_datetime(t, unit=unit) if unit else t
    return _datetime_seconds(pd.to_datetime(t.dt.strftime(fmt), format=fmt, errors="coerce"))


def _datetime_seconds(t: pd.Series) -> pd.Series:
    t = pd.to_datetime(t)
    return (t - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)


_IDENT = re.compile(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)")


def _eval_rule(rule: str, typed: pd.DataFrame, names: list[str]) -> pd.Series:
    used = {m.group(1) or m.group(2) for m in _IDENT.finditer(rule)} & set(names)
    if not used:
        raise InvalidSchemaError(f"constraint {rule!r} names no column of the table (columns: {names})")
    try:
        result = typed.eval(rule, engine="python")
    except Exception as exc:  # pandas raises many types for a bad expression
        raise InvalidSchemaError(f"constraint {rule!r} cannot be evaluated: {exc}") from exc
    if not isinstance(result, pd.Series) or result.dtype != bool:
        raise InvalidSchemaError(f"constraint {rule!r} must give True/False per row (e.g. 'end >= start')")
    unknown = typed[sorted(used)].isna().any(axis=1)
    return result | unknown
