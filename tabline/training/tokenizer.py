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
- text / identifier / constant columns are not modelled: text is resampled from its observed values,
  identifiers are generated fresh, a constant is copied into every row (see `ExternalColumns`).

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
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tabline.errors import ConditionError, InvalidTableError
from tabline.schema import Schema

UNMODELLED_KINDS = ("text", "id", "constant")  # filled by `ExternalColumns`, not generated token by token
from tabline.training.codec import (  # noqa: F401 - PAD..SPECIAL_TOKENS are re-exported
    BOS, EOS, PAD, SPECIAL_TOKENS, UNK, ColumnCode, bad_condition, decode_column, encode_column, fit_column,
)


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
            if col.kind in UNMODELLED_KINDS:
                continue
            code, next_id = fit_column(col, typed[col.name], next_id, coarse_bins, fine_bins, exact_values)
            codes.append(code)
        return cls(schema, codes, next_id, coarse_bins, fine_bins, exact_values)

    @property
    def modelled(self) -> list[str]:
        """Names of the columns the language model generates (text, id and constant columns are not among them)."""
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
            out[:, j, :] = encode_column(code, self.schema.column(code.name), typed[code.name])
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

    def decode_values(self, values: np.ndarray, rng: np.random.Generator,
                      only: list[str] | None = None) -> pd.DataFrame:
        cols = {}
        for j, code in enumerate(self.codes):
            if only is not None and code.name not in only:
                continue
            cols[code.name] = decode_column(code, self.schema.column(code.name), values[:, j, :], rng)
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
            if self.schema.column(name).kind == "constant":
                continue  # every row holds the constant anyway; a different value is refused below
            if name not in self.modelled:
                kind = self.schema.column(name).kind
                raise ConditionError(f"column {name!r} holds {kind} values, which cannot be a condition")
        typed = self.schema.coerce(frame)
        valid = self.schema.check(frame.reindex(columns=self.schema.names))
        for name in frame.columns:
            col = self.schema.column(name)
            if not valid[name].all():
                bad = frame.loc[~valid[name], name]
                raise ConditionError(bad_condition(col, bad.iloc[0]) + (
                    f" ({len(bad)} of {len(frame)} rows)" if len(frame) > 1 and len(bad) < len(frame) else ""))
            if col.kind == "constant":
                continue
            j = self.modelled.index(name)
            slots = self.codes[j].slots
            forced[:, j, :slots] = encode_column(self.codes[j], col, typed[name])[:, :slots]
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
