"""Awkward tables give items or a clear skip reason, never a crash."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabline.dream.evolve import DIRECTIONS, evolve
from tabline.dream.formats import FORMATS, parse, render
from tabline.dream.making import TableSpec, seed_items, sub_tables
from tabline.dream.programs import Unanswerable
from tabline.dream.table import DreamTable, Formula
from tabline.errors import InvalidTableError

rng0 = np.random.default_rng


def _wide(n_cols: int = 200) -> pd.DataFrame:
    rng = rng0(0)
    return pd.DataFrame({f"c{k}": rng.integers(0, 100, 6) for k in range(n_cols)})


BAD = [
    pytest.param(pd.DataFrame({"a": ["x", None, "z", "x"], "b": [1.0, np.nan, 3.0, 4.0], "c": [None] * 4}),
                 id="missing-values"),
    pytest.param(pd.DataFrame([["p", 1, 2], ["q", 3, 4]], columns=["k", "v", "v"]), id="duplicate-headers"),
    pytest.param(pd.DataFrame({2019: [1, 2, 3], 2020: [4, 5, 7], "1.5": ["a", "b", "c"]}), id="numeric-headers"),
    pytest.param(pd.DataFrame({"name": ["only"], "v": [3]}), id="one-row"),
    pytest.param(_wide(), id="200-columns"),
    pytest.param(pd.DataFrame({"t": ["a", "b", "c"], "u": ["x", "y", "z"]}), id="no-numbers"),
]


@pytest.mark.parametrize("frame", BAD)
def test_bad_tables_give_items_or_reasons(frame):
    # Run: sub-tables, seeds of every type, one evolution in each direction
    rng = rng0(1)
    tables = sub_tables(frame, 2, TableSpec(rows=(1, 6), columns=(1, 6)), rng, source="bad")
    result = seed_items(tables, 40, rng)
    # Assert: every seed type was either made or skipped with a reason
    assert result.items or result.skipped
    assert all(s["reason"] for s in result.skipped)
    for item in result.items[:8]:
        for direction in DIRECTIONS:
            try:
                child = evolve(item, direction, rng)
            except Unanswerable as exc:
                assert str(exc)
                continue
            for fmt in FORMATS:  # every rendering of the child parses back
                parse(render(child.table, fmt), fmt, kind=child.table.kind)


def test_one_row_skips_pairwise_tasks_with_a_reason():
    rng = rng0(0)
    tables = sub_tables(pd.DataFrame({"name": ["only"], "v": [3]}), 1, TableSpec(), rng, source="one")
    result = seed_items(tables, 25, rng)
    reasons = {s["task_type"]: s["reason"] for s in result.skipped}
    assert reasons["difference"] == "the table has one row"
    assert "trend" in reasons and "top_k" in reasons
    assert {"row_count", "sum"} <= {i.task_type for i in result.items}


def test_duplicate_and_numeric_headers_become_distinct_text():
    table = DreamTable.from_frame(pd.DataFrame([[1, 2, 3]], columns=["v", "v", 2019]))
    assert list(table.data.columns) == ["v", "v (2)", "2019"]
    assert "header 'v' is duplicated" in table.notes[0]


def test_wide_table_subsets_stay_in_range():
    tables = sub_tables(_wide(), 5, TableSpec(columns=(3, 6)), rng0(0), source="wide")
    assert all(4 <= len(t.data.columns) <= 7 for t in tables)  # the made-up key column, plus 3..6 (+1 formula)


@pytest.mark.parametrize("frame, message", [
    pytest.param(pd.DataFrame({"a": []}), "has no rows", id="no-rows"),
    pytest.param(pd.DataFrame(index=[0, 1]), "has no columns", id="no-columns"),
])
def test_empty_tables_are_refused_by_name(frame, message):
    with pytest.raises(InvalidTableError, match=message):
        sub_tables(frame, 1, TableSpec(), rng0(0), source="empty.csv")


@pytest.mark.parametrize("formula, message", [
    pytest.param("profit revenue - cost", "must read 'target = expression'", id="no-equals"),
    pytest.param("p = revenue - __import__('os')", "may use only", id="code-injection"),
    pytest.param("p = revenue -", "not arithmetic", id="syntax"),
])
def test_bad_formulas_are_refused(formula, message):
    with pytest.raises(InvalidTableError, match=message):
        Formula.parse(formula, ["revenue", "cost"])


def test_a_horizontal_table_needs_a_key():
    with pytest.raises(InvalidTableError, match="horizontal table needs a key"):
        DreamTable.from_frame(pd.DataFrame({"v": [1, 1]}), kind="horizontal")
