"""Rendering and parsing back: hand-written tables in each format, and the property that every format of
every table kind parses back to the same values."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from pandas.testing import assert_frame_equal

from strategies import dream_tables
from tabline.dream.formats import FORMATS, parse, render
from tabline.dream.table import DreamTable
from tabline.errors import InvalidTableError


@settings(max_examples=60, deadline=None)
@given(table=dream_tables())
def test_every_format_parses_back_to_the_same_values(table):
    for fmt in FORMATS:
        back = parse(render(table, fmt), fmt, kind=table.kind)
        assert_frame_equal(back.data, table.data, check_dtype=True, obj=f"{fmt} {table.kind}")
        assert back.key == table.key
        if table.kind == "hierarchical":
            assert back.groups == table.groups


def test_hierarchical_html_has_a_spanning_upper_header():
    # Setup: two numeric columns under one group, the key under another
    table = DreamTable.from_frame(pd.DataFrame({"shop": ["a"], "rev": [1], "cost": [2]}), kind="hierarchical",
                                  groups={"shop": "Who", "rev": "Money", "cost": "Money"})
    html = render(table, "html")
    # Assert: "Money" spans its two columns, then the column names in a second header row
    assert '<tr><th>Who</th><th colspan="2">Money</th></tr>' in html
    assert "<tr><th>shop</th><th>rev</th><th>cost</th></tr>" in html
    assert render(table, "csv").splitlines()[:2] == ["Who,Money,Money", "shop,rev,cost"]


def test_horizontal_table_puts_attributes_in_rows():
    table = DreamTable.from_frame(pd.DataFrame({"city": ["Oslo", "Rome"], "pop": [7, 28], "sea": ["y", "n"]}),
                                  kind="horizontal")
    assert render(table, "markdown").splitlines() == ["| city | Oslo | Rome |", "| --- | --- | --- |",
                                                     "| pop | 7 | 28 |", "| sea | y | n |"]


@pytest.mark.parametrize("text, fmt, cells", [
    pytest.param("| a | b |\n|---|---|\n| x \\| y | 2 |\n| z |  |", "markdown", [["x | y", 2.0], ["z", None]],
                 id="markdown-escaped-pipe-and-empty-cell"),
    pytest.param("<table><tr><th>a</th><th>b</th></tr><tr><td>x &amp; y</td><td> 2 </td></tr></table>", "html",
                 [["x & y", 2]], id="html-without-thead"),
    pytest.param('a,b\n"x, y",3', "csv", [["x, y", 3]], id="csv-quoted-comma"),
    pytest.param('{"columns": ["a", "b"], "rows": [["x", null]]}', "json", [["x", None]], id="json-null"),
])
def test_hand_written_tables_parse(text, fmt, cells):
    data = parse(text, fmt, kind="flat").data
    got = [[None if isinstance(v, float) and v != v else v for v in row] for row in data.values.tolist()]
    assert got == cells


@pytest.mark.parametrize("text, fmt, message", [
    pytest.param("| a | b |\n|---|---|\n| 1 |", "markdown", "rows of", id="ragged-markdown"),
    pytest.param("<p>no table</p>", "html", "no header row", id="html-without-table"),
    pytest.param("[1, 2]", "json", "not {'columns'", id="json-wrong-shape"),
])
def test_malformed_tables_give_a_clear_error(text, fmt, message):
    with pytest.raises(InvalidTableError, match=message):
        parse(text, fmt, kind="flat")


def test_unknown_format_is_named():
    with pytest.raises(InvalidTableError, match="'latex' is not one of"):
        render(DreamTable.from_frame(pd.DataFrame({"a": [1]})), "latex")
