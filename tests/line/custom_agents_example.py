"""Agents of one's own, written as a user would: plain functions (and one LangChain runnable) for the
shipped diamonds table. The tests name them in teams as ``custom_agents_example:<name>`` (kind: python).

`FAULT` switches the faulty agents' bugs on and off, as a user would by editing the code: ``kind`` is the
bug, ``after`` how many calls go well first.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from langchain_core.runnables import RunnableLambda

from tabline.agents.custom import evolver, judge, qc_stage, worker


@worker(columns=["z"], depends_on=["x", "y", "depth"])
def z_from_depth(batch):
    """depth (%) is z over the mean of x and y, so z follows from the other three."""
    return (batch.depth / 100 * (batch.x + batch.y) / 2).round(2)


@judge(threshold=0.5)
def round_stone(batch, tolerance=0.04):
    """A round stone's x and y (mm) agree: 1 when equal, 0 once they differ by ``tolerance``."""
    gap = (batch.x - batch.y).abs() / batch[["x", "y"]].max(axis=1)
    return (1 - gap / tolerance).clip(0, 1)


# A LangChain runnable as a station: it gets each row as a dict and answers the column's value
carat_from_volume = worker(RunnableLambda(lambda row: round(0.0061 * row["x"] * row["y"] * row["z"], 2)),
                           columns=["carat"], depends_on=["x", "y", "z"], name="carat_from_volume")


@evolver
def only(turn, column="cut", value="Fair"):
    """Every batch starts from one class of one column."""
    return {column: value}


@qc_stage(name="table_top")
def sensible_table(batch, low=54.0, high=60.0):
    """The table (%) of a well-cut stone lies within [low, high]."""
    inside = batch.table.between(low, high)
    return pd.Series(np.where(inside, "", "table " + batch.table.astype(str) + "% outside the usual range"),
                     index=batch.index)


FAULT: dict = {"kind": None, "after": 0, "calls": 0}


def _fault() -> str | None:
    FAULT["calls"] += 1
    return FAULT["kind"] if FAULT["calls"] > FAULT["after"] else None


@worker(columns=["z"], depends_on=["x", "y", "depth"])
def faulty_z(batch):
    """`z_from_depth` with the bug `FAULT` names."""
    z, kind = z_from_depth(batch), _fault()
    if kind == "raise":
        raise ZeroDivisionError("a bug in the user's code")
    if kind == "short":
        return z.iloc[:-1]
    if kind == "columns":
        return z.to_frame("Z")
    if kind == "bad_values":
        return z.where(batch.x < 6, -1.0)  # a negative size, which the table never has
    return z


@judge(threshold=0.5)
def faulty_judge(batch):
    """Scores 1 — unless `FAULT` says otherwise for the stones of x ≥ 6 mm."""
    kind, big = _fault(), (batch.x >= 6).to_numpy()
    if kind == "nan":
        return pd.Series(np.where(big, np.nan, 1.0), index=batch.index)
    if kind == "outside":
        return pd.Series(np.where(big, 1.7, 1.0), index=batch.index)
    if kind == "text":
        return pd.Series("high", index=batch.index)
    if kind == "short":
        return pd.Series(1.0, index=batch.index[:-1])
    return pd.Series(1.0, index=batch.index)


@evolver
def faulty_evolver(turn):
    kind = _fault()
    if kind == "unknown_column":
        return {"colour": "E"}
    if kind == "bad_values":
        return {"cut": "Perfect"}
    return None


@qc_stage
def faulty_stage(batch):
    kind = _fault()
    if kind == "short":
        return pd.Series("", index=batch.index[:-1])
    return pd.Series("", index=batch.index)
