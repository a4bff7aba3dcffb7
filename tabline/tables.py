"""Reading the user's table — CSV (any common delimiter), Parquet, JSON Lines or Excel — with nothing lost
and nothing misread.

Every way a file can be unreadable is a `TablineError` that names the file (and the line, where there is
one). Whatever the reader decides on the user's behalf (the delimiter, decimal commas, row names left out,
a name given to an unnamed column, lines skipped) comes back as a one-line note: appended to ``notes`` when
the caller passes a list (the CLI prints them), otherwise issued as a `TableNote` warning.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "r.csv")
    >>> _ = open(path, "w").write('"";"x";"y"\\n"1";"1,5";"a"\\n"2";"2,25";"b"\\n')  # R write.csv2
    >>> notes = []
    >>> read_table(path, notes=notes).to_dict("list")
    {'x': [1.5, 2.25], 'y': ['a', 'b']}
    >>> for note in notes: print(note)
    r.csv: fields are separated by semicolons (detected; --sep chooses another)
    r.csv: 'x' use(s) decimal commas (1,5 = 1.5): read as numbers
    r.csv: column 1 has no name and holds the row numbers 1..2 (row names written by R or pandas): left out
"""
from __future__ import annotations

import io
import json
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tabline._delimited import NA_TEXT, read_delimited, rewritten
from tabline.errors import InvalidArgumentError, InvalidTableError, TablineError
from tabline.schema import _blank

# Anything else is read as delimited text, as before there were other formats.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "excel"}
_REFUSED = {".xls": "old Excel (.xls) files are not read: save the sheet as .xlsx or CSV",
            ".json": "a .json file is not read: write one JSON object per line as .jsonl, or save as CSV"}
# A name pandas gives a column without one; a file re-saved by pandas carries it as a real header cell.
_PANDAS_UNNAMED = re.compile(r"^Unnamed: \d+$")


class TableNote(UserWarning):
    """Something the reader decided for the user (issued only when ``read_table`` gets no ``notes`` list)."""


