"""A `DreamTable` drawn as Markdown, HTML, JSON or CSV — and parsed back, so a round trip gives the same values.

Hierarchical tables keep their two header levels: HTML with a ``colspan`` row above the column names, CSV
with two header lines, JSON with ``[group, column]`` pairs, Markdown (one header line by nature) with
``group / column`` headers. Horizontal tables are drawn transposed (`DreamTable.display`). HTML is parsed
with the standard library's `html.parser` (neither lxml nor html5lib is a dependency).

Example:
    >>> import pandas as pd
    >>> from tabline.dream.table import DreamTable
    >>> t = DreamTable.from_frame(pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3.5, 14.0]}))
    >>> print(render(t, "markdown"))
    | city | temp |
    | --- | --- |
    | Oslo | 3.5 |
    | Rome | 14.0 |
    >>> parse(render(t, "html"), "html", kind="flat").data.equals(t.data)
    True
"""
from __future__ import annotations

import csv
import html
import io
import json
from html.parser import HTMLParser

import pandas as pd

from tabline.dream.table import DreamTable, cell_text
from tabline.errors import InvalidTableError

FORMATS: tuple[str, ...] = ("markdown", "html", "json", "csv")
_SEP = " / "  # a hierarchical Markdown header: "group / column"


def _header_rows(table: DreamTable) -> tuple[list[str] | None, list[str], list[list[str]]]:
    """(upper header or None, column header, body) of the drawn table, all as text."""
    shown = table.display()
    body = [[cell_text(v) for v in row] for row in shown.itertuples(index=False, name=None)]
    if isinstance(shown.columns, pd.MultiIndex):
        return [str(a) for a, _ in shown.columns], [str(b) for _, b in shown.columns], body
    return None, [str(c) for c in shown.columns], body


# ---------------------------------------------------------------------- render
def render(table: DreamTable, fmt: str) -> str:
    """``table`` drawn in format ``fmt`` (one of `FORMATS`)."""
    if fmt not in FORMATS:
        raise InvalidTableError(f"table format {fmt!r} is not one of {list(FORMATS)}")
    top, header, body = _header_rows(table)
    return {"markdown": _markdown, "html": _html, "json": _json, "csv": _csv}[fmt](top, header, body)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _markdown(top, header, body) -> str:
    if top is not None:
        header = [f"{a}{_SEP}{b}" if a else b for a, b in zip(top, header)]
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _html(top, header, body) -> str:
    out = ["<table>", "<thead>"]
    if top is not None:
        cells, k = [], 0
        while k < len(top):
            span = 1
            while k + span < len(top) and top[k + span] == top[k]:
                span += 1
            attr = f' colspan="{span}"' if span > 1 else ""
            cells.append(f"<th{attr}>{html.escape(top[k])}</th>")
            k += span
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
    out += ["</thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body]
    out += ["</tbody>", "</table>"]
    return "\n".join(out)


def _json(top, header, body) -> str:
    columns = [[a, b] for a, b in zip(top, header)] if top is not None else header
    return json.dumps({"columns": columns, "rows": body}, ensure_ascii=False)


def _csv(top, header, body) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if top is not None:
        writer.writerow(top)
    writer.writerow(header)
    writer.writerows(body)
    return buf.getvalue().rstrip("\n")


# ---------------------------------------------------------------------- parse
def parse(text: str, fmt: str, *, kind: str, title: str = "") -> DreamTable:
    """The table drawn in ``text`` (format ``fmt``, table kind ``kind``) — the inverse of `render`."""
    if fmt not in FORMATS:
        raise InvalidTableError(f"table format {fmt!r} is not one of {list(FORMATS)}")
    top, header, body = {"markdown": _parse_markdown, "html": _parse_html, "json": _parse_json,
                         "csv": _parse_csv}[fmt](text, kind == "hierarchical")
    if any(len(row) != len(header) for row in body):
        raise InvalidTableError(f"the {fmt} table has rows of {sorted({len(r) for r in body})} cells under "
                                f"{len(header)} headers")
    columns = pd.MultiIndex.from_arrays([top, header]) if top is not None else header
    frame = pd.DataFrame(body, columns=columns, dtype=object) if body else pd.DataFrame(columns=columns)
    return DreamTable.from_display(frame, kind=kind, title=title)


def _split_md_row(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    cells, cur, k = [], [], 0
    while k < len(inner):
        ch = inner[k]
        if ch == "\\" and k + 1 < len(inner):
            cur.append(inner[k + 1])
            k += 2
            continue
        if ch == "|":
            cells.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        k += 1
    if "".join(cur).strip():
        cells.append("".join(cur).strip())
    return cells


def _parse_markdown(text: str, hierarchical: bool):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if len(lines) < 2:
        raise InvalidTableError("the Markdown table has no header and separator lines")
    header = _split_md_row(lines[0])
    body = [_split_md_row(ln) for ln in lines[2:]]
    if not hierarchical:
        return None, header, body
    pairs = [h.split(_SEP, 1) if _SEP in h else ["", h] for h in header]
    return [a for a, _ in pairs], [b for _, b in pairs], body


class _TableReader(HTMLParser):
    """Rows of <th>/<td> cells, a colspan repeated into each column it spans."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[bool, list[str]]] = []  # (row is a header row, cells)
        self._cell: list[str] | None = None
        self._span = 1
        self._header = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append((False, []))
        elif tag in ("td", "th"):
            self._cell, self._header = [], tag == "th"
            self._span = int(dict(attrs).get("colspan") or 1)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            is_head, cells = self.rows[-1]
            cells.extend([" ".join("".join(self._cell).split())] * self._span)
            self.rows[-1] = (is_head or self._header, cells)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse_html(text: str, hierarchical: bool):
    reader = _TableReader()
    reader.feed(text)
    heads = [cells for is_head, cells in reader.rows if is_head]
    body = [cells for is_head, cells in reader.rows if not is_head]
    if not heads:
        raise InvalidTableError("the HTML table has no header row (<th> cells)")
    if hierarchical and len(heads) >= 2:
        return heads[0], heads[1], body
    return None, heads[-1], body


def _parse_json(text: str, hierarchical: bool):
    try:
        obj = json.loads(text)
        columns, rows = obj["columns"], obj["rows"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidTableError(f"the JSON table is not {{'columns': [...], 'rows': [[...]]}}: {exc}") from None
    body = [["" if v is None else str(v) for v in row] for row in rows]
    if hierarchical and columns and isinstance(columns[0], list):
        return [str(a) for a, _ in columns], [str(b) for _, b in columns], body
    return None, [str(c) for c in columns], body


def _parse_csv(text: str, hierarchical: bool):
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InvalidTableError("the CSV table is empty")
    if hierarchical:
        return rows[0], rows[1], rows[2:]
    return None, rows[0], rows[1:]


__all__ = ["FORMATS", "parse", "render"]
