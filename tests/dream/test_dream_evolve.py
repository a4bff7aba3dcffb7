"""Evolution: table generalisation keeps answers true (property tests), the answer is recomputed after every
change, complication adds reasoning steps, instruction generalisation changes the words or the type."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from strategies import dream_tables
from tabline.dream.evolve import (DIRECTIONS, add_condition, compose, convert_format, edit_cell, evolve,
                                  new_task_type, rename_header, rephrase, shuffle_columns, shuffle_rows, transpose)
from tabline.dream.formats import parse, render
from tabline.dream.items import build_item
from tabline.dream.programs import Unanswerable, depth, execute
from tabline.dream.table import DreamTable
from tabline.dream.tasks import TASK_TYPES, make_program

# Task types whose answer does not depend on the order of rows or columns, nor on a header's name.
ORDER_FREE = ("sum", "mean", "max", "min", "range", "difference", "ratio", "percentage_change", "count_if",
              "row_count", "column_count", "cell_lookup", "column_type", "distinct_count", "claim_cell",
              "claim_compare", "claim_total", "argmax", "argmin", "lookup", "correlation_sign", "top_k",
              "group_argmax")
LAYOUT = (shuffle_rows, shuffle_columns, transpose, convert_format, rename_header)


def same(a, b) -> bool:
    """Equal answers; numbers up to float rounding (a shuffle changes the order of a sum's terms)."""
    if a.kind == b.kind == "number":
        return a.value == pytest.approx(b.value, rel=1e-9, abs=1e-9)
    return a == b


def _seed(table: DreamTable, task_type: str, seed: int):
    rng = np.random.default_rng(seed)
    try:
        return build_item(table, "markdown", task_type, make_program(task_type, table, rng), 0)
    except Unanswerable:
        return None


@settings(max_examples=80, deadline=None)
@given(table=dream_tables(), task_type=st.sampled_from(ORDER_FREE), change=st.sampled_from(LAYOUT),
       seed=st.integers(0, 10**6))
def test_layout_changes_keep_the_answer(table, task_type, change, seed):
    item = _seed(table, task_type, seed)
    assume(item is not None)
    try:
        child = change(item, np.random.default_rng(seed))
    except Unanswerable:
        assume(False)
    # Assert: the same answer, and it is also what the program gives on the table as the model reads it
    assert same(child.answer, item.answer)
    read = parse(render(child.table, child.fmt), child.fmt, kind=child.table.kind)
    assert same(execute(child.program, read.data), child.answer)
    assert child.parent == item.id and len(child.steps) == 1


@settings(max_examples=40, deadline=None)
@given(table=dream_tables(kinds=("flat",)), seed=st.integers(0, 10**6))
def test_a_rename_renames_the_program_and_the_instruction(table, seed):
    item = _seed(table, "max", seed)
    assume(item is not None)
    old = item.program["column"]
    child = rename_header(item, np.random.default_rng(seed), column=old)
    new = child.program["column"]
    assert new != old and new in child.table.data.columns and old not in child.table.data.columns
    assert new in child.instruction
    assert same(child.answer, item.answer)


def test_row_order_tasks_follow_the_shuffle():
    # Setup: sales rise down the rows; the shuffle below puts them out of order
    table = DreamTable.from_frame(pd.DataFrame({"year": ["a", "b", "c", "d"], "sales": [1, 2, 3, 4]}))
    item = build_item(table, "csv", "trend", {"op": "trend", "column": "sales"}, 0)
    assert item.answer.value == "increasing"
    rng = np.random.default_rng(0)
    child = shuffle_rows(item, rng)
    values = child.table.data["sales"].tolist()
    expected = ("increasing" if values == [1, 2, 3, 4] else "decreasing" if values == [4, 3, 2, 1] else "neither")
    assert child.answer.value == expected


def test_a_cell_edit_changes_the_answer_by_hand():
    # Setup: the sum of v is 1 + 2 + 3 = 6; an edit scales one v by a factor in [0.5, 1.5]
    table = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b", "c"], "v": [10, 20, 30]}))
    item = build_item(table, "json", "sum", {"op": "sum", "column": "v", "where": []}, 0)
    child = edit_cell(item, np.random.default_rng(5))
    before, after = table.data["v"].tolist(), child.table.data["v"].tolist()
    changed = [k for k in range(3) if before[k] != after[k]]
    # Assert: exactly one cell changed, within the factor, and the answer is the new column sum
    assert len(changed) == 1
    k = changed[0]
    assert 0.5 * before[k] - 1 <= after[k] <= 1.5 * before[k] + 1
    assert child.answer.value == 60 - before[k] + after[k]


def test_a_cell_edit_recomputes_the_derived_column():
    table = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b"], "rev": [10, 20], "cost": [4, 5]}),
                                  formulas=["profit = rev - cost"])
    item = build_item(table, "csv", "sum", {"op": "sum", "column": "profit", "where": []}, 0)
    assert item.answer.value == 21  # 6 + 15
    child = edit_cell(item, np.random.default_rng(1))
    data = child.table.data
    assert (data["profit"] == data["rev"] - data["cost"]).all()
    assert child.answer.value == float((data["rev"] - data["cost"]).sum())
    assert "profit" not in child.steps[0]  # the derived cell itself is never edited