def read_table(
    path: str | os.PathLike,
    *,
    encoding: str = "utf-8",
    na_values: list[str] | None = None,
    drop: list[str] | None = None,
    sep: str | None = None,
    on_bad_lines: str = "error",
    notes: list[str] | None = None,
) -> pd.DataFrame:
    """Read a table file into a DataFrame: CSV (delimiter sniffed among , ; tab |, or ``sep``), Parquet
    (``.parquet``, ``.pq``), JSON Lines (``.jsonl``, ``.ndjson``) or Excel (``.xlsx``, first sheet).

    ``na_values`` are extra strings read as missing (e.g. ``["?", "n/a"]``); ``drop`` lists columns to leave
    out; ``on_bad_lines="skip"`` leaves out CSV lines whose field count differs from the header's instead of
    refusing the file. ``notes`` collects what was detected, renamed or left out, one line each.

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
        raise TablineError(f"{path} is a directory, not a table file")
    suffix = p.suffix.lower()
    if suffix in _REFUSED:
        raise TablineError(f"{path}: {_REFUSED[suffix]}")
    kind = FORMATS.get(suffix, "csv")
    if kind != "csv" and (sep is not None or on_bad_lines != "error"):
        raise InvalidArgumentError(f"--sep and --on-bad-lines apply to delimited text, not to {suffix} files")
    said: list[str] = []
    positions = None
    if kind == "csv":
        df, positions = _read_csv(p, encoding, na_values, sep, on_bad_lines, said)
    elif kind == "parquet":
        df = _read_parquet(p, said)
    elif kind == "jsonl":
        df = _read_jsonl(p, encoding, said)
    else:
        df = _read_excel(p, said)
    if kind != "csv":
        df = _plain_columns(df, str(path), na_values, said)
    df = _finish(df, str(path), positions, drop, said)
    for note in said:
        if notes is None:
            warnings.warn(f"{p.name}: {note}", TableNote, stacklevel=2)
        else:
            notes.append(f"{p.name}: {note}")
    return df


# ---------------------------------------------------------------------- formats
def _read_bytes(p: Path) -> bytes:
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise TablineError(f"cannot read {p}: {exc.strerror or exc}") from exc
    if not raw.strip():
        raise InvalidTableError(f"{p} is empty: expected a header line and at least one row")
    return raw


def _decode(raw: bytes, p: Path, encoding: str) -> str:
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") and encoding.lower().replace("-", "") == "utf8":
        raise TablineError(f"{p} is UTF-16 text (it starts with a UTF-16 byte-order mark): pass --encoding utf-16 "
                           "or re-save the file as UTF-8")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TablineError(
            f"{p} is not valid {encoding}: byte 0x{raw[exc.start]:02x} at line {line} "
            f"(offset {exc.start}); re-save the file as UTF-8 or pass --encoding latin-1"
        ) from exc
    except LookupError as exc:
        raise TablineError(f"unknown encoding {encoding!r}") from exc
    nul = text.find("\x00")
    if nul >= 0:
        # pandas and the csv module disagree on NUL, and a text table never needs one: it means binary data.
        raise TablineError(f"{p} holds a NUL character (\\x00) at line {text.count(chr(10), 0, nul) + 1}: this is "
                           "not a text table (a binary file, or text in another encoding such as UTF-16)")
    return text.lstrip("\ufeff")


def _read_csv(p: Path, encoding: str, na_values, sep, on_bad_lines: str, said: list[str]):
    text = _decode(_read_bytes(p), p, encoding)
    records = read_delimited(text, str(p), notes=said, sep=sep, on_bad_lines=on_bad_lines, na_values=na_values)
    _check_names(records.header, str(p))
    # pandas names empty header cells itself; give them names of ours that cannot collide, restored below.
    placeholders = [h if h.strip() else f"\x00{i}" for i, h in enumerate(records.header)]
    if not records.rows:
        return pd.DataFrame(columns=records.header), []
    try:
        df = pd.read_csv(io.StringIO(rewritten(records, placeholders)), index_col=False, na_values=na_values,
                         keep_default_na=True, low_memory=False)
    except (pd.errors.ParserError, ValueError) as exc:
        raise TablineError(f"{p} is not a well-formed CSV file: {exc}") from exc
    df.columns = records.header
    return df, records.positions


def _read_parquet(p: Path, said: list[str]) -> pd.DataFrame:
    try:
        df = pd.read_parquet(p)
    except ImportError as exc:
        raise TablineError(f"reading {p} needs pyarrow: pip install pyarrow ({exc})") from exc
    except Exception as exc:  # pyarrow raises many types for a damaged or foreign file
        raise TablineError(f"{p} is not a readable Parquet file: {type(exc).__name__}: {exc}") from exc
    if not _default_index(df.index):
        names = [n for n in df.index.names if n is not None]
        said.append(f"the file's index ({', '.join(map(repr, names)) or 'unnamed'}) is read as a column")
        df = df.reset_index()
        if not names:
            df = df.rename(columns={"index": ""})
    return df


def _default_index(index: pd.Index) -> bool:
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None


def _read_jsonl(p: Path, encoding: str, said: list[str]) -> pd.DataFrame:
    text = _decode(_read_bytes(p), p, encoding)
    rows, keys = [], {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except (json.JSONDecodeError, _DuplicateKey) as exc:
            raise InvalidTableError(f"{p} line {number} is not a valid JSON object: {exc}") from None
        if not isinstance(row, dict):
            raise InvalidTableError(f"{p} line {number} is a JSON {type(row).__name__}, not an object "
                                    '({"column": value, ...})')
        rows.append(row)
        for k in row:
            keys[k] = keys.get(k, 0) + 1
    lacking = [f"{k!r} (absent from {len(rows) - n} of {len(rows)})" for k, n in keys.items() if n < len(rows)]
    if lacking:
        said.append("keys some rows lack are read as missing values in those rows: " + ", ".join(lacking))
    return pd.DataFrame.from_records(rows, columns=list(keys)) if rows else pd.DataFrame()


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(f"key {k!r} appears twice")
        out[k] = v
    return out


def _read_excel(p: Path, said: list[str]) -> pd.DataFrame:
    try:
        book = pd.ExcelFile(p, engine="openpyxl")
        sheets = book.sheet_names
        # dtype=object keeps each cell as Excel typed it; the header row is read like any other
        cells = book.parse(sheets[0], header=None, dtype=object, keep_default_na=False)
    except ImportError as exc:
        raise TablineError(f"reading {p} needs openpyxl: pip install openpyxl ({exc})") from exc
    except Exception as exc:  # openpyxl / zipfile raise many types for a damaged or foreign file
        raise TablineError(f"{p} is not a readable .xlsx file: {type(exc).__name__}: {exc}") from exc
    if len(sheets) > 1:
        said.append(f"read the first sheet {sheets[0]!r}; the other {len(sheets) - 1} ({', '.join(map(repr, sheets[1:]))}) "
                    "are not read")
    # rows and columns with no cell at all are formatting, not data
    cells = cells.mask(cells.isna() | (cells == "")).dropna(how="all").dropna(how="all", axis=1)
    if cells.empty:
        raise InvalidTableError(f"{p} is empty: its first sheet has no cells")
    header = ["" if pd.isna(h) else str(h) for h in cells.iloc[0]]
    _check_names(header, str(p))
    body = cells.iloc[1:].reset_index(drop=True)
    body.columns = header
    return body.mask(body.isin(list(NA_TEXT))).infer_objects()  # the text pandas reads as missing in a CSV file


# ---------------------------------------------------------------------- shared checks
def _check_names(header: list[str], label: str) -> None:
    seen, dupes = set(), []
    for name in header:
        if name.strip() and name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise InvalidTableError([f"column {d!r} appears more than once in the header of {label}" for d in dupes])


def _plain_columns(df: pd.DataFrame, label: str, na_values: list[str] | None, said: list[str]) -> pd.DataFrame:
    """Columns of a typed file (Parquet, JSON Lines, Excel) as a CSV reader would give them: names as text,
    ``na_values`` as missing, no nested values, no time zones, no pandas categoricals."""
    df = df.copy()
    df.columns = ["" if c is None else str(c) for c in df.columns]
    _check_names(list(df.columns), label)
    problems = []
    for j in range(df.shape[1]):
        s, name = df.iloc[:, j], df.columns[j] or f"column {j + 1}"
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).infer_objects()
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            said.append(f"column {name!r} holds times in zone {s.dt.tz}: read as UTC times without a zone")
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        if s.dtype == object:
            nested = s.map(lambda v: isinstance(v, (dict, list, tuple, set, bytes, np.ndarray)))
            if nested.any():
                problems.append(f"column {name!r} holds nested or binary values (first: {s[nested].iloc[0]!r}); "
                                "flatten it into plain columns")
                continue
            if na_values:
                s = s.mask(s.isin(na_values))
        df.isetitem(j, s)
    if problems:
        raise InvalidTableError(problems)
    return df


def _finish(df: pd.DataFrame, label: str, positions: list[int] | None, drop: list[str] | None,
            said: list[str]) -> pd.DataFrame:
    """Unnamed columns (row names left out, others named), then the empty-table check, then ``drop``."""
    n = len(df)
    blank = 0
    for j in range(df.shape[1]):
        cells = _blank(df.iloc[:, j])
        if cells.any():
            blank += int(cells.sum())
            df.isetitem(j, df.iloc[:, j].mask(cells))
    if blank:
        said.append(f"{blank} cell(s) holding only spaces are read as missing")
    at = np.asarray(positions if positions is not None else range(n), dtype=float)
    keep, names = [], list(df.columns)
    taken = {c for c in names if not _unnamed(c)}
    for j, name in enumerate(names):
        if not _unnamed(name):
            keep.append(j)
            continue
        s = df.iloc[:, j]
        if s.isna().all():
            said.append(f"column {j + 1} has no name and no values: left out")
            continue
        x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        if n and not np.isnan(x).any() and ((x == at).all() or (x == at + 1).all()):
            first = int(x[0])
            said.append(f"column {j + 1} has no name and holds the row numbers {first}..{int(x[-1])} "
                        "(row names written by R or pandas): left out")
            continue
        new = f"unnamed_{j + 1}"
        while new in taken:
            new += "_"
        taken.add(new)
        names[j] = new
        keep.append(j)
        said.append(f"column {j + 1} has no name: called it {new!r}")
    df = df.set_axis(names, axis=1).iloc[:, keep]
    if n == 0:
        raise InvalidTableError(f"{label} has a header but no rows")
    if df.shape[1] == 0:
        raise InvalidTableError(f"{label} has no columns left to read")
    if drop:
        unknown = [c for c in drop if c not in df.columns]
        if unknown:
            raise TablineError(f"cannot drop {unknown}: no such column(s); columns are {list(df.columns)}")
        df = df.drop(columns=list(drop))
    return df.reset_index(drop=True)


def _unnamed(name: object) -> bool:
    return not str(name).strip() or bool(_PANDAS_UNNAMED.match(str(name)))
