"""Reading a page of `tabline view` as Chromium dumped it: its tables, its drawn figures, its console."""
from __future__ import annotations

import html
import re


def table_cells(page: str, cls: str) -> tuple[list[str], list[list[str]]]:
    """(headings, rows of cell texts) of the table with class ``cls``."""
    def text(cell: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()

    found = re.search(rf'<table class="{cls}">(.*?)</table>', page, re.S).group(1)
    head = [text(c) for c in re.findall(r"<th>(.*?)</th>", found, re.S)]
    rows = [[text(c) for c in re.findall(r"<td>(.*?)</td>", r, re.S)] for r in re.findall(r"<tr>(.*?)</tr>", found, re.S)[1:]]
    return head, rows


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def console(stderr: str) -> list[str]:
    """What the page wrote to the browser console (errors and uncaught exceptions included)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def drawn_figures(dom: str, section_id: str) -> int:
    part = re.search(rf'<section id="{section_id}">(.*?)</section>', dom, re.S).group(1)
    return part.count("js-plotly-plot")
