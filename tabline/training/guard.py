"""Guards against memorisation: copies of training rows in `TabularLM.sample`, and overfitting in `fit`.

Real tables repeat rows: a fresh real row sometimes equals a training row (Computers: 1.3 % of holdout rows
do). So the guard does not ban copies, it keeps them at that **natural rate**, measured at fit time as the
share of held validation rows equal to a training row. Sampled rows that copy a training row are kept
with the probability that brings their share down to the natural rate (`keep_probability`) and the
others are drawn again: rejection sampling, so the rows that are not copies keep the model's
distribution. ``copies="reject"`` keeps none, ``copies="allow"`` turns the guard off.

During training the same test runs on a few sampled rows after every epoch, together with the DCR share
(is a sampled row nearer to a training row than to a held one?). `overfit_signal` says when both epochs of
the last two show memorisation the sampler cannot undo (rows nearer to training rows than to held ones,
or a fifth of them copies): the fit then stops improving its best weights and anneals from them.

Example:
    >>> round(keep_probability(copy_share=0.12, natural_rate=0.013), 3)  # Computers' rates
    0.097
    >>> keep_probability(copy_share=0.01, natural_rate=0.013)  # fewer copies than real data: keep all
    1.0
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tabline.rowkeys import row_keys
from tabline.schema import Schema

Copies = Literal["natural", "reject", "allow"]
DCR_LIMIT = 0.65  # DCR share of real unseen rows is ~0.5; with 256 rows 0.65 is ~4 standard errors above it
# Copies beyond the natural rate that stop training. Loose on purpose: `sample` already redraws surplus copies,
# and a tighter limit (3 standard errors, at least 2 points) stopped Computers while its validation loss was
# still falling, at a measured cost in every fidelity score (benchmarks/RESULTS.md, issue 12 ablation).
COPY_EXCESS_LIMIT = 0.20
_DCR_ROWS = 1_000  # training rows kept (in memory only) as the DCR reference


def keep_probability(copy_share: float, natural_rate: float) -> float:
    """Probability of keeping a sampled copy so copies make up ``natural_rate`` of the rows kept.

    With c the share of copies among raw samples and h the natural rate, keeping copies with probability q
    gives qc / (qc + 1 - c) copies among kept rows; q = h(1 - c) / (c(1 - h)) makes that h.
    """
    if copy_share <= natural_rate or copy_share <= 0:
        return 1.0
    if natural_rate <= 0:
        return 0.0
    return natural_rate * (1 - copy_share) / (copy_share * (1 - natural_rate))


@dataclass
class CopyGuard:
    """Keys of a table's rows (`tabline.rowkeys.row_keys`) and its natural copy rate."""

    keys: np.ndarray | None  # sorted unique uint64 row keys of every row the model was fitted on
    natural_rate: float | None
    schema: Schema | None = None
    dcr_reference: pd.DataFrame | None = field(default=None, repr=False)  # a sample of training rows (fit only)

    @classmethod
    def empty(cls) -> "CopyGuard":
        """No guard (a model saved before guards existed)."""
        return cls(None, None)

    @classmethod
    def fit(cls, df: pd.DataFrame, schema: Schema, *, held: np.ndarray) -> "CopyGuard":
        """Keys of ``df``'s rows; the natural rate from the ``held`` row positions against the others."""
        keys = _keys(df, schema)
        is_held = np.zeros(len(df), dtype=bool)
        is_held[held] = True
        natural = float(np.isin(keys[is_held], keys[~is_held]).mean()) if is_held.any() else 0.0
        train_rows = np.flatnonzero(~is_held)
        pick = np.random.default_rng(0).permutation(train_rows)[: min(len(train_rows), max(int(is_held.sum()), 1),
                                                                      _DCR_ROWS)]
        return cls(np.unique(keys), natural, schema, df.iloc[np.sort(pick)])

    @property
    def active(self) -> bool:
        return self.keys is not None and self.natural_rate is not None and self.schema is not None

    def copies(self, rows: pd.DataFrame) -> np.ndarray:
        """Bool per row of ``rows``: equal to a row the model was fitted on."""
        assert self.keys is not None and self.schema is not None
        return np.isin(_keys(rows, self.schema), self.keys)

    def watch(self, rows: pd.DataFrame, held: pd.DataFrame) -> dict[str, Any]:
        """The overfit guard's numbers for sampled ``rows``: copy rate, and DCR share against ``held`` rows."""
        from tabline.eval.features import distance_features, model_columns  # heavy: only fits watch
        from tabline.eval.privacy import dcr_share

        out: dict[str, Any] = {"copy_rate": float(self.copies(rows).mean()), "guard_rows": len(rows)}
        assert self.schema is not None and self.dcr_reference is not None
        columns = model_columns(self.schema)
        reference = held.iloc[: len(self.dcr_reference)]
        if columns and len(reference):
            q, t, h = distance_features([rows, self.dcr_reference.iloc[: len(reference)], reference], columns,
                                        self.dcr_reference)
            out["dcr_share"] = dcr_share(q, train_ref=t, holdout_ref=h)
        return out

    def save(self, directory) -> dict[str, Any]:
        """Write the keys next to a saved model; returns what `tabline.json` records."""
        if self.keys is None:
            return {}
        np.save(f"{directory}/copy_keys.npy", self.keys)
        return {"natural_rate": self.natural_rate, "keys_file": "copy_keys.npy"}

    @classmethod
    def load(cls, directory, meta: dict[str, Any] | None, schema: Schema) -> "CopyGuard":
        if not meta:
            return cls.empty()
        return cls(np.load(f"{directory}/{meta['keys_file']}"), float(meta["natural_rate"]), schema)


