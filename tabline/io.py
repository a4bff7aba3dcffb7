"""Writing outputs atomically (and `read_table`, which lives in `tabline.tables`, for old imports).

A crash (or SIGKILL) while writing never leaves a half-written file or model directory: everything is
written next to its destination first and moved into place with one ``os.replace``.

Example:
    >>> import pandas as pd, tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> write_csv_atomic(pd.DataFrame({"a": [1, 2]}), os.path.join(d, "t.csv"))
    >>> read_table(os.path.join(d, "t.csv"))["a"].tolist()
    [1, 2]
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import yaml

from tabline.errors import TablineError
from tabline.tables import read_table  # noqa: F401 - tabline.io.read_table is the name callers know


def _tmp_sibling(dest: Path, suffix: str = "") -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix + ".tmp", dir=dest.parent)
    os.close(fd)
    return Path(tmp)


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as CSV to ``path`` via a temporary file and ``os.replace`` (all or nothing).

    Every field is quoted when a name or value holds a carriage return: the csv module quotes only the line
    terminator's ``\n``, and a bare ``\r`` ends a line for every reader.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "one.csv")
        >>> write_csv_atomic(pd.DataFrame({"a": [1.5, None, 2.0]}), path)
        >>> read_table(path)["a"].tolist()
        [1.5, nan, 2.0]
    """
    dest = Path(path)
    tmp = _tmp_sibling(dest)
    try:
        df.to_csv(tmp, index=False, quoting=csv.QUOTE_ALL if _quote_all(df) else csv.QUOTE_MINIMAL)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _quote_all(df: pd.DataFrame) -> bool:
    if any("\r" in str(c) for c in df.columns):
        return True
    return any(df[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in df.columns if df[c].dtype == object)


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet to ``path`` via a temporary file and ``os.replace`` (all or nothing).

    A text column whose values are of several Python types (Parquet needs one per column) is written as text.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
        >>> write_parquet_atomic(pd.DataFrame({"a": [1, None], "b": ["x", 2]}), path)
        >>> pd.read_parquet(path)["b"].tolist()
        ['x', '2']
    """
    dest = Path(path)
    out = df.copy()
    for name in out.columns:
        s = out[name]
        if s.dtype == object and s.dropna().map(type).nunique() > 1:
            out[name] = s.map(str, na_action="ignore")
    tmp = _tmp_sibling(dest)
    try:
        try:
            out.to_parquet(tmp, index=False)
        except ImportError as exc:
            raise TablineError(f"writing {dest} needs pyarrow: pip install pyarrow ({exc})") from exc
        except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError derive from these
            raise TablineError(f"cannot write {dest} as Parquet: {exc}; write CSV instead") from exc
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    dest = Path(path)
    tmp = _tmp_sibling(dest)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_pickle_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Pickle ``obj`` to ``path`` atomically (for files tabline writes and reads back itself)."""
    dest = Path(path)
    tmp = _tmp_sibling(dest)
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def read_settings_file(path: str | os.PathLike, what: str, error: type[Exception]) -> Any:
    """Parse a YAML (or JSON) settings file; ``error`` names the file and what went wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"cannot read {what} file {p}: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise error(f"{what} file {p} does not parse: {exc}") from None


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``path`` only if the block finishes without error.

    An existing directory at ``path`` is kept until the new one is complete, then swapped out.

    Example:
        >>> import tempfile, os
        >>> root = tempfile.mkdtemp()
        >>> with atomic_directory(os.path.join(root, "model")) as tmp:
        ...     _ = (tmp / "weights.bin").write_bytes(b"x")
        >>> sorted(os.listdir(os.path.join(root, "model")))
        ['weights.bin']
    """
    dest = Path(path)
    if dest.exists() and not dest.is_dir():
        raise TablineError(f"{dest} exists and is not a directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        old = None
        if dest.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".old", dir=dest.parent))
            os.rmdir(old)
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
