"""Evolution agents: move a batch's generation conditions toward what the accepted rows under-cover.

Each evolver looks at the turn (the arm's real rows, what has been accepted so far) and either proposes a
conditions table — one row per row to make, the same columns in every row — or passes (a `Proposal`
without conditions; the `Evolver` protocol of `tabline.agents.roles`). The coordinator asks them in order;
the first proposal wins, otherwise the arm's anchors are used.

- `Rebalancer` (complication, minority classes) — while class ``value`` of ``column`` holds less than
  ``ratio`` of the accepted rows, a batch of the missing rows (at least 32) is conditioned on that class.
- `Complicator` (complication, rare combinations and tails) — on ``share`` of the batches, draws the
  arm's real rows with weight 1 / (how many real rows share their combination of ``columns``, numbers
  cut into deciles) and conditions on those values: rare cells and tails come up as often as common ones.
- `Generaliser` — on ``share`` of the batches, conditions on combinations of ``columns`` drawn value by
  value from the arm's marginals, preferring combinations the real table does not have (valid, unseen).

Example:
    >>> import numpy as np, pandas as pd
    >>> real = pd.DataFrame({"smoker": ["no"] * 90 + ["yes"] * 10})
    >>> reb = Rebalancer(real, column="smoker", value=None, ratio=0.5)
    >>> turn = Turn(batch_id=0, rows=4, arm_rows=real, counts={"smoker": {"no": 30, "yes": 2}}, accepted=32)
    >>> reb.propose(turn).conditions["smoker"].tolist()  # (0.5 · 32 − 2) / 0.5 = 28 rows wanted, batch holds 4
    ['yes', 'yes', 'yes', 'yes']
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tabline.agents.roles import Proposal
from tabline.errors import InvalidArgumentError


@dataclass
class Turn:
    """What an evolver may look at when the coordinator asks it for conditions."""

    batch_id: int
    rows: int
    arm_rows: pd.DataFrame
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # accepted rows per class, by column
    accepted: int = 0
    seed: int = 0

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.batch_id, 7])


def combination_keys(df: pd.DataFrame, columns: list[str], reference: pd.DataFrame) -> pd.Series:
    """A string key per row over ``columns``; numbers are cut at ``reference``'s deciles."""
    parts = []
    for c in columns:
        s = df[c]
        if pd.api.types.is_numeric_dtype(reference[c]) and reference[c].dtype != bool and reference[c].nunique() > 10:
            edges = np.unique(np.nanquantile(reference[c].to_numpy(float), np.linspace(0, 1, 11)))
            s = pd.Series(np.searchsorted(edges[1:-1], s.to_numpy(float), side="right"), index=df.index)
        parts.append(s.astype(str).where(df[c].notna(), "<NA>"))
    return pd.concat(parts, axis=1).agg("\x1f".join, axis=1) if parts else pd.Series("", index=df.index)


class Rebalancer:
    name = "rebalance"
    watches: list[str]  # its column: the line counts the accepted rows per class for it

    def __init__(self, real: pd.DataFrame, *, column: str, value, ratio: float):
        if column not in real.columns:
            raise InvalidArgumentError(f"rebalance: no column {column!r}")
        classes = real[column].dropna()
        if value is None:
            value = classes.value_counts().idxmin()
        elif not (classes.astype(str) == str(value)).any():
            raise InvalidArgumentError(f"rebalance: column {column!r} has no rows with class {value!r}")
        else:
            value = classes[classes.astype(str) == str(value)].iloc[0]  # the table's own type
        self.column, self.value, self.ratio = column, value, ratio
        self.key = str(value)
        self.watches = [column]

    def propose(self, turn: Turn) -> Proposal:
        have = turn.counts.get(self.column, {}).get(self.key, 0)
        # k more rows of the class bring it to the ratio: have + k = ratio · (accepted + k)
        k = math.ceil((self.ratio * turn.accepted - have) / (1.0 - self.ratio))
        if k <= 0:
            return Proposal()
        return Proposal(pd.DataFrame({self.column: [self.value] * min(turn.rows, max(32, k))}))


class Complicator:
    name = "complicate"
    watches: list[str] = []

    def __init__(self, real: pd.DataFrame, *, columns: list[str], share: float):
        if not columns:
            raise InvalidArgumentError("complicate: needs at least one column")
        self.columns, self.share, self.real = list(columns), share, real
        keys = combination_keys(real, self.columns, real)
        self.frequency = keys.map(keys.value_counts())  # real rows sharing each row's combination

    def propose(self, turn: Turn) -> Proposal:
        rng = turn.rng
        if rng.random() >= self.share:
            return Proposal()
        weights = 1.0 / self.frequency.reindex(turn.arm_rows.index).fillna(1.0).to_numpy()
        pick = rng.choice(len(turn.arm_rows), size=turn.rows, p=weights / weights.sum())
        return Proposal(turn.arm_rows[self.columns].iloc[pick].reset_index(drop=True))


class Generaliser:
    name = "generalise"
    watches: list[str] = []

    def __init__(self, real: pd.DataFrame, *, columns: list[str], share: float, tries: int = 5):
        if len(columns) < 2:
            raise InvalidArgumentError(f"generalise: needs at least two columns to combine, got {columns}")
        self.columns, self.share, self.tries, self.real = list(columns), share, tries, real
        self.seen = set(combination_keys(real, self.columns, real))

    def propose(self, turn: Turn) -> Proposal:
        rng = turn.rng
        if rng.random() >= self.share:
            return Proposal()
        source = turn.arm_rows[self.columns].reset_index(drop=True)
        out = pd.DataFrame({c: source[c].iloc[rng.integers(0, len(source), turn.rows)].to_numpy()
                            for c in self.columns})
        for _ in range(self.tries):  # redraw rows whose combination the real table already has
            seen = combination_keys(out, self.columns, self.real).isin(self.seen).to_numpy()
            if not seen.any():
                break
            for c in self.columns:
                out.loc[seen, c] = source[c].iloc[rng.integers(0, len(source), int(seen.sum()))].to_numpy()
        return Proposal(out)
