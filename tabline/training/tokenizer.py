"""The table tokenizer: a column-aware vocabulary that turns rows into fixed-length token sequences.

A row is written ``<bos> [c] v [c] v v ... <eos>``: for each column a *marker* token ``[c]`` followed by its
value token(s). Value tokens belong to exactly one column, so a sampler can restrict every step to the
tokens the current column may take (constrained decoding).

Encodings (chosen by measuring round-trip error and sequence length; see docs/tabular-lm.md):
- categorical / boolean: one token per category;
- numeric or datetime with at most ``exact_values`` distinct values: one token per observed value;
- other numerics/datetimes: a *coarse* token (one of ``coarse_bins`` quantile bins) plus a *fine* token.
  Inside a coarse bin with at most ``fine_bins`` distinct values the fine token names the value exactly
  (lossless); otherwise it names one of ``fine_bins`` sub-quantile bins and decoding draws uniformly inside
  it, then rounds to the column's decimals. Decoded values never leave the observed range.
- a missing-value token per nullable column (and a matching "no fine value" token for two-token columns);
- text / identifier columns are not modelled: text is resampled from its observed values, identifiers
  are generated fresh (see `ExternalColumns`).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.5, 2.0, 3.25, 2.0], "c": ["a", "b", "a", "a"]})
    >>> tok = TableTokenizer.fit(df)
    >>> ids = tok.encode(df)
    >>> ids.shape  # (rows, 2 + 2 columns × (marker + 1 token))
    (4, 6)
    >>> tok.decode(ids)["x"].tolist()
    [1.5, 2.0, 3.25, 2.0]
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tabline.errors import ConditionError, InvalidTableError
from tabline.schema import Column, Schema, _as_bool, _category_key, _datetime_seconds, _to_datetime

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


@dataclass
class TableTokenizer:
    """Column-aware tokenizer for one table. Build it with `TableTokenizer.fit(df)`."""

    schema: Schema
    codes: list[ColumnCode]
    vocab_size: int
    coarse_bins: int = 64
    fine_bins: int = 128
    exact_values: int = 128

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(
        cls, df: pd.DataFrame, schema: Schema | None = None, *,
        coarse_bins: int = 64, fine_bins: int = 128, exact_values: int = 128,
    ) -> "TableTokenizer":
        schema = schema or Schema.infer(df)
        typed = schema.coerce(df)
        next_id = len(SPECIAL_TOKENS)
        codes = []
        for col in schema.columns:
            if col.kind in ("text", "id"):
                continue
            code, next_id = _fit_column(col, typed[col.name], next_id, coarse_bins, fine_bins, exact_values)
            codes.append(code)
        return cls(schema, codes, next_id, coarse_bins, fine_bins, exact_values)

    @property
    def modelled(self) -> list[str]:
        """Names of the columns the language model generates (text and id columns are not among them)."""
        return [c.name for c in self.codes]

    def code(self, name: str) -> ColumnCode:
        for c in self.codes:
            if c.name == name:
                return c
        raise KeyError(name)

    def row_length(self) -> int:
        return 2 + sum(1 + c.slots for c in self.codes)

    # ------------------------------------------------------------------ encoding
    def encode_values(self, df: pd.DataFrame) -> np.ndarray:
        """Value tokens per column, shape (rows, modelled columns, 2); unused second slots hold PAD."""
        typed = self.schema.coerce(df)
        out = np.full((len(df), len(self.codes), 2), PAD, dtype=np.int64)
        for j, code in enumerate(self.codes):
            out[:, j, :] = _encode_column(code, self.schema.column(code.name), typed[code.name])
        return out

    def encode(self, df: pd.DataFrame, orders: np.ndarray | None = None) -> np.ndarray:
        """Token ids, shape (rows, row_length). ``orders`` (rows, modelled columns) gives each row's column
        order as indices into `modelled`; default is the schema order."""
        return self.assemble(self.encode_values(df), orders)

    def assemble(self, values: np.ndarray, orders: np.ndarray | None = None) -> np.ndarray:
        """Lay out pre-encoded values (from `encode_values`) in the given column orders, vectorised."""
        n, d, _ = values.shape
        if orders is None:
            orders = np.broadcast_to(np.arange(d), (n, d))
        markers = np.array([c.marker for c in self.codes])
        widths = np.array([1 + c.slots for c in self.codes])
        blocks = np.concatenate([np.broadcast_to(markers[None, :, None], (n, d, 1)), values], axis=2)  # (n, d, 3)
        blocks = np.take_along_axis(blocks, orders[:, :, None], axis=1)  # (n, d, 3)
        keep = np.arange(3)[None, None, :] < widths[orders][:, :, None]  # (n, d, 3)
        body = blocks[keep].reshape(n, -1)
        return np.concatenate([np.full((n, 1), BOS), body, np.full((n, 1), EOS)], axis=1)

    def encode_strict(self, df: pd.DataFrame) -> np.ndarray:
        """Like `encode`, but an `InvalidTableError` names every column holding a value the vocabulary lacks
        (an unknown category, or a missing value where the column has none). Numbers outside the observed
        range are scored as the nearest edge bin."""
        missing = [n for n in self.modelled if n not in df.columns]
        if missing:
            raise InvalidTableError(f"the rows lack column(s) {missing}")
        values = self.encode_values(df)
        problems = []
        for j, name in enumerate(self.modelled):
            bad = (values[:, j, :] == UNK).any(axis=1)
            if bad.any():
                first = df[name].iloc[int(np.argmax(bad))]
                problems.append(f"column {name!r} has {int(bad.sum())} value(s) the model cannot represent (first: {first!r})")
        if problems:
            raise InvalidTableError(problems)
        return self.assemble(values)

    def value_mask(self, ids: np.ndarray) -> np.ndarray:
        """True where a token is a value (what the model is trained to predict), False for bos/markers/eos."""
        markers = np.array([c.marker for c in self.codes])
        return (ids > UNK) & ~np.isin(ids, markers)

    # ------------------------------------------------------------------ decoding
    def decode(self, ids: np.ndarray, rng: np.random.Generator | None = None) -> pd.DataFrame:
        """Rows from token ids in any column order (markers say which column follows)."""
        rng = rng or np.random.default_rng(0)
        values = self.split_values(ids)
        return self.decode_values(values, rng)

    def split_values(self, ids: np.ndarray) -> np.ndarray:
        """Inverse of `assemble`: value tokens per column, shape (rows, modelled columns, 2)."""
        n = ids.shape[0]
        out = np.full((n, len(self.codes), 2), PAD, dtype=np.int64)
        for j, code in enumerate(self.codes):
            row, pos = np.nonzero(ids == code.marker)
            if len(row) != n:
                raise ValueError(f"token rows lack the marker of column {code.name!r}")
            order = np.argsort(row)
            pos = pos[order]
            for s in range(code.slots):
                out[:, j, s] = ids[np.arange(n), pos + 1 + s]
        return out

    def decode_values(self, values: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        cols = {}
        for j, code in enumerate(self.codes):
            cols[code.name] = _decode_column(code, self.schema.column(code.name), values[:, j, :], rng)
        return pd.DataFrame(cols)

    # ------------------------------------------------------------------ conditions
    def encode_conditions(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """Forced value tokens for conditioned columns, (rows, modelled columns, 2) with -1 where free, and the
        conditions converted to the columns' types. `ConditionError` names an unknown or unmodelled column,
        or a value the column cannot take."""
        forced = np.full((len(frame), len(self.codes), 2), -1, dtype=np.int64)
        for name in frame.columns:
            if name not in self.schema.names:
                raise ConditionError(f"unknown condition column {name!r}; columns are {self.schema.names}")
            if name not in self.modelled:
                kind = self.schema.column(name).kind
                raise ConditionError(f"column {name!r} holds {kind} values, which cannot be a condition")
        typed = self.schema.coerce(frame)
        valid = self.schema.check(frame.reindex(columns=self.schema.names))
        for name in frame.columns:
            col, j = self.schema.column(name), self.modelled.index(name)
            if not valid[name].all():
                bad = frame.loc[~valid[name], name]
                raise ConditionError(_bad_condition(col, bad.iloc[0]) + (
                    f" ({len(bad)} of {len(frame)} rows)" if len(frame) > 1 and len(bad) < len(frame) else ""))
            slots = self.codes[j].slots
            forced[:, j, :slots] = _encode_column(self.codes[j], col, typed[name])[:, :slots]
        return forced, typed

    # ------------------------------------------------------------------ text form / HF tokenizer
    def token_strings(self) -> list[str]:
        names = list(SPECIAL_TOKENS)
        for i, code in enumerate(self.codes):
            names.append(f"[c{i}]")
            names += [f"<c{i}:{k}>" for k in range(code.n_values)]
            if code.has_na:
                names.append(f"<c{i}:na>")
            if code.kind == "binned":
                names += [f"<c{i}.{k}>" for k in range(code.fine_size)]
                names.append(f"<c{i}.na>")
        assert len(names) == self.vocab_size
        return names

    def to_text(self, ids: np.ndarray) -> list[str]:
        """Rows as whitespace-separated token strings (the form `hf_tokenizer` reads)."""
        names = np.array(self.token_strings())
        return [" ".join(row) for row in names[ids]]

    def hf_tokenizer(self):
        """This vocabulary as a transformers ``PreTrainedTokenizerFast`` (for save_pretrained, trl, ...)."""
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit
        from transformers import PreTrainedTokenizerFast

        vocab = {t: i for i, t in enumerate(self.token_strings())}
        core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
        core.pre_tokenizer = WhitespaceSplit()
        return PreTrainedTokenizerFast(
            tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        )

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        payload = {
            "version": 1, "vocab_size": self.vocab_size, "coarse_bins": self.coarse_bins,
            "fine_bins": self.fine_bins, "exact_values": self.exact_values,
            "codes": [asdict(c) for c in self.codes],
        }
        (d / "tabline_tokenizer.json").write_text(json.dumps(payload), encoding="utf-8")
        self.hf_tokenizer().save_pretrained(str(d))

    @classmethod
    def load(cls, directory: str | Path, schema: Schema) -> "TableTokenizer":
        payload = json.loads((Path(directory) / "tabline_tokenizer.json").read_text(encoding="utf-8"))
        codes = [ColumnCode(**c) for c in payload["codes"]]
        for c in codes:
            c.bins = [(k, v) for k, v in c.bins]
        return cls(schema, codes, payload["vocab_size"], payload["coarse_bins"], payload["fine_bins"],
                   payload["exact_values"])


# ---------------------------------------------------------------------- per-column fitting
def _numbers(col: Column, s: pd.Series) -> pd.Series:
    if col.kind == "datetime":
        return _datetime_seconds(_to_datetime(s, col.datetime_format))
    return pd.to_numeric(s, errors="coerce").astype(float)


def _fit_column(col: Column, s: pd.Series, next_id: int, coarse_bins: int, fine_bins: int, exact_values: int):
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
    coarse = _coarse_index(edges, x)
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


def _coarse_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def _encode_column(code: ColumnCode, col: Column, s: pd.Series) -> np.ndarray:
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
    b = _coarse_index(edges, np.nan_to_num(x, nan=edges[0]))
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


def _decode_column(code: ColumnCode, col: Column, toks: np.ndarray, rng: np.random.Generator) -> pd.Series:
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
            x = np.round(x, col.decimals)
        x = np.where(null, np.nan, np.clip(x, col.min, col.max))
    if code.is_datetime:
        t = pd.to_datetime(pd.Series(x), unit="s")
        return pd.Series(t.dt.strftime(col.datetime_format), dtype=object).where(~null, None)
    return pd.Series(x)


def _bad_condition(col: Column, value: object) -> str:
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
