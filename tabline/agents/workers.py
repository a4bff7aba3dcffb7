"""Column workers: each fills its component's columns for a batch of partial rows.

A worker gets the batch (a DataFrame whose columns are the parents' values, one row per row to make) and
returns its own columns, indexed like the batch, as a `Filled` (the `Worker` protocol of
`tabline.agents.roles`). It does not know the graph.

- `LMWorker` — the embedded `TabularLM`, conditioned row by row on the parents' values (the default).
- `SamplerWorker` — resamples its columns jointly from real rows (optionally only rows of the arm).
- `ExpressionWorker` — derived columns computed from others (``total = price * qty``), declared by the
  user or found by `detect_expressions`.
- `LLMWorker` (`tabline.agents.llm.worker`): a prompted chat model, with the same `fill`.

Example:
    >>> import pandas as pd
    >>> real = pd.DataFrame({"price": [2.0, 3.0, 5.0], "qty": [1, 2, 3], "total": [2.0, 6.0, 15.0]})
    >>> detect_expressions(real)
    ['total = price * qty']
    >>> ExpressionWorker(["total = price * qty"]).fill(pd.DataFrame({"price": [4.0], "qty": [2]})).frame["total"].tolist()
    [8.0]
"""
from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

from tabline.agents.roles import FillContext, Filled, Worker
from tabline.errors import InvalidArgumentError, InvalidSchemaError
from tabline.training import TabularLM

_ASSIGN = re.compile(r"^\s*`?([^`=]+?)`?\s*=\s*(.+)$")

ColumnWorker = Worker  # the role's protocol (tabline.agents.roles), under its older name


class LMWorker:
    """Fills its columns with the tabular LM, conditioned per row on every column already in the batch."""

    name = "lm"

    def __init__(self, lm: TabularLM, columns: list[str], *, temperature: float = 1.0):
        self.lm, self.columns, self.temperature = lm, list(columns), temperature

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        parents = [c for c in batch.columns if c in self.lm.tokenizer.modelled]
        wanted = [c for c in self.columns if c not in batch.columns]
        if not wanted:
            return Filled(pd.DataFrame(index=batch.index))
        if not parents and set(wanted) >= set(self.lm.tokenizer.modelled):
            # Whole rows: the LM redraws copies of its training rows itself, where it is cheap, instead of
            # handing them to QC sanity, which would reject every one (the line keeps no copies).
            out = self.lm.sample(len(batch), seed=seed, temperature=self.temperature, copies="reject")
            return Filled(out[wanted].set_axis(batch.index))
        conditions = batch[parents].reset_index(drop=True) if parents else None
        out = self.lm.sample(len(batch), conditions=conditions, seed=seed, temperature=self.temperature,
                             columns=wanted)
        return Filled(out[wanted].set_axis(batch.index))


class SamplerWorker:
    """Draws its columns jointly from real rows (keeps their relations, adds no new combinations)."""

    name = "sampler"

    def __init__(self, real: pd.DataFrame, columns: list[str]):
        missing = [c for c in columns if c not in real.columns]
        if missing:
            raise InvalidArgumentError(f"sampler worker: the real table has no column(s) {missing}")
        self.columns, self.real = list(columns), real[list(columns)].reset_index(drop=True)

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        idx = np.random.default_rng(seed).integers(0, len(self.real), size=len(batch))
        return Filled(self.real.iloc[idx].set_axis(batch.index))


class ExpressionWorker:
    """Computes derived columns from declared expressions ``"name = pandas expression"``, in order."""

    name = "expression"

    def __init__(self, expressions: list[str]):
        self.expressions: list[tuple[str, str]] = []
        problems = []
        for text in expressions:
            match = _ASSIGN.match(text)
            if not match:
                problems.append(f"expression {text!r} must look like 'total = price * qty'")
            else:
                self.expressions.append((match.group(1).strip(), match.group(2).strip()))
        if problems:
            raise InvalidSchemaError("; ".join(problems))
        self.columns = [name for name, _ in self.expressions]

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        frame = batch.copy()
        for name, expr in self.expressions:
            try:
                frame[name] = frame.eval(expr, engine="python")
            except Exception as exc:  # pandas raises many types for a bad expression
                raise InvalidSchemaError(f"expression '{name} = {expr}' cannot be computed: {exc}") from exc
        return Filled(frame[self.columns])


def detect_expressions(df: pd.DataFrame, *, tolerance: float = 1e-6, max_columns: int = 30) -> list[str]:
    """Find numeric columns that equal a sum, difference, product or ratio of two others in every row.

    Each derived column is reported once (the first relation found, trying later columns as the derived
    ones first); derived columns are never inputs of another relation here, so any order evaluates.
    """
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool][:max_columns]
    x = {c: df[c].to_numpy(dtype=float) for c in numeric}
    found: list[str] = []
    derived: set[str] = set()
    ops = [("+", np.add), ("-", np.subtract), ("*", np.multiply), ("/", np.divide)]
    for target in reversed(numeric):  # a derived column usually comes after its inputs: try the last first
        for a, b in itertools.permutations([c for c in numeric if c != target and c not in derived], 2):
            if target in derived or a in derived or b in derived:
                continue
            for symbol, fn in ops:
                if symbol in "+*" and a > b:
                    continue  # commutative: try each pair once
                with np.errstate(all="ignore"):
                    value = fn(x[a], x[b])
                ok = np.isfinite(value) & np.isfinite(x[target])
                scale = np.maximum(1.0, np.abs(x[target]))
                if ok.all() and np.all(np.abs(value - x[target]) <= tolerance * scale) and x[target].std() > 0:
                    found.append(f"{target} = {a} {symbol} {b}")
                    derived.add(target)
                    break
    return found
