"""One 64-bit key per table row, equal for rows that hold the same values: the test for an exact copy.

Used by the evaluation's exact-copy rate, the QC chain's sanity stage and `TabularLM.sample`'s copy guard,
so all three agree on what a copy is. Kept free of heavy imports (the sampler loads it).

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 1.0], "c": ["a", "b", "a"]})
    >>> keys = row_keys(df, Schema.infer(df))
    >>> bool(keys[0] == keys[2]), bool(keys[0] == keys[1])
    (True, False)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.schema import Column, Schema, _category_key, _datetime_seconds, round_decimals


def numbers(s: pd.Series, col: Column) -> np.ndarray:
    """A numeric or datetime column as floats; missing and infinite values become NaN."""
    if col.kind == "datetime":
        x = _datetime_seconds(s).to_numpy(dtype=float, na_value=np.nan)
    else:
        x = pd.to_numeric(s, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    x[~np.isfinite(x)] = np.nan  # trees reject inf, and an infinite distance would swamp every other column
    return x


def category_keys(s: pd.Series) -> pd.Series:
    """Categories in the schema's canonical text form; missing values stay missing.

    Example:
        >>> category_keys(pd.Series(["yes", "no", None, "yes"], dtype=object)).tolist()
        ['yes', 'no', None, 'yes']
        >>> category_keys(pd.Series([True, 1, 2.0], dtype=object)).tolist()  # a mixed column: cell by cell
        ['True', '1', '2']
    """
    if pd.api.types.infer_dtype(s, skipna=True) in _ONE_TYPE:
        # Every line batch and judge encodes its categories; a column has far fewer distinct values than
        # cells, so each distinct value is turned into its key once. Only for columns of one type: there,
        # values that compare equal (3 and 3.0) have the same key, which is not so for True and 1.
        missing = s.isna()
        uniques = pd.unique(s[~missing])
        keys = s.map(dict(zip(uniques, map(_category_key, uniques))))
        return keys.where(~missing, s) if missing.any() else keys  # missing cells stay as they were
    return s.map(_category_key, na_action="ignore")


_ONE_TYPE = {"string", "integer", "boolean", "floating"}


def row_keys(df: pd.DataFrame, schema: Schema) -> np.ndarray:
    """One 64-bit hash per row of its values after the schema's rounding; ids are left out (they label rows,
    so a copied row with a fresh id is still a copy)."""
    parts = {}
    for col in schema.columns:
        s = df[col.name]
        if col.kind == "numeric":
            # + 0.0 turns -0.0 into 0.0; rounding first makes 0.1 + 0.2 equal 0.3.
            text = pd.Series(round_decimals(numbers(s, col), col.decimals) + 0.0, index=df.index).astype(str)
        elif col.kind == "datetime":
            text = pd.to_datetime(s, errors="coerce").dt.strftime(col.datetime_format)
        elif col.kind in ("categorical", "boolean"):
            text = category_keys(s)
        elif col.kind == "text":
            text = s.map(str, na_action="ignore")
        else:
            continue
        parts[col.name] = text.astype(object).where(text.notna(), "\x00missing")
    if not parts:
        return np.zeros(len(df), dtype=np.uint64)
    return pd.util.hash_pandas_object(pd.DataFrame(parts, index=df.index), index=False).to_numpy()
