"""Reading user tables with clear errors, and writing outputs atomically.

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

from tabline.errors import InvalidTableError, OutputError, TablineError


def read_table(
    path: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    na_values: list[str] | None = None,
    drop: list[str] | None = None,
) -> pd.DataFrame:
    """Read a CSV file, turning every way it can be unreadable into a `TablineError` that names the file.

    ``na_values`` are extra strings read as missing (e.g. ``["?", "n/a"]``); ``drop`` lists columns to leave out.

    Example:
        >>> read_table("no/such/file.csv")
        Traceback (most recent call last):
        ...
        tabline.errors.TablineError: file not found: no/such/file.csv
    """
    p = Path(path)
    if not p.exists():
        raise TablineError(f"file not found: {path}")
    if p.is_dir():
        raise TablineError(f"{path} is a directory, not a CSV file")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TablineError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise InvalidTableError(f"{path} is empty: expected a header line and at least one row")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TablineError(
            f"{path} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); re-save the file as UTF-8 or pass --encoding latin-1"
        ) from exc
    except LookupError as exc:
        raise TablineError(f"unknown encoding {encoding!r}") from exc
    text = text.lstrip("\ufeff")
    header = next(csv.reader(io.StringIO(text)), [])
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(f"column {name!r} appears more than once in the header")
        seen.add(name)
    if any(not h.strip() for h in header) and len(header) > 1:
        blank = [i + 1 for i, h in enumerate(header) if not h.strip()]
        problems.append(f"header has {len(blank)} unnamed column(s) at position(s) {blank}")
    if problems:
        raise InvalidTableError(problems)
    try:
        df = pd.read_csv(io.StringIO(text), na_values=na_values, keep_default_na=True, low_memory=False)
    except pd.errors.ParserError as exc:
        raise TablineError(f"{path} is not a well-formed CSV file: {exc}") from exc
    if len(df) == 0:
        raise InvalidTableError(f"{path} has a header but no rows")
    if drop:
        unknown = [c for c in drop if c not in df.columns]
        if unknown:
            raise TablineError(f"cannot drop {unknown}: no such column(s); columns are {list(df.columns)}")
        df = df.drop(columns=list(drop))
    return df


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
    """Write ``df`` as CSV to ``path`` via a temporary file and ``os.replace`` (all or nothing)."""
    write_bytes_atomic(df.to_csv(index=False).encode("utf-8"), path)


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
