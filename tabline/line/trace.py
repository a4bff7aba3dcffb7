"""Summaries of a run's ``trace.jsonl``: per node and per arm.

Example:
    >>> import json, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "trace.jsonl")
    >>> events = [{"node": "sanity", "agent": "sanity", "arm": "all", "batch_id": 1, "rows_in": 10, "rows_out": 8,
    ...            "seconds": 0.5, "rejected": {"sanity": {"copy": 2}}}]
    >>> _ = open(path, "w").write("\\n".join(json.dumps(e) for e in events) + "\\n")
    >>> nodes, arms = summarise(path)
    >>> nodes[["node", "runs", "rows_in", "rows_out", "rejected"]].values.tolist()
    [['sanity', 1, 10, 8, 2]]
"""
from __future__ import annotations

import pandas as pd

from tabline.errors import TablineError
from tabline.run_folder import read_trace


def _rejected(cell) -> int:
    return sum(sum(k.values()) for k in cell.values()) if isinstance(cell, dict) else 0


def summarise(path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-node table, per-arm table). Node: runs, seconds, rows in/out, rejected rows. Arm: batches,
    rows generated, accepted, yield, mean reward (from the bandit node's events)."""
    ev = read_trace(path)
    if ev.empty:
        raise TablineError(f"the trace at {path} has no events yet")
    ev["rejected_rows"] = ev.get("rejected", pd.Series([{}] * len(ev))).map(_rejected)
    nodes = ev.groupby(["node", "agent"], sort=False).agg(
        runs=("node", "size"), seconds=("seconds", "sum"), rows_in=("rows_in", "sum"),
        rows_out=("rows_out", "sum"), rejected=("rejected_rows", "sum")).reset_index()
    nodes["seconds"] = nodes["seconds"].astype(float).round(3)
    for c in ("rows_in", "rows_out"):
        nodes[c] = nodes[c].fillna(0).astype(int)
    bandit = ev[ev.node == "bandit"].copy()
    if bandit.empty:
        return nodes, pd.DataFrame(columns=["arm", "batches"])
    bandit["reward"] = bandit["detail"].map(lambda d: d.get("reward") if isinstance(d, dict) else None)
    arms = bandit.groupby("arm").agg(batches=("batch_id", "nunique"), generated=("rows_in", "sum"),
                                     accepted=("rows_out", "sum"), mean_reward=("reward", "mean")).reset_index()
    arms[["generated", "accepted"]] = arms[["generated", "accepted"]].fillna(0).astype(int)
    arms["yield"] = (arms.accepted / arms.generated.clip(lower=1)).round(3)
    arms["mean_reward"] = arms["mean_reward"].astype(float).round(4)
    return nodes, arms
