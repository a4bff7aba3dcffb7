"""Measurements shared by the speed benchmark (speed.py) and the issue-12 fidelity benchmark (fidelity12.py).

The CPU's matmul rate and the share of it a fit uses; values a synthetic table invents; whether the value sets
of low-cardinality numeric columns match; C2ST against the holdout; the machine's load. Runs in the runner's
process (tabline's environment), never in a peer's venv.

    >>> from benchmarks.measures import flop_share
    >>> round(flop_share(params=1_000_000, tokens_per_s=10_000, gflops=120.0, flops_per_param_token=6), 3)
    0.5
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Any

import pandas as pd

# Forward + backward of a decoder is ~6 FLOPs per (non-embedding) parameter and token; a forward alone ~2.
TRAIN_FLOPS_PER_PARAM_TOKEN = 6
SAMPLE_FLOPS_PER_PARAM_TOKEN = 2
# The shape of a training step's largest matmuls at tabline's sizes: (batch × tokens) × width @ width × 4·width.
_MATMUL_SHAPE = (4096, 128, 512)


# ------------------------------------------------------------------ hardware
def matmul_gflops(threads: int | None = None, dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> dict[str, float]:
    """Median GFLOP/s of (4096 × 128) @ (128 × 512) products in each of ``dtypes``, with ``threads`` torch
    threads (default: torch's own count, i.e. every core)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    m, k, n = _MATMUL_SHAPE
    out = {}
    for name in dtypes:
        dt = getattr(torch, name)
        a, b = torch.randn(m, k, dtype=dt), torch.randn(k, n, dtype=dt)
        for _ in range(5):  # warm-up: first calls pay for allocation and kernel selection
            a @ b
        rates = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(20):
                a @ b
            rates.append(2 * m * k * n * 20 / (time.perf_counter() - t) / 1e9)
        out[name] = round(statistics.median(rates), 1)
    out["threads"] = torch.get_num_threads()
    return out


def flop_share(params: float, tokens_per_s: float, gflops: float, flops_per_param_token: float) -> float:
    """Share of the measured matmul rate that ``tokens_per_s`` through ``params`` non-embedding parameters uses."""
    return flops_per_param_token * params * tokens_per_s / (gflops * 1e9)


def training_tokens_per_s(extra: dict[str, Any], n_train: int, fit_s: float, val_fraction: float = 0.1) -> float | None:
    """Training tokens/s of one tabline fit: the fit log's own figure when it has one, else estimated as
    row length × training rows × epochs ÷ fit seconds (the estimate counts preprocessing as training time, so
    it is a lower bound)."""
    log = extra.get("training_log") or {}
    if log.get("tokens_per_s"):
        return float(log["tokens_per_s"])
    if not (extra.get("row_length") and log.get("epochs") and fit_s):
        return None
    return extra["row_length"] * n_train * (1 - val_fraction) * log["epochs"] / fit_s


# ------------------------------------------------------------------ values
def invented_values(train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame,
                    max_distinct: int = 50) -> dict[str, Any]:
    """Cells of low-cardinality columns (at most ``max_distinct`` distinct values in train) holding a value that
    neither train nor holdout holds, as a share and a count of those cells; and the columns where that happens.

    The three tables must have the same dtypes (read through the same spec), so str() compares like with like.

        >>> t = pd.DataFrame({"a": ["x", "y"]}); s = pd.DataFrame({"a": ["x", "z"]})
        >>> invented_values(t, t, s)["invented_cells"]
        1
    """
    cells = bad = 0
    columns = []
    for c in train.columns:
        if train[c].nunique(dropna=True) > max_distinct:
            continue
        known = set(train[c].dropna().astype(str)) | set(holdout[c].dropna().astype(str))
        values = synth[c].dropna().astype(str)
        n_bad = int((~values.isin(known)).sum())
        cells, bad = cells + len(values), bad + n_bad
        if n_bad:
            columns.append(c)
    return {"invented_value_share": bad / cells if cells else None, "invented_cells": bad,
            "columns_with_invented_values": columns, "invented_max_distinct": max_distinct}


def lowcard_numeric_sets(train: pd.DataFrame, synth: pd.DataFrame, max_distinct: int = 20,
                         show: int = 5) -> dict[str, Any]:
    """For each numeric (non-boolean) column with at most ``max_distinct`` distinct values in train: does the
    synthetic table hold exactly train's set of values? Mismatches name up to ``show`` missing and extra values.

        >>> t = pd.DataFrame({"n": [1, 2, 3]}); s = pd.DataFrame({"n": [1, 2, 4]})
        >>> lowcard_numeric_sets(t, s)["mismatches"]
        {'n': {'missing': [3.0], 'extra': [4.0]}}
    """
    checked, mismatches = [], {}
    for c in train.columns:
        col = train[c]
        if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            continue
        if col.nunique(dropna=True) > max_distinct:
            continue
        checked.append(c)
        # floats, so that an int column and its float-typed synthetic copy compare equal
        real = set(col.dropna().astype(float))
        syn = set(pd.to_numeric(synth[c], errors="coerce").dropna().astype(float))
        if real != syn:
            mismatches[c] = {"missing": sorted(real - syn)[:show], "extra": sorted(syn - real)[:show]}
    return {"lowcard_max_distinct": max_distinct, "lowcard_columns": checked,
            "lowcard_sets_match": not mismatches, "mismatches": mismatches}


# ------------------------------------------------------------------ detection
def c2st_vs_holdout(train: pd.DataFrame, holdout: pd.DataFrame, synth: pd.DataFrame) -> dict[str, float | None]:
    """C2ST AUC of holdout vs synthetic rows, and of holdout vs train rows as its ceiling (tabline.eval's detector).

    Against train a generator that copies rows looks perfect; against the holdout, rows it never saw, it
    does not, so both are reported."""
    from tabline.eval.detection import detection
    from tabline.schema import Schema

    schema = Schema.infer(train)
    typed = [schema.coerce(t[schema.names]) for t in (holdout, synth, train)]
    res = detection(*typed, schema, seed=0, max_rows=10_000)
    return {"c2st_vs_holdout": res.synthetic.auc if res else None,
            "c2st_vs_holdout_ceiling": res.ceiling.auc if res else None}


# ------------------------------------------------------------------ load
def machine_load() -> dict[str, Any]:
    """The load on the machine right now: 1/5/15-minute load averages and how many cores other processes keep
    busy (tabline.threads.others_busy, measured over one second)."""
    out: dict[str, Any] = {"loadavg": [round(x, 2) for x in os.getloadavg()]}
    try:
        from tabline.threads import others_busy

        busy = others_busy(window_s=1.0)
        out["others_busy_cores"] = None if busy is None else round(busy, 2)
    except Exception as exc:  # an older tabline without the helper: say so rather than fail the run
        out["others_busy_cores"] = None
        out["others_busy_error"] = f"{type(exc).__name__}: {exc}"
    return out
