"""Column types, schema inference, vectorised validation and cross-column constraints.

A `Schema` says what a valid row of a table is. It is inferred from a real table, can be edited by the user
(pydantic, ``extra="forbid"``, JSON/YAML round trip), and checks whole batches at once.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"carat": [0.3, 0.41, 1.2, 0.5], "cut": ["Ideal", "Good", "Ideal", "Fair"]})
    >>> schema = Schema.infer(df, constraints=["carat > 0"])
    >>> [(c.name, c.kind) for c in schema.columns]
    [('carat', 'numeric'), ('cut', 'categorical')]
    >>> schema.column("carat").decimals
    2
    >>> schema.check(pd.DataFrame({"carat": [0.5, 9.0], "cut": ["Ideal", "Bad"]})).all(axis=1).tolist()
    [True, False]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from tabline._values import (  # noqa: F401 - re-exported: callers import these from tabline.schema
    _blank, _as_bool, round_decimals, _holds_constant, _constant_series, _category_key, _to_datetime, _as_written, _datetime_seconds, _eval_rule,
)
from tabline._column import _MAX_DECIMALS, DATETIME_FORMATS, Column, Kind  # noqa: F401 - re-exported
from tabline._infer import infer_columns
from tabline.errors import InvalidSchemaError, InvalidTableError


class Schema(BaseModel):
    """The columns of a table, in order, plus cross-column constraints (pandas expressions)."""

    model_config = ConfigDict(extra="forbid")

    columns: list[Column]
    constraints: list[str] = []

    @model_validator(mode="after")
    def _unique_names(self) -> "Schema":
        names = [c.name for c in self.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"column names must be unique; repeated: {dupes}")
        return self

    # ------------------------------------------------------------------ access
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        """The column called ``name``; a `KeyError` naming the known columns otherwise."""
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r}; columns are {self.names}")

    # ------------------------------------------------------------------ inference
    @classmethod
    def infer(
        cls,
        df: pd.DataFrame,
        *,
        descriptions: dict[str, str] | None = None,
        constraints: list[str] | None = None,
        max_categories: int = 500,
    ) -> "Schema":
        """Infer a schema from a real table; raise `InvalidTableError` listing every problem found.

        Problems: duplicate or empty table, all-null columns, columns mixing numbers and text, infinite
        values, constraints that do not parse or that the table itself breaks. A column holding one value in
        every row is kind ``constant``: every synthetic row holds that value.

        Example:
            >>> schema = Schema.infer(pd.DataFrame({"x": [1.5, 2.0, 3.0], "unit": ["kg", "kg", "kg"]}))
            >>> schema.column("unit").kind, schema.column("unit").categories
            ('constant', ['kg'])
        """
        columns, problems = infer_columns(df, max_categories=max_categories)
        for name, text in (descriptions or {}).items():
            match = [c for c in columns if c.name == name]
            if not match:
                problems.append(f"description given for unknown column {name!r}")
            else:
                match[0].description = text
        schema = cls.model_construct(columns=columns, constraints=list(constraints or []))
        if not problems:
            typed = schema.coerce(df)
            problems += schema._constraint_problems(typed, data_label="the table")
        if problems:
            raise InvalidTableError(problems)
        return cls.model_validate(schema.model_dump())

    # ------------------------------------------------------------------ conversion
    def coerce(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return ``df`` with each column converted to its kind's dtype (unparseable values become NaN)."""
        out = {}
        for col in self.columns:
            if col.name not in df.columns:
                continue
            s = df[col.name]
            s = s.mask(_blank(s))
            if col.kind == "numeric":
                out[col.name] = pd.to_numeric(s, errors="coerce")
            elif col.kind == "datetime":
                out[col.name] = _to_datetime(s, col.datetime_format)
            elif col.kind == "boolean":
                out[col.name] = s.map(_as_bool, na_action="ignore").astype(object)
            elif col.kind == "constant":
                out[col.name] = _constant_series(s, col.categories[0])
            else:
                out[col.name] = s
        return pd.DataFrame(out, index=df.index)

    def format(self, df: pd.DataFrame) -> pd.DataFrame:
        """Return ``df`` as the user will see it: numbers rounded to the observed decimals (ints as
        nullable ``Int64``), datetimes as strings in the column's format."""
        out = {}
        for col in self.columns:
            s = df[col.name]
            if col.kind == "numeric":
                s = round_decimals(pd.to_numeric(s, errors="coerce"), col.decimals)
                out[col.name] = s.astype("Int64") if col.dtype == "int" else s
            elif col.kind == "datetime":
                out[col.name] = _to_datetime(s, col.datetime_format).dt.strftime(col.datetime_format)
            elif col.kind == "constant":
                out[col.name] = _constant_series(s, col.categories[0])
            else:
                out[col.name] = s
        return pd.DataFrame(out, index=df.index)

    # ------------------------------------------------------------------ validation
    def check(self, df: pd.DataFrame) -> pd.DataFrame:
        """Per-cell validity, vectorised: a boolean DataFrame with one column per schema column.

        A column missing from ``df`` is all False.
        """
        masks, _ = self._check_with_reasons(df)
        return pd.DataFrame(masks, index=df.index)

    def check_constraints(self, df: pd.DataFrame) -> dict[str, pd.Series]:
        """One boolean Series per constraint (True = satisfied). A row with a missing value in a column the
        rule reads counts as satisfied: the rule cannot be evaluated there, and nullability is checked
        separately."""
        typed = self.coerce(df)
        return {rule: _eval_rule(rule, typed, self.names) for rule in self.constraints}

    def valid_rows(self, df: pd.DataFrame) -> pd.Series:
        """True for rows that satisfy every column and every constraint."""
        ok = self.check(df).all(axis=1)
        for mask in self.check_constraints(df).values():
            ok &= mask
        return ok

    def problems(self, df: pd.DataFrame, *, data_label: str = "the table") -> list[str]:
        """Every problem of ``df`` against this schema, one sentence each, naming column, count and example."""
        problems = []
        missing = [n for n in self.names if n not in df.columns]
        extra = [n for n in df.columns if n not in self.names]
        if missing:
            problems.append(f"{data_label} lacks column(s) {missing}")
        if extra:
            problems.append(f"{data_label} has column(s) the schema does not know: {list(extra)}")
        masks, reasons = self._check_with_reasons(df)
        for name, mask in masks.items():
            if name in missing:
                continue
            bad = ~mask
            if bad.any():
                first = df.loc[bad, name].iloc[0]
                problems.append(
                    f"column {name!r} has {int(bad.sum())} value(s) that {reasons[name]} (first: {first!r})"
                )
        if not missing:
            problems += self._constraint_problems(self.coerce(df), data_label=data_label)
        return problems

    def validate_table(self, df: pd.DataFrame, *, data_label: str = "the table") -> None:
        """Raise `InvalidTableError` listing every problem of ``df``; return None if there is none."""
        problems = self.problems(df, data_label=data_label)
        if problems:
            raise InvalidTableError(problems)

    def _check_with_reasons(self, df: pd.DataFrame) -> tuple[dict[str, pd.Series], dict[str, str]]:
        masks: dict[str, pd.Series] = {}
        reasons: dict[str, str] = {}
        for col in self.columns:
            if col.name not in df.columns:
                masks[col.name] = pd.Series(False, index=df.index)
                reasons[col.name] = "are missing"
                continue
            s = df[col.name]
            null = s.isna() | _blank(s)
            null_ok = null if col.nullable else pd.Series(False, index=df.index)
            if col.kind == "numeric":
                x = pd.to_numeric(s, errors="coerce")
                ok = x.notna() & np.isfinite(x.fillna(0.0))
                tol = 1e-9 * max(1.0, abs(col.min or 0), abs(col.max or 0))
                if col.min is not None:
                    ok &= x >= col.min - tol
                if col.max is not None:
                    ok &= x <= col.max + tol
                ok &= (round_decimals(x, col.decimals) - x).abs().fillna(0) <= tol + 10.0 ** -(col.decimals + 3)
                reasons[col.name] = (
                    f"are not {col.dtype} numbers in [{col.min}, {col.max}] with at most {col.decimals} decimals"
                )
            elif col.kind == "datetime":
                t = _to_datetime(s, col.datetime_format)
                secs = _as_written(t, col.datetime_format)
                ok = t.notna()
                # seconds as a float hold a date to about a microsecond (worse far from 1970)
                tol = 1e-14 * max(1.0, abs(col.min or 0), abs(col.max or 0))
                if col.min is not None:
                    ok &= secs >= _as_written(pd.Series([col.min]), col.datetime_format, unit="s")[0] - tol
                if col.max is not None:
                    ok &= secs <= _as_written(pd.Series([col.max]), col.datetime_format, unit="s")[0] + tol
                reasons[col.name] = f"are not dates ({col.datetime_format}) in the observed range"
            elif col.kind == "constant":
                ok = _holds_constant(s, col.categories[0])
                reasons[col.name] = f"are not the column's one value {col.categories[0]!r}"
            elif col.kind in ("categorical", "boolean"):
                allowed = {_category_key(v) for v in col.categories or []}
                keyed = s.map(_as_bool, na_action="ignore") if col.kind == "boolean" else s
                ok = keyed.map(_category_key, na_action="ignore").isin(allowed)
                reasons[col.name] = "are not among the column's categories"
            else:
                ok = ~null
                reasons[col.name] = "are empty"
            if not col.nullable:
                reasons[col.name] += " (the column has no missing values)"
            masks[col.name] = (ok & ~null) | null_ok
        return masks, reasons

    def _constraint_problems(self, typed: pd.DataFrame, *, data_label: str) -> list[str]:
        problems = []
        for rule in self.constraints:
            try:
                mask = _eval_rule(rule, typed, self.names)
            except InvalidSchemaError as exc:
                problems.append(str(exc))
                continue
            if not mask.all():
                problems.append(f"{data_label} breaks constraint {rule!r} in {int((~mask).sum())} row(s)")
        return problems

    # ------------------------------------------------------------------ persistence
    def to_json(self, path: str | Path | None = None) -> str:
        """Serialise to JSON (and write it to ``path`` if given)."""
        text = self.model_dump_json(indent=2)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Serialise to YAML (and write it to ``path`` if given)."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def load(cls, path: str | Path) -> "Schema":
        """Read a schema from a ``.json``, ``.yaml`` or ``.yml`` file, listing every mistake in it at once."""
        from tabline.io import read_settings_file

        return cls.from_dict(read_settings_file(path, "schema", InvalidSchemaError), source=str(path))

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "schema") -> "Schema":
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidSchemaError(f"{source}: {_describe_validation_error(exc)}") from exc


# ---------------------------------------------------------------------- helpers
def _describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{where}: {msg}")
    return f"{len(parts)} problem(s): " + "; ".join(parts)
