"""Per-column codes: how one column's values map to its own token ids, and back.

`TableTokenizer` lays these codes out as rows; this module knows one column at a time.

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> df = pd.DataFrame({"n": range(300)})
    >>> schema = Schema.infer(df.assign(k=["a", "b", "c"] * 100))
    >>> code, next_id = fit_column(schema.column("n"), df["n"], 4, coarse_bins=8, fine_bins=64, exact_values=16)
    >>> code.kind, code.n_values, code.slots
    ('binned', 8, 2)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabline.schema import Column, _as_bool, _category_key, _datetime_seconds, _to_datetime, round_decimals

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]


@dataclass
class ColumnCode:
    """How one modelled column maps to tokens. Token ids are absolute positions in the vocabulary.

    ``values`` lists slot-0 meanings (category, or exact number); for two-token columns ``bins`` holds,
    per coarse bin, either exact values (``("exact", [v...])``) or sub-bin edges (``("range", [e...])``).
    """

    name: str
    kind: str  # category | exact | binned
    marker: int
    first: int  # id of slot-0 token 0
    n_values: int  # number of slot-0 value tokens (excluding NA)
    has_na: bool
    values: list = field(default_factory=list)  # category (kind=category) or number (kind=exact)
    edges: list = field(default_factory=list)  # coarse bin edges (kind=binned), len = n_values + 1
    bins: list = field(default_factory=list)  # kind=binned: per coarse bin ("exact"|"range", list)
    fine_first: int = -1  # kind=binned: id of fine token 0
    fine_size: int = 0  # kind=binned: number of fine tokens (excluding the 'none' token)
    is_datetime: bool = False

    @property
    def slots(self) -> int:
        return 2 if self.kind == "binned" else 1

    @property
    def na_id(self) -> int:
        return self.first + self.n_values  # valid only if has_na

    @property
    def slot0_range(self) -> tuple[int, int]:
        return self.first, self.first + self.n_values + int(self.has_na)

    @property
    def fine_none_id(self) -> int:
        return self.fine_first + self.fine_size

    def n_fine(self) -> np.ndarray:
        """Number of valid fine tokens for each coarse bin, shape (n_values,)."""
        return np.array([len(v) if k == "exact" else len(v) - 1 for k, v in self.bins], dtype=np.int64)


# ---------------------------------------------------------------------- per-column fitting
def _numbers(col: Column, s: pd.Series) -> pd.Series:
    if col.kind == "datetime":
        return _datetime_seconds(_to_datetime(s, col.datetime_format))
    return pd.to_numeric(s, errors="coerce").astype(float)


def fit_column(col: Column, s: pd.Series, next_id: int, coarse_bins: int, fine_bins: int, exact_values: int):
    marker, first = next_id, next_id + 1
    if col.kind in ("categorical", "boolean"):
        cats = list(col.categories or [])
        code = ColumnCode(col.name, "category", marker, first, len(cats), col.nullable, values=cats)
        return code, first + len(cats) + int(col.nullable)
    x = _numbers(col, s).dropna().to_numpy()
    distinct = np.unique(x)
    is_dt = col.kind == "datetime"
    if len(distinct) <= exact_values:
        code = ColumnCode(col.name, "exact", marker, first, len(distinct), col.nullable,
                          values=distinct.tolist(), is_datetime=is_dt)
        return code, first + len(distinct) + int(col.nullable)
    # Edges are observed values ("lower" quantiles), so every bin [e_b, e_b+1) holds at least e_b itself:
    # an interpolated edge can leave a bin empty, and an empty bin has no fine token to sample.
    edges = np.unique(np.quantile(x, np.linspace(0, 1, coarse_bins + 1), method="lower"))
    coarse = coarse_index(edges, x)
    bins = []
    for b in range(len(edges) - 1):
        inside = x[coarse == b]
        u = np.unique(inside)
        if len(u) <= fine_bins:
            bins.append(("exact", u.tolist()))
        else:
            bins.append(("range", np.unique(np.quantile(inside, np.linspace(0, 1, fine_bins + 1))).tolist()))
    n_coarse = len(edges) - 1
    fine_first = first + n_coarse + int(col.nullable)
    code = ColumnCode(col.name, "binned", marker, first, n_coarse, col.nullable, edges=edges.tolist(),
                      bins=bins, fine_first=fine_first, fine_size=fine_bins, is_datetime=is_dt)
    return code, fine_first + fine_bins + 1


def coarse_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


# distances between values near ±1e308 overflow to inf; the nearest value is still the one at distance 0
@np.errstate(over="ignore", invalid="ignore")
def encode_column(code: ColumnCode, col: Column, s: pd.Series) -> np.ndarray:
    """(rows, 2) token ids for one column; a value the column cannot take becomes UNK."""
    out = np.full((len(s), 2), PAD, dtype=np.int64)
    null = s.isna().to_numpy()
    na_token = code.na_id if code.has_na else UNK  # a missing value in a non-nullable column is invalid
    if code.kind == "category":
        lookup = {_category_key(v): k for k, v in enumerate(code.values)}
        if col.kind == "boolean":
            s = s.map(_as_bool, na_action="ignore")
        idx = s.map(_category_key, na_action="ignore").map(lookup).to_numpy(dtype=float)  # NaN = unknown
        out[:, 0] = np.where(null, na_token, np.where(np.isnan(idx), UNK, code.first + np.nan_to_num(idx)))
        return out
    x = _numbers(col, s).to_numpy()
    if code.kind == "exact":
        vals = np.asarray(code.values, dtype=float)
        k = np.clip(np.searchsorted(vals, np.nan_to_num(x)), 0, len(vals) - 1)
        # a value between observed ones (e.g. a condition) snaps to the nearest observed value
        k_left = np.clip(k - 1, 0, len(vals) - 1)
        k = np.where(np.abs(vals[k_left] - x) < np.abs(vals[k] - x), k_left, k)
        out[:, 0] = np.where(null, na_token, code.first + k)
        return out
    edges = np.asarray(code.edges)
    b = coarse_index(edges, np.nan_to_num(x, nan=edges[0]))
    fine = np.zeros(len(x), dtype=np.int64)
    for bi in np.unique(b[~null]):
        rows = (b == bi) & ~null
        kind, v = code.bins[bi]
        v = np.asarray(v)
        if kind == "exact":
            k = np.clip(np.searchsorted(v, x[rows]), 0, len(v) - 1)
            k_left = np.clip(k - 1, 0, len(v) - 1)
            fine[rows] = np.where(np.abs(v[k_left] - x[rows]) < np.abs(v[k] - x[rows]), k_left, k)
        else:
            fine[rows] = np.clip(np.searchsorted(v, x[rows], side="right") - 1, 0, len(v) - 2)
    out[:, 0] = np.where(null, na_token, code.first + b)
    out[:, 1] = np.where(null, code.fine_none_id, code.fine_first + fine)
    return out


def decode_column(code: ColumnCode, col: Column, toks: np.ndarray, rng: np.random.Generator) -> pd.Series:
    slot0 = toks[:, 0] - code.first
    null = slot0 == code.n_values
    if code.kind == "category":
        vals = np.array(code.values + [None], dtype=object)
        return pd.Series(vals[np.clip(slot0, 0, code.n_values)], dtype=object)
    if code.kind == "exact":
        x = np.asarray(code.values + [np.nan], dtype=float)[np.clip(slot0, 0, code.n_values)]
    else:
        x = np.full(len(toks), np.nan)
        fine = toks[:, 1] - code.fine_first
        for bi in np.unique(slot0[~null]):
            rows = np.nonzero((slot0 == bi) & ~null)[0]
            kind, v = code.bins[bi]
            v = np.asarray(v)
            f = np.clip(fine[rows], 0, (len(v) if kind == "exact" else len(v) - 1) - 1)
            if kind == "exact":
                x[rows] = v[f]
            else:
                x[rows] = rng.uniform(v[f], v[f + 1])
        if not code.is_datetime:
            x = round_decimals(x, col.decimals)
        x = np.where(null, np.nan, np.clip(x, col.min, col.max))
    if code.is_datetime:
        # Only the values that exist are converted: pandas converts under np.errstate(over="raise"), and an
        # all-NaN array was seen to trip it ("overflow encountered in multiply") after torch had sampled.
        out = np.full(len(x), None, dtype=object)
        there = ~np.isnan(x) & ~null
        if there.any():
            t = pd.to_datetime(pd.Series(x[there]), unit="s").dt.round("us")  # float seconds: exact to 1 µs at best
            out[there] = t.dt.strftime(col.datetime_format).to_numpy(dtype=object)
        return pd.Series(out, dtype=object)
    return pd.Series(x)


def bad_condition(col: Column, value: object) -> str:
    if col.kind == "constant":
        return f"condition {col.name}={value!r}: the column is constant (every row is {col.categories[0]!r})"
    if col.kind in ("categorical", "boolean"):
        cats = col.categories or []
        shown = ", ".join(repr(c) for c in cats[:8]) + (", ..." if len(cats) > 8 else "")
        return f"condition {col.name}={value!r}: not a category of the column (categories: {shown})"
    if pd.isna(value) and not col.nullable:
        return f"condition {col.name}=<missing>: the column has no missing values"
    if col.kind == "numeric":
        return (f"condition {col.name}={value!r}: must be a {col.dtype} number in [{col.min:g}, {col.max:g}]"
                f" with at most {col.decimals} decimals" + (" or missing" if col.nullable else ""))
    return f"condition {col.name}={value!r}: must be a date ({col.datetime_format}) in the observed range"
