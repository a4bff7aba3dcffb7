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
import errno
import io
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import yaml

from tabline.errors import OutputError, TablineError
from tabline.tables import read_table  # noqa: F401 - tabline.io.read_table is the name callers know


def write_error(exc: BaseException, path: str | os.PathLike, action: str = "write") -> OutputError:
    """An `OutputError` naming ``path`` and, in plain words, why the machine refused the write.

    Example:
        >>> import errno
        >>> str(write_error(OSError(errno.ENOSPC, "No space left on device"), "runs/x/data.csv"))
        'cannot write runs/x/data.csv: the disk is full (or a file-size limit was reached)'
    """
    code = getattr(exc, "errno", None)
    if code is None:  # safetensors (Rust) reports an OS error only in its message: "... (os error 28)"
        match = re.search(r"os error (\d+)", str(exc))
        code = int(match.group(1)) if match else None
    why = {errno.ENOSPC: "the disk is full (or a file-size limit was reached)",
           errno.EDQUOT: "the disk quota is used up", errno.EFBIG: "the disk is full (or a file-size limit was reached)",
           errno.EACCES: "permission denied", errno.EPERM: "permission denied",
           errno.EROFS: "the file system is read-only",
           errno.ENOTDIR: "a part of the path is a file, not a folder",
           errno.ENOENT: "its folder does not exist (was it moved or deleted?)"}.get(code)
    return OutputError(f"cannot {action} {path}: {why or getattr(exc, 'strerror', None) or exc}")


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn the machine refusing a write inside the block (full disk, no permission, a folder gone) into
    an `OutputError` naming ``path`` — a clear one-line error instead of a traceback."""
    try:
        yield
    except TablineError:
        raise
    except OSError as exc:
        raise write_error(exc, path) from exc
    except Exception as exc:
        if type(exc).__name__ == "SafetensorError" and "os error" in str(exc):
            raise write_error(exc, path) from exc
        raise


def _tmp_sibling(dest: Path, suffix: str = ".tmp", *, directory: bool = False) -> Path:
    """A fresh hidden sibling of ``dest``. Unlike `tempfile`'s 0600/0700, it gets the user's usual
    permissions (umask), so what is moved into place is as readable as any file the user writes."""
    with writing(dest):
        dest.parent.mkdir(parents=True, exist_ok=True)
        while True:
            tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}{suffix}"
            try:
                if directory:
                    os.mkdir(tmp, 0o777)
                else:
                    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                return tmp
            except FileExistsError:
                continue


def write_bytes_atomic(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` via a flushed temporary sibling and ``os.replace`` (all or nothing)."""
    dest = Path(path)
    tmp = _tmp_sibling(dest)
    try:
        with writing(dest):
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as CSV to ``path`` via a temporary file and ``os.replace`` (all or nothing).

    Every field is quoted when a name or value holds a carriage return (the csv module quotes only the line
    terminator's ``\n``, and a bare ``\r`` ends a line for every reader), or when a column name holds a
    semicolon, tab or pipe: the header is what decides a reader's delimiter, ours included.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "one.csv")
        >>> write_csv_atomic(pd.DataFrame({"a": [1.5, None, 2.0]}), path)
        >>> read_table(path)["a"].tolist()
        [1.5, nan, 2.0]
    """
    text = df.to_csv(index=False, quoting=csv.QUOTE_ALL if _quote_all(df) else csv.QUOTE_MINIMAL)
    write_bytes_atomic(text.encode("utf-8"), path)


def _quote_all(df: pd.DataFrame) -> bool:
    if any(ch in str(c) for c in df.columns for ch in "\r;\t|"):
        return True
    return any(df[c].map(lambda v: isinstance(v, str) and "\r" in v).any() for c in df.columns if df[c].dtype == object)


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as Parquet. An object column whose values are of several Python types (Parquet needs one per
    column; an LLM's answers in a rejected row, say) is stored as text, missing values kept.

    Example:
        >>> mixed = pd.DataFrame({"a": [1, "x", None]}, dtype=object)
        >>> pd.read_parquet(io.BytesIO(parquet_bytes(mixed)))["a"].tolist()
        ['1', 'x', None]
    """
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    for name in out.columns:
        s = out[name]
        if s.dtype == object and s.dropna().map(type).nunique() > 1:
            out[name] = s.map(str, na_action="ignore")
    buffer = io.BytesIO()
    try:
        out.to_parquet(buffer, index=False)
    except ImportError as exc:
        raise TablineError(f"writing Parquet needs pyarrow: pip install pyarrow ({exc})") from exc
    except (ValueError, TypeError) as exc:  # pyarrow's ArrowInvalid / ArrowTypeError derive from these
        raise TablineError(f"cannot write the table as Parquet: {exc}; write CSV instead") from exc
    return buffer.getvalue()


def through_parquet(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` after a Parquet round trip: what a resumed run will read back from its folder, so a run
    and its resumed self compute on identical values.

    Example:
        >>> through_parquet(pd.DataFrame({"a": [1, "x"]}, dtype=object))["a"].tolist()
        ['1', 'x']
    """
    return pd.read_parquet(io.BytesIO(parquet_bytes(frame)))


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``df`` as Parquet to ``path`` via a temporary file and ``os.replace`` (all or nothing).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
        >>> write_parquet_atomic(pd.DataFrame({"a": [1, None], "b": ["x", 2]}), path)
        >>> pd.read_parquet(path)["b"].tolist()
        ['x', '2']
    """
    write_bytes_atomic(parquet_bytes(df), path)


def write_text_atomic(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    write_bytes_atomic(text.encode("utf-8"), path)


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
    tmp = _tmp_sibling(dest, directory=True)
    try:
        with writing(dest):
            yield tmp
            old = None
            if dest.exists():
                old = _tmp_sibling(dest, ".old", directory=True)
                os.rmdir(old)
                os.replace(dest, old)
            os.replace(tmp, dest)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
