"""Every task type's reference answer on hand-made tables, worked out by hand (the arithmetic is in the ids
and comments), and every task type's maker on a table rich enough to carry it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabline.dream.programs import Answer, Unanswerable, execute, rename_columns
from tabline.dream.table import DreamTable
from tabline.dream.tasks import FAMILIES, MAKERS, TASK_TYPES, instruction, make_program

# pop: 700 + 2800 + 130 + 90 + 290 = 4010; mean 802; north = Oslo, Bern; south = Rome, Pisa
CITIES = DreamTable.from_frame(pd.DataFrame({
    "city": ["Oslo", "Rome", "Bern", "Pisa", "Graz"],
    "region": ["north", "south", "north", "south", "east"],
    "pop": [700, 2800, 130, 90, 290],
    "area": [450.0, 1285.0, 51.5, 185.0, 127.5],
    "coastal": [True, True, False, True, False],
}), title="Cities")
YEARS = DreamTable.from_frame(pd.DataFrame({"year": [2019, 2020, 2021, 2022], "sales": [3.0, 4.5, 6.0, 9.5],
                                            "staff": [10, 9, 12, 8]}))
NORTH = [{"column": "region", "cmp": "==", "value": "north"}]
SOUTH = [{"column": "region", "cmp": "==", "value": "south"}]

CASES = [
    # numerical reasoning
    pytest.param(CITIES, {"op": "sum", "column": "pop"}, Answer("number", 4010.0), id="sum"),
    pytest.param(CITIES, {"op": "mean", "column": "pop"}, Answer("number", 802.0), id="mean-4010/5"),
    pytest.param(CITIES, {"op": "max", "column": "area"}, Answer("number", 1285.0), id="max"),
    pytest.param(CITIES, {"op": "min", "column": "area"}, Answer("number", 51.5), id="min"),
    pytest.param(CITIES, {"op": "range", "column": "pop"}, Answer("number", 2710.0), id="range-2800-90"),
    pytest.param(CITIES, {"op": "mean", "column": "pop", "where": NORTH}, Answer("number", 415.0),
                 id="mean-where-north-(700+130)/2"),
    pytest.param(CITIES, {"op": "difference", "key": "city", "row": "Oslo", "row_b": "Bern", "column": "pop"},
                 Answer("number", 570.0), id="difference-700-130"),
    pytest.param(CITIES, {"op": "ratio", "key": "city", "row": "Rome", "row_b": "Oslo", "column": "pop"},
                 Answer("number", 4.0), id="ratio-2800/700"),
    pytest.param(CITIES, {"op": "pct_change", "key": "city", "row": "Oslo", "row_b": "Rome", "column": "pop"},
                 Answer("number", 300.0), id="pct-change-(2800-700)/700"),
    pytest.param(CITIES, {"op": "count", "where": NORTH}, Answer("number", 2.0), id="count-if-north"),
    pytest.param(CITIES, {"op": "count", "where": [{"column": "pop", "cmp": ">", "value": 200}]},
                 Answer("number", 3.0), id="count-if-pop>200-Oslo-Rome-Graz"),
    # structure understanding
    pytest.param(CITIES, {"op": "n_rows"}, Answer("number", 5.0), id="rows"),
    pytest.param(CITIES, {"op": "n_columns"}, Answer("number", 5.0), id="columns"),
    pytest.param(CITIES, {"op": "header", "position": 3}, Answer("text", "pop"), id="header-3"),
    pytest.param(CITIES, {"op": "cell", "key": "city", "row": "Rome", "column": "area"}, Answer("number", 1285.0),
                 id="cell"),
    pytest.param(CITIES, {"op": "column_type", "column": "coastal"}, Answer("text", "boolean"), id="type-bool"),
    pytest.param(CITIES, {"op": "column_type", "column": "region"}, Answer("text", "text"), id="type-text"),
    pytest.param(CITIES, {"op": "distinct", "column": "region"}, Answer("number", 3.0), id="distinct-regions"),
    # fact verification
    pytest.param(CITIES, {"op": "claim_cell", "key": "city", "row": "Bern", "column": "region", "value": "north"},
                 Answer("bool", True), id="claim-cell-true"),
    pytest.param(CITIES, {"op": "claim_cell", "key": "city", "row": "Bern", "column": "region", "value": "south"},
                 Answer("bool", False), id="claim-cell-false"),
    pytest.param(CITIES, {"op": "claim_compare", "key": "city", "row": "Oslo", "row_b": "Bern", "column": "pop",
                          "cmp": ">"}, Answer("bool", True), id="claim-compare-700>130"),
    pytest.param(CITIES, {"op": "claim_compare", "key": "city", "row": "Oslo", "row_b": "Bern", "column": "pop",
                          "cmp": "<"}, Answer("bool", False), id="claim-compare-700<130"),
    pytest.param(CITIES, {"op": "claim_total", "agg": "sum", "column": "pop", "value": 4010}, Answer("bool", True),
                 id="claim-total-true"),
    pytest.param(CITIES, {"op": "claim_total", "agg": "mean", "column": "pop", "value": 800}, Answer("bool", False),
                 id="claim-total-false-802"),
    # question answering
    pytest.param(CITIES, {"op": "argmax", "key": "city", "column": "pop"}, Answer("text", "Rome"), id="argmax"),
    pytest.param(CITIES, {"op": "argmin", "key": "city", "column": "area"}, Answer("text", "Bern"), id="argmin"),
    pytest.param(CITIES, {"op": "argmax", "key": "city", "column": "area", "where": [{"column": "coastal", "cmp": "==",
                 "value": "False"}]}, Answer("text", "Graz"), id="argmax-where-not-coastal-127.5>51.5"),
    pytest.param(CITIES, {"op": "lookup", "match": "city", "value": "Pisa", "column": "region"},
                 Answer("text", "south"), id="lookup"),
    # data analysis
    pytest.param(CITIES, {"op": "corr_sign", "column": "pop", "column_b": "area"}, Answer("text", "positive"),
                 id="correlation-sign"),
    pytest.param(CITIES, {"op": "top_k", "key": "city", "column": "pop", "k": 2, "order": "desc"},
                 Answer("list", ["Rome", "Oslo"]), id="top-2"),
    pytest.param(CITIES, {"op": "group_argmax", "group": "region", "column": "pop", "agg": "mean"},
                 Answer("text", "south"), id="group-argmax-south-1445"),
    pytest.param(YEARS, {"op": "trend", "column": "sales"}, Answer("text", "increasing"), id="trend-up"),
    pytest.param(YEARS, {"op": "trend", "column": "staff"}, Answer("text", "neither"), id="trend-neither"),
    # composites made by complication
    pytest.param(CITIES, {"op": "compare", "cmp": ">", "left": {"op": "mean", "column": "pop", "where": NORTH},
                          "right": {"op": "mean", "column": "pop", "where": SOUTH}}, Answer("bool", False),
                 id="compare-415>1445"),
    pytest.param(CITIES, {"op": "arith", "fn": "-", "left": {"op": "sum", "column": "pop"},
                          "right": {"op": "sum", "column": "pop", "where": SOUTH}}, Answer("number", 1120.0),
                 id="arith-4010-2890"),
]


@pytest.mark.parametrize("table, program, expected", CASES)
def test_reference_answer_worked_out_by_hand(table, program, expected):
    assert execute(program, table.data) == expected


def test_yearly_correlation_is_negative_by_hand():
    # Setup: sales - mean(5.75) = -2.75 -1.25 .25 3.75; staff - mean(9.75) = .25 -.75 2.25 -1.75;
    # sums of squares 23.25 and 8.75
    # Run: covariance numerator = -.6875 + .9375 + .5625 - 6.5625 = -5.75
    # Assert: r = -5.75 / sqrt(23.25 * 8.75) = -0.40, strong enough to have a sign
    assert execute({"op": "corr_sign", "column": "sales", "column_b": "staff"}, YEARS.data).value == "negative"


@pytest.mark.parametrize("program, reason", [
    pytest.param({"op": "argmax", "key": "city", "column": "coastal"}, "not numeric", id="argmax-of-text"),
    pytest.param({"op": "top_k", "key": "city", "column": "pop", "k": 5}, "top 5", id="top-k-all-rows"),
    pytest.param({"op": "cell", "key": "city", "row": "Paris", "column": "pop"}, "0 rows", id="no-such-row"),
    pytest.param({"op": "mean", "column": "pop", "where": [{"column": "region", "cmp": "==", "value": "west"}]},
                 "no row", id="empty-filter"),
    pytest.param({"op": "sum", "column": "height"}, "no column 'height'", id="missing-column"),
    pytest.param({"op": "header", "position": 9}, "no column 9", id="header-out-of-range"),
    pytest.param({"op": "frobnicate"}, "unknown operation", id="unknown-op"),
])
def test_unanswerable_programs_say_why(program, reason):
    with pytest.raises(Unanswerable, match=reason):
        execute(program, CITIES.data)


def test_ties_have_no_single_answer():
    tied = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b", "c"], "v": [5, 5, 1]}))
    with pytest.raises(Unanswerable, match="2 rows tie"):
        execute({"op": "argmax", "key": "k", "column": "v"}, tied.data)


def test_there_are_at_least_20_task_types_in_five_families():
    assert len(TASK_TYPES) >= 20
    assert set(FAMILIES) == {"numerical reasoning", "structure understanding", "fact verification",
                             "question answering", "data analysis"}
    assert set(TASK_TYPES) == set(MAKERS)


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_every_maker_builds_an_executable_program_on_a_rich_table(task_type):
    # Setup: a table with a key, two categories with repeats, three numeric columns, a monotone one
    rng = np.random.default_rng(3)
    n = 12
    table = DreamTable.from_frame(pd.DataFrame({
        "name": [f"n{i}" for i in range(n)], "group": ["a", "b", "c"] * 4, "size": ["S", "L"] * 6,
        "x": np.arange(n) * 1.5 + 1, "y": np.arange(n) ** 2 + 3.0, "z": (np.arange(n) * 7) % 5 + 0.5}))
    answered = 0
    for _ in range(5):
        try:
            program = make_program(task_type, table, rng)
            answer = execute(program, table.data)
        except Unanswerable:
            continue
        answered += 1
        text = instruction(program, table, 0)
        # Assert: the instruction names the program's column, and is a question or an order
        if "column" in program and program["op"] != "column_type":
            assert program["column"] in text
        assert answer.kind in ("number", "text", "bool", "list")
    assert answered >= 1


def test_claims_are_true_and_false_by_construction():
    rng = np.random.default_rng(0)
    verdicts = {execute(make_program(t, CITIES, rng), CITIES.data).value
                for t in ("claim_cell", "claim_total") for _ in range(20)}
    assert verdicts == {True, False}


def test_rename_follows_every_column_reference():
    program = {"op": "compare", "cmp": ">", "left": {"op": "mean", "column": "pop", "where": NORTH},
               "right": {"op": "argmax", "key": "city", "column": "pop"}}
    renamed = rename_columns(program, {"pop": "population", "region": "zone", "city": "town"})
    assert renamed["left"] == {"op": "mean", "column": "population",
                               "where": [{"column": "zone", "cmp": "==", "value": "north"}]}
    assert renamed["right"]["key"] == "town" and renamed["right"]["column"] == "population"
    assert program["left"]["column"] == "pop"  # the original is left alone
