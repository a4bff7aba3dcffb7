"""QC stage 1, sanity: rows that are invalid, repeated, or copies of real rows are rejected, with the reason.

Checks, vectorised over the batch, in this order (a row gets the first reason that applies):
1. ``schema``     — a value its column cannot take (names the column and the value);
2. ``constraint`` — a cross-column rule is broken (names the rule);
3. ``duplicate``  — the same row appears earlier in the batch, or was accepted before;
4. ``copy``       — the row equals a real training row (a privacy leak, whatever its quality).
Rows are compared after the schema's rounding, so 0.30000000001 and 0.3 are the same value.

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", "y"]})
    >>> schema = Schema.infer(real)
    >>> batch = pd.DataFrame({"a": [2, 9, 3, 3], "b": ["x", "x", "y", "y"]})
    >>> sanity(batch, schema, real_keys=set(row_keys(real, schema))).reason.tolist()
    ['', "schema: column 'a' = 9 is not allowed", '', 'duplicate: same as row 2 of this batch']
"""
from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from tabline.rowkeys import row_keys as eval_row_keys
from tabline.qc.verdicts import StageResult
from tabline.schema import Schema


def row_keys(df: pd.DataFrame, schema: Schema) -> pd.Series:
    """A 64-bit hash per row after the schema's rounding, indexed like ``df``. Identifier columns are left
    out: a real row with a fresh id is still a copy. (The same key the evaluation's exact-copy rate uses.)"""
    return pd.Series(eval_row_keys(schema.coerce(df[schema.names]), schema), index=df.index)


def sanity(
    batch: pd.DataFrame,
    schema: Schema,
    *,
    accepted_keys: Collection[int] = (),
    real_keys: Collection[int] = (),
) -> StageResult:
    """Per-row sanity verdicts for ``batch``. ``accepted_keys`` / ``real_keys`` come from `row_keys`."""
    reason = pd.Series("", index=batch.index, dtype=object)

    def mark(mask: pd.Series, text: pd.Series | str) -> None:
        fresh = mask & reason.eq("")
        reason[fresh] = text[fresh] if isinstance(text, pd.Series) else text

    cells = schema.check(batch)
    for name in schema.names:  # schema order: the first bad column names the reason
        bad = ~cells[name]
        if bad.any():
            shown = batch[name].astype(object).map(repr) if name in batch else pd.Series("<missing>", index=batch.index)
            mark(bad, "schema: column " + repr(name) + " = " + shown.str.strip("'\"") + " is not allowed")
    if not set(schema.names) <= set(batch.columns):
        return StageResult.from_reasons("sanity", reason)  # every row already names the missing column
    for rule, ok in schema.check_constraints(batch).items():
        mark(~ok, f"constraint: breaks {rule!r}")

    keys = row_keys(batch, schema)
    first = pd.Series(batch.index, index=batch.index).groupby(keys.to_numpy()).transform("first")
    repeated = keys.duplicated(keep="first")
    mark(repeated, "duplicate: same as row " + first.astype(str) + " of this batch")
    mark(keys.map(lambda k: k in accepted_keys).astype(bool), "duplicate: same as an accepted row")
    mark(keys.map(lambda k: k in real_keys).astype(bool), "copy: equals a real training row")
    return StageResult.from_reasons("sanity", reason)
