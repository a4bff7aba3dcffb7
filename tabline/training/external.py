"""Columns the language model does not generate: free text (resampled), identifiers (made fresh) and
constants (copied).

Free text is left to LLM workers (a later stage of the line); the embedded default resamples observed
values with their frequencies so the column keeps its marginal distribution. Identifiers carry no
distribution: new rows get new identifiers that cannot collide with real ones. A constant column holds its
one value in every row.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> df = pd.DataFrame({"id": [f"u{i}" for i in range(30)], "v": [1, 2] * 15, "unit": ["kg"] * 30})
    >>> ext = ExternalColumns.fit(df, Schema.infer(df))
    >>> ext.sample(2, np.random.default_rng(0))[["id", "unit"]].values.tolist()
    [['syn-000000001', 'kg'], ['syn-000000002', 'kg']]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tabline.schema import Schema

_MAX_KEPT = 20_000  # distinct text values kept per column (the rest of the mass goes to those kept)


@dataclass
class ExternalColumns:
    text: dict[str, tuple[list, list[float]]] = field(default_factory=dict)  # name -> (values, probs)
    ids: dict[str, float | None] = field(default_factory=dict)  # name -> max numeric id (None for text ids)
    constants: dict[str, Any] = field(default_factory=dict)  # name -> the value of every row

    @classmethod
    def fit(cls, df: pd.DataFrame, schema: Schema) -> "ExternalColumns":
        ext = cls()
        for col in schema.columns:
            s = df[col.name]
            if col.kind == "text":
                counts = s.astype(object).where(s.notna(), None).value_counts(dropna=False).head(_MAX_KEPT)
                probs = (counts / counts.sum()).tolist()
                ext.text[col.name] = ([None if pd.isna(v) else v for v in counts.index], probs)
            elif col.kind == "id":
                x = pd.to_numeric(s, errors="coerce")
                ext.ids[col.name] = float(x.max()) if x.notna().all() else None
            elif col.kind == "constant":
                ext.constants[col.name] = col.categories[0]
        return ext

    def sample(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        out = {}
        for name, (values, probs) in self.text.items():
            idx = rng.choice(len(values), size=n, p=np.asarray(probs) / np.sum(probs))
            out[name] = pd.Series(np.asarray(values, dtype=object)[idx], dtype=object)
        for name, top in self.ids.items():
            if top is None:
                out[name] = pd.Series([f"syn-{i:09d}" for i in range(1, n + 1)], dtype=object)
            else:
                out[name] = pd.Series(np.arange(1, n + 1) + int(top), dtype="int64")
        for name, value in self.constants.items():
            out[name] = pd.Series([value] * n, dtype=object if isinstance(value, (bool, str)) else None)
        return pd.DataFrame(out)

    def to_dict(self) -> dict:
        return {"text": {k: [v, p] for k, (v, p) in self.text.items()}, "ids": self.ids, "constants": self.constants}

    @classmethod
    def from_dict(cls, d: dict) -> "ExternalColumns":
        # models saved before constant columns existed have no "constants" entry
        return cls(text={k: (v, p) for k, (v, p) in d["text"].items()}, ids=dict(d["ids"]),
                   constants=dict(d.get("constants", {})))