def test_added_condition_filters_like_pandas():
    table = DreamTable.from_frame(pd.DataFrame({
        "k": list("abcdefgh"), "g": ["x", "y"] * 4, "v": [1, 2, 3, 4, 5, 6, 7, 8], "w": [8, 1, 6, 3, 4, 5, 2, 7]}))
    item = build_item(table, "markdown", "sum", {"op": "sum", "column": "v", "where": []}, 0)
    for seed in range(10):
        child = add_condition(item, np.random.default_rng(seed))
        (cond,) = child.program["where"]
        col, df = cond["column"], table.data
        rows = {"==": df[col] == cond["value"], ">": df[col] > cond["value"], "<": df[col] < cond["value"]}[cond["cmp"]]
        assert child.answer.value == df.loc[rows, "v"].sum()
        assert depth(child.program) == depth(item.program) + 1
        assert child.direction == "complication"


def test_compose_compares_two_filtered_aggregates():
    table = DreamTable.from_frame(pd.DataFrame({"k": list("abcd"), "g": ["x", "y", "x", "y"], "v": [1, 2, 3, 10]}))
    item = build_item(table, "html", "mean", {"op": "mean", "column": "v", "where": []}, 0)
    kinds = set()
    for seed in range(12):
        try:
            child = compose(item, np.random.default_rng(seed))
        except Unanswerable:
            continue
        kinds.add(child.program["op"])
        left, right = (execute(child.program[s], table.data).value for s in ("left", "right"))
        if child.program["op"] == "compare":
            assert child.answer.value == (left > right if child.program["cmp"] == ">" else left < right)
        else:
            assert child.answer.value == pytest.approx(left - right)
        assert depth(child.program) >= 3
    assert kinds == {"compare", "arith"}


def test_instruction_generalisation_changes_words_or_type():
    table = DreamTable.from_frame(pd.DataFrame({"k": list("abcd"), "g": ["x", "y", "x", "y"], "v": [1, 2, 3, 10]}))
    item = build_item(table, "markdown", "max", {"op": "max", "column": "v", "where": []}, 0)
    other = rephrase(item, np.random.default_rng(0))
    assert other.instruction != item.instruction and other.program == item.program and other.answer == item.answer
    switched = new_task_type(item, np.random.default_rng(0))
    assert switched.task_type != "max" and switched.task_type in TASK_TYPES
    assert switched.answer == execute(switched.program, table.data)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_every_direction_evolves_demo_subtables(direction, diamonds):
    from tabline.dream.making import TableSpec, seed_items, sub_tables

    rng = np.random.default_rng(0)
    tables = sub_tables(diamonds, 3, TableSpec(), rng, source="diamonds")
    for item in seed_items(tables, 10, rng).items:
        child = evolve(item, direction, rng)
        assert child.direction == direction and child.parent == item.id
        assert child.answer == execute(child.program, child.table.data)
