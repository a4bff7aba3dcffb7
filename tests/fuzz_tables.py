"""Hypothesis strategies for messy tables: the files users really have, and some they should not.

A table is drawn column by column (numbers with extremes, categories, booleans, dates, free text, ids,
constants, all-missing), then written as delimited text with a random delimiter, quoting, line ending and
decimal mark, sometimes with R row names, blank lines, duplicate rows, a ragged line, a BOM or a NUL.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from hypothesis import strategies as st

# Characters that break naive readers: every delimiter, quotes, line breaks and other controls. NUL is kept
# for a damage of its own (in every cell it would turn most files into the same one error).
_NASTY = list(',;\t|"\'\r\n\x1b\x7f ') + ["é", "中", "🙂", "\u2028", "\ufeff"]
CELL_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00") | st.sampled_from(_NASTY),
                    max_size=10)
EXTREME_FLOATS = [1e308, -1e308, 1.7976931348623157e308, 5e-324, -1e-308, 1e-12, 0.0, -0.0, 123456789.123456789]
HUGE_INTS = [2**63 - 1, -(2**63), 2**63, 10**25, -(10**19), 2**53 + 1]
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y"]
KINDS = ["int", "float", "extreme", "huge-int", "category", "boolean", "date", "text", "id", "constant"] * 2 + ["empty"]


@dataclass
class RawTable:
    """Header and rows of strings (``None`` = missing), before they are written as a file."""

    header: list[str]
    rows: list[list[str | None]]


def _number_text(x: float, style: int) -> str:
    if style == 0:
        return repr(x)
    if style == 1:
        return f"{x:.3f}"
    return f"{x:.6e}"


@st.composite
def column_values(draw, n: int) -> list[str | None]:
    """``n`` cells of one column, as text."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "int":
        lo = draw(st.integers(-10**6, 10**6))
        values = [str(v) for v in draw(st.lists(st.integers(lo, lo + draw(st.integers(1, 10**4))), min_size=n, max_size=n))]
    elif kind == "float":
        style = draw(st.integers(0, 2))
        floats = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
        values = [_number_text(v, style) for v in draw(st.lists(floats, min_size=n, max_size=n))]
    elif kind == "extreme":
        pool = st.sampled_from(EXTREME_FLOATS) | st.floats(allow_nan=False, allow_infinity=draw(st.booleans()))
        values = [repr(v) for v in draw(st.lists(pool, min_size=n, max_size=n))]
    elif kind == "huge-int":
        values = [str(v) for v in draw(st.lists(st.sampled_from(HUGE_INTS) | st.integers(), min_size=n, max_size=n))]
    elif kind == "category":
        pool = draw(st.lists(CELL_TEXT, min_size=1, max_size=5))
        values = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    elif kind == "boolean":
        values = draw(st.lists(st.sampled_from(["true", "false", "TRUE", "False"]), min_size=n, max_size=n))
    elif kind == "date":
        fmt = draw(st.sampled_from(DATE_FORMATS))
        values = [d.strftime(fmt) for d in draw(st.lists(st.datetimes(), min_size=n, max_size=n))]
    elif kind == "text":
        values = draw(st.lists(CELL_TEXT, min_size=n, max_size=n, unique=True))
    elif kind == "id":
        values = [f"u{i}" for i in range(n)] if draw(st.booleans()) else [str(i + 1) for i in range(n)]
    elif kind == "constant":
        value = draw(CELL_TEXT | st.sampled_from(["7", "2.5", "true", "kg", "2020-01-31"]))
        values = [value] * n
    else:
        values = [None] * n
    missing = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    if missing:
        holes = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
        values = [None if h < missing else v for v, h in zip(values, holes)]
    return values


@st.composite
def raw_tables(draw, min_rows: int = 0, max_rows: int = 30, max_columns: int = 3) -> RawTable:
    n = draw(st.integers(min_rows, max_rows))
    d = draw(st.integers(1, max_columns))
    plain = draw(st.booleans()) or draw(st.booleans())  # mostly ordinary names; sometimes anything at all
    header = [f"c{j}" if plain else draw(CELL_TEXT) for j in range(d)]
    columns = [draw(column_values(n)) for _ in range(d)]
    rows = [list(r) for r in zip(*columns)] if n else []
    if rows and draw(st.booleans()):  # duplicate rows
        rows += draw(st.lists(st.sampled_from(rows), max_size=5))
    return RawTable(header, rows)


@st.composite
def csv_texts(draw, min_rows: int = 0, max_rows: int = 30, max_columns: int = 3, damage: bool = True) -> str:
    """A table written as delimited text, in one of the ways people write them."""
    table = draw(raw_tables(min_rows, max_rows, max_columns))
    delim = draw(st.sampled_from([",", ";", "\t", "|"]))
    header, rows = list(table.header), [list(r) for r in table.rows]
    if delim == ";" and draw(st.booleans()):  # European decimal commas
        rows = [[v.replace(".", ",") if v and v.replace(".", "", 1).lstrip("-").isdigit() else v for v in r] for r in rows]
    names = draw(st.sampled_from(["none", "write.csv", "write.table"])) if rows else "none"
    if names == "write.csv":
        header = [""] + header
        rows = [[str(i + 1)] + r for i, r in enumerate(rows)]
    elif names == "write.table":
        rows = [[str(i + 1)] + r for i, r in enumerate(rows)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delim, quoting=draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
                        lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow(header)
    writer.writerows([["" if v is None else v for v in r] for r in rows])
    text = buffer.getvalue()
    if damage:
        lines = text.split("\n")
        if len(lines) > 2 and draw(st.integers(0, 9)) == 9:  # one ragged line (the simplest draw, 0, is no damage)
            at = draw(st.integers(1, len(lines) - 2))
            lines[at] += delim + "extra"
        if draw(st.integers(0, 9)) == 9:  # blank lines
            lines.insert(draw(st.integers(1, len(lines))), "")
        text = "\n".join(lines)
        if draw(st.integers(0, 19)) == 19:
            text = "\ufeff" + text
        if draw(st.integers(0, 29)) == 29:
            at = draw(st.integers(0, len(text)))
            text = text[:at] + "\x00" + text[at:]
    return text