def overfit_signal(history: list[dict[str, Any]], natural_rate: float | None) -> bool:
    """True when the last two watched epochs' sampled rows both copy training rows `COPY_EXCESS_LIMIT` above the
    natural rate, or both sit nearer to training rows than to held ones (DCR share above `DCR_LIMIT`).

    Example:
        >>> h = [{"copy_rate": 0.30, "guard_rows": 256, "dcr_share": 0.52}] * 2
        >>> overfit_signal(h, natural_rate=0.013), overfit_signal(h, natural_rate=0.2)
        (True, False)
    """
    last = [e for e in history if "copy_rate" in e][-2:]  # the last two epochs that were watched
    if len(last) < 2 or natural_rate is None:
        return False

    def copies_too_many(e: dict[str, Any]) -> bool:
        return e["copy_rate"] - natural_rate > COPY_EXCESS_LIMIT

    def too_near(e: dict[str, Any]) -> bool:
        return e.get("dcr_share") is not None and e["dcr_share"] > DCR_LIMIT

    return all(copies_too_many(e) for e in last) or all(too_near(e) for e in last)


@dataclass
class SampleReport:
    """What the copy guard did in the last `TabularLM.sample` call (also ``lm.last_sample``)."""

    rows: int
    mode: Copies
    copies_drawn: int = 0  # sampled rows that equalled a training row, redraws included
    copies_rejected: int = 0  # of those, drawn again
    copies_kept: int = 0  # in the returned rows
    rounds: int = 0  # redraw rounds
    natural_rate: float | None = None

    def summary(self) -> str:
        """One line for a CLI.

        Example:
            >>> SampleReport(100, "natural", 9, 8, 1, 2, 0.01).summary()
            'copy guard: 8 copies of training rows drawn again; 1 kept (1.0%, natural rate 1.0%)'
        """
        if self.mode == "allow" or self.natural_rate is None:
            return "copy guard: off"
        return (f"copy guard: {self.copies_rejected} copies of training rows drawn again; {self.copies_kept} kept "
                f"({self.copies_kept / max(self.rows, 1):.1%}, natural rate {self.natural_rate:.1%})")


def _keys(df: pd.DataFrame, schema: Schema) -> np.ndarray:
    return row_keys(schema.coerce(df[schema.names]), schema)
