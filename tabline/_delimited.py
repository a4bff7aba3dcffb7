"""Delimited text (CSV, semicolon, tab, pipe) split into records with the csv module before pandas sees it.

pandas guesses quietly: a row with extra fields becomes an index, a semicolon file becomes one column, a
decimal comma becomes text. Here every record is split first, so a wrong field count is an error that names
the line, and pandas only converts a clean, rewritten comma-separated text into typed columns.

Example:
    >>> text = 'a;b\\n1,5;"x;y"\\n2;z\\n'
    >>> sniff_delimiter(text)
    ';'
    >>> frame = read_delimited(text, "t.csv", notes=[])
    >>> frame.header, frame.rows
    (['a', 'b'], [['1.5', 'x;y'], ['2', 'z']])
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from itertools import islice

from tabline.errors import InvalidArgumentError, InvalidTableError

DELIMITERS = (",", ";", "\t", "|")  # in order of preference when two fit equally well
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_RECORDS = 200
_SHOWN_LINES = 10  # line numbers listed in an error about bad lines
# What pandas reads as missing by default; a decimal-comma column may hold these besides its numbers.
NA_TEXT = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
            "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
_COMMA_DECIMAL = re.compile(r"^[-+]?\d*,\d+([eE][-+]?\d+)?$")
_INTEGER = re.compile(r"^[-+]?\d+$")


@dataclass
class Records:
    """A delimited file split into fields: the header, the data rows (all as long as the header) and, per
    row, its position among all data rows of the file (rows left out leave gaps)."""

    header: list[str]
    rows: list[list[str]]
    positions: list[int] = field(default_factory=list)


def _blank(record: list[str]) -> bool:
    # An empty line, or one of spaces. A line holding "" is a row of one empty field: that is how a missing
    # value is written in a table of one column, where an empty line would be skipped.
    return not record or (len(record) == 1 and record[0] != "" and not record[0].strip())


def sniff_delimiter(text: str) -> str:
    """The delimiter among comma, semicolon, tab and pipe that splits the header into more than one field and
    agrees with it (or with it plus a leading row name) on the most of the first records; comma on ties.

    Example:
        >>> sniff_delimiter("a|b|c\\n1|2|3\\n"), sniff_delimiter("one column\\n1\\n")
        ('|', ',')
    """
    return sniff(text)[0]


def sniff(text: str) -> tuple[str, dict[str, int]]:
    """The delimiter `sniff_delimiter` picks, and the others that split the file just as consistently
    (delimiter -> fields per line): a file that reads two ways, which the user should hear of.

    Example:
        >>> sniff("a;b, c\\n1;2, 3\\n")
        (',', {';': 2})
    """
    scores: dict[str, tuple[int, int]] = {}
    for delim in DELIMITERS:
        try:  # strict: a delimiter under which the quoting breaks is not the file's
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
            records = [r for r in islice(reader, _SNIFF_RECORDS) if not _blank(r)]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        # R's write.table writes one field more per row than in its header (the row names)
        scores[delim] = (max(sum(len(r) == width for r in records[1:]), sum(len(r) == width + 1 for r in records[1:])),
                         width)
    if not scores:
        return ",", {}
    best = max(scores, key=lambda d: scores[d][0])  # the first of equals: DELIMITERS is in order of preference
    score = scores[best][0]
    return best, {d: w for d, (sc, w) in scores.items() if d != best and sc == score}


def check_delimiter(sep: str) -> str:
    """``sep`` as one character (``"tab"`` and ``"\\t"`` mean a tab); `InvalidArgumentError` otherwise."""
    sep = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}.get(sep, sep)
    if len(sep) != 1 or sep in "\"\r\n":
        raise InvalidArgumentError(f"--sep must be one character other than a quote or a newline (or 'tab'), got {sep!r}")
    return sep


def read_delimited(
    text: str, label: str, *, notes: list[str], sep: str | None = None, on_bad_lines: str = "error",
    na_values: list[str] | None = None,
) -> Records:
    """Split ``text`` into records; errors and notes name ``label`` (the file) and line numbers."""
    if on_bad_lines not in ("error", "skip"):
        raise InvalidArgumentError(f"--on-bad-lines must be 'error' or 'skip', got {on_bad_lines!r}")
    delim, rivals = (check_delimiter(sep), {}) if sep is not None else sniff(text)
    if sep is None and delim != ",":
        notes.append(f"fields are separated by {DELIMITER_NAMES[delim]}s (detected; --sep chooses another)")
    for other, fields in rivals.items():  # read one way, but it reads another way just as well: say so
        notes.append(f"every line also splits into {fields} fields at {DELIMITER_NAMES[other]}s; read with "
                     f"{DELIMITER_NAMES[delim]}s — if that is wrong, pass --sep '{other}'")
    header, lines, rows, blank = _split(text, label, delim)
    if blank and len(header) == 1:
        notes.append(f"skipped {_count(blank, 'empty line')}: in a table of one column an empty line may mean a "
                     'missing value (write it as "" to keep it as one)')
    width, how = len(header), f"fields split at {DELIMITER_NAMES.get(delim, repr(delim))}s"
    bad = [(line, len(r)) for line, r in zip(lines, rows) if len(r) != width]
    positions = list(range(len(rows)))
    if bad and width >= 2 and len(bad) == len(rows) and all(n == width + 1 for _, n in bad) \
            and len({r[0] for r in rows}) == len(rows):  # R's row names are unique
        header = [""] + header
        notes.append("every row has one field more than the header (R's write.table row names): the first "
                     "field is read as an unnamed first column")
    elif bad and on_bad_lines == "skip":
        keep = [i for i, r in enumerate(rows) if len(r) == width]
        rows, positions = [rows[i] for i in keep], keep
        notes.append(f"left out {_count(len(bad), 'line')} whose field count differs from the header's {width} "
                     f"({'line' if len(bad) == 1 else 'lines'} {_lines(bad)}; {how})")
    elif bad:
        line, n = bad[0]
        more = f" (and {_count(len(bad) - 1, 'more such line')}: {_lines(bad[1:])})" if len(bad) > 1 else ""
        raise InvalidTableError(
            f"{label} line {line} has {_count(n, 'field')} but the header has {width}{more}; {how} — fix those lines, "
            "choose the delimiter with --sep, or leave them out with --on-bad-lines skip"
        )
    if delim != ",":
        _decimal_commas(header, rows, set(na_values or ()), notes)
    return Records(header, rows, positions)


def _split(text: str, label: str, delim: str) -> tuple[list[str], list[int], list[list[str]], int]:
    # strict: a quote left open or text after a closing quote is an error, not a field that swallows lines
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
    header: list[str] | None = None
    lines: list[int] = []
    rows: list[list[str]] = []
    start, blank = 1, 0
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if _blank(record):
                blank += header is not None
                continue
            if header is None:
                header = record
            else:
                lines.append(line)
                rows.append(record)
    except csv.Error as exc:
        raise InvalidTableError(f"{label} line {start} is not valid CSV: {_quote_problem(str(exc))}") from None
    return header or [], lines, rows, blank


def _quote_problem(message: str) -> str:
    if "unexpected end of data" in message:
        return "a quoted field opened there is never closed"
    if "expected after" in message:
        return (f"text follows a closing quote ({message}); quote the whole field and double the quotes inside "
                'it ("like ""this""")')
    return message


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _lines(bad: list[tuple[int, int]]) -> str:
    shown = ", ".join(str(line) for line, _ in bad[:_SHOWN_LINES])
    return shown + (", ..." if len(bad) > _SHOWN_LINES else "")


def _decimal_commas(header: list[str], rows: list[list[str]], na_values: set[str], notes: list[str]) -> None:
    """Rewrite, in place, columns whose every value is a number with a decimal comma (``1,5``) as ``1.5``."""
    missing = NA_TEXT | na_values
    converted = []
    for j, name in enumerate(header):
        values = [r[j].strip() for r in rows if r[j].strip() not in missing]
        if values and all(_COMMA_DECIMAL.match(v) or _INTEGER.match(v) for v in values) and any("," in v for v in values):
            for r in rows:
                if _COMMA_DECIMAL.match(r[j].strip()):
                    r[j] = r[j].strip().replace(",", ".")
            converted.append(repr(name) if name.strip() else f"column {j + 1}")
    if converted:
        notes.append(f"{', '.join(converted)} use(s) decimal commas (1,5 = 1.5): read as numbers")


def rewritten(records: Records, names: list[str]) -> str:
    """The records as plain comma-separated text under ``names`` (what pandas then reads)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(names)
    writer.writerows(records.rows)
    return buffer.getvalue()
