"""What an LLM agent needs to know about the table, and how its answers are held to the table's schema.

- `describe_columns` — one line per column: kind, allowed values or range, and its meaning (ξ).
- `rows_model` — a pydantic output type for "one object per row with these columns"; categorical columns
  become enums, so a server that decodes under a JSON schema (vLLM, OpenAI) cannot leave the categories.
- `validate_rows` — values against the schema, per row, with a sentence the model can act on.
- `stratified_examples` — DATE's ~30 example rows, stratified by the target.

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"cut": ["Good", "Ideal", "Ideal"], "price": [326, 400, 2000]})
    >>> schema = Schema.infer(real)
    >>> print(describe_columns(schema, ["cut", "price"], {"price": "US dollars"}))
    - cut (categorical): one of "Ideal", "Good"
    - price (integer): 326 to 2000 — US dollars
    >>> Row = rows_model("Out", schema, ["cut"])
    >>> Row.model_validate({"rows": [{"row": 0, "cut": "Good"}]}).rows[0].values()
    {'cut': 'Good'}
    >>> validate_rows(pd.DataFrame({"price": [500, -3]}, index=[7, 8]), schema)
    {8: 'row 8: price = -3 is not an integer in [326, 2000]'}
"""
from __future__ import annotations

import json
from typing import Any, Literal, Optional

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model

from tabline.schema import Column, Schema, round_decimals

_MAX_ENUM = 200  # more categories than this are listed in the prompt's text only (a huge enum slows decoding)


def describe_columns(schema: Schema, names: list[str], descriptions: dict[str, str] | None = None) -> str:
    """One line per column in ``names`` for a prompt (empty list -> "(none)")."""
    descriptions = descriptions or {}
    lines = [_describe(schema.column(n), descriptions.get(n) or schema.column(n).description) for n in names]
    return "\n".join(lines) if lines else "(none)"


def _describe(col: Column, meaning: str | None) -> str:
    if col.kind == "numeric":
        kind = "integer" if col.dtype == "int" else f"number, {col.decimals} decimals"
        lo, hi = _num(col.min), _num(col.max)
        values = f"{lo} to {hi}" if lo is not None and hi is not None else "any number"
    elif col.kind in ("categorical", "boolean"):
        cats = col.categories or []
        shown = ", ".join(json.dumps(_plain(c)) for c in cats[:60])
        kind, values = col.kind, f"one of {shown}" + (f" (and {len(cats) - 60} more)" if len(cats) > 60 else "")
    elif col.kind == "datetime":
        kind, values = "date", f"formatted {col.datetime_format}"
    elif col.kind == "constant":
        kind, values = "constant", f"always {json.dumps(_plain(col.categories[0]))}"
    else:
        kind, values = col.kind, "free text" if col.kind == "text" else "an identifier"
    null = "; may be null" if col.nullable else ""
    return f"- {col.name} ({kind}): {values}{null}" + (f" — {meaning}" if meaning else "")


def _num(v: float | None) -> Any:
    if v is None:
        return None
    return int(v) if float(v).is_integer() else v


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _value_type(col: Column) -> Any:
    if col.kind == "numeric":
        base: Any = float  # ints arrive as 3 or 3.0; rounding and the range are checked in `validate_rows`
    elif col.kind == "boolean":
        base = bool
    elif col.kind == "categorical" and col.categories and len(col.categories) <= _MAX_ENUM:
        base = Literal[tuple(_plain(c) for c in col.categories)]  # type: ignore[misc]
    elif col.kind == "constant":
        base = Literal[_plain(col.categories[0])]  # type: ignore[misc]
    else:
        base = str
    return Optional[base] if col.nullable else base


class _RowBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    def values(self) -> dict[str, Any]:
        """The row's column values by column name (the row id left out)."""
        data = self.model_dump(by_alias=True)
        data.pop("row", None)
        data.pop("rationale", None)
        return data


class LooseRows(BaseModel):
    """``{"rows": [ {...}, ... ]}`` with any values: answers are parsed with this, then checked row by row
    against the schema, so one bad row does not throw away the good ones."""

    rows: list[dict[str, Any]] = Field(default_factory=list)


def rows_model(name: str, schema: Schema, columns: list[str], *, row_id: bool = True,
               extra: dict[str, Any] | None = None) -> type[BaseModel]:
    """``{"rows": [{"row": int, <column>: value, ...}]}`` as a pydantic type. Column names need not be
    Python identifiers: each field is aliased to its column's name."""
    fields: dict[str, Any] = {}
    if row_id:
        fields["row"] = (int, ...)
    for i, c in enumerate(columns):
        fields[f"c{i}"] = (_value_type(schema.column(c)), Field(..., alias=c))
    fields.update(extra or {})
    row = create_model(f"{name}Row", __base__=_RowBase, **fields)
    return create_model(name, rows=(list[row], ...))  # type: ignore[valid-type]


def validate_rows(frame: pd.DataFrame, schema: Schema) -> dict[Any, str]:
    """Rows of ``frame`` whose values the schema rejects: {index: "row I: col = v is not ...; ..."}.
    Numbers are rounded to the column's decimals first (a model writing 3.0 for 3 is not wrong)."""
    sub = Schema(columns=[schema.column(c) for c in frame.columns if c in schema.names])
    typed = frame.copy()
    for col in sub.columns:
        if col.kind == "numeric":
            typed[col.name] = round_decimals(pd.to_numeric(typed[col.name], errors="coerce"), col.decimals)
    masks, _ = sub._check_with_reasons(typed)
    problems: dict[Any, list[str]] = {}
    for col in sub.columns:
        bad = ~masks[col.name]
        for idx in bad[bad].index:
            value = frame.at[idx, col.name]
            problems.setdefault(idx, []).append(f"{col.name} = {_show(value)} {_why(col, value)}")
    return {idx: f"row {idx}: " + "; ".join(p) for idx, p in problems.items()}


def _why(col: Column, value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "is missing (the column has no missing values)"
    if col.kind == "numeric":
        return f"is not {'an integer' if col.dtype == 'int' else 'a number'} in [{_num(col.min)}, {_num(col.max)}]"
    if col.kind in ("categorical", "boolean"):
        return "is not one of the column's values"
    if col.kind == "constant":
        return f"is not the column's one value {_show(col.categories[0])}"
    if col.kind == "datetime":
        return f"is not a date formatted {col.datetime_format} in the observed range"
    return "is empty"


def _show(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "null"
    return json.dumps(_plain(v), default=str)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (missing -> null, numpy scalars -> Python)."""
    obj = frame.astype(object).where(frame.notna(), None)
    return [{k: _plain(v) for k, v in row.items()} for row in obj.to_dict(orient="records")]


def stratified_examples(rows: pd.DataFrame, k: int, *, target: str | None, seed: int) -> pd.DataFrame:
    """Up to ``k`` rows: with a target, every class gets its share (at least one row each); else random."""
    if len(rows) <= k:
        return rows
    rng = np.random.default_rng(seed)
    if target is None or target not in rows.columns or rows[target].nunique() > k:
        return rows.iloc[np.sort(rng.choice(len(rows), k, replace=False))]
    picks = []
    groups = rows.groupby(rows[target].astype(str), sort=True).indices
    for _, idx in groups.items():
        share = max(1, round(k * len(idx) / len(rows)))
        picks.extend(rng.choice(idx, min(share, len(idx)), replace=False).tolist())
    picks = sorted(picks)[:k] if len(picks) > k else sorted(picks)
    return rows.iloc[picks]
