"""The line's graph state: it stays the same size however long the run (measured in the SQLite checkpoints
the line writes), and the batch travels as Arrow bytes decoded once per process."""
from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from tabline.agents.team import Team
from tabline.graphs import line_runtime
from tabline.graphs.line_runtime import BatchFrames, frame_from_arrow, frame_to_arrow
from tabline.line.assembly import AssemblyLine


def checkpoint_bytes(run_dir, batches: list[int]) -> dict[int, int]:
    """Bytes of the checkpoint written right after batch k's bandit step (the first one with batches == k),
    as the SQLite checkpointer stores it."""
    serde = JsonPlusSerializer(allowed_msgpack_modules=None)
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite")
    try:
        rows = conn.execute("SELECT type, checkpoint FROM checkpoints ORDER BY checkpoint_id").fetchall()
    finally:
        conn.close()
    out: dict[int, int] = {}
    for kind, blob in rows:
        k = serde.loads_typed((kind, blob))["channel_values"].get("batches")
        if k in batches and k not in out:
            out[k] = len(blob)
    return out


def test_the_checkpointed_state_does_not_grow_with_the_run(tiny_lm, diamonds, tmp_path):
    # Setup: 100 batches of 8 rows, stopped by the batch budget (state that grew per batch would be ~10x here)
    team = Team.from_dict({"batch_rows": 8, "max_batches": 100, "patience": 1000, "judges": [{"kind": "rules"}]})
    line = AssemblyLine(team, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False)
    # Run
    result = line.run(100_000, tmp_path / "run", progress=False)
    # Assert: the state after batch 100 is no bigger than after batch 10, give or take a few bytes of counters
    assert result.report["batches"] == 100 and result.stop_reason == "batches"
    size = checkpoint_bytes(result.run_dir, [10, 100])
    print(f"checkpoint bytes after batch 10: {size[10]:,}; after batch 100: {size[100]:,}")
    assert size[100] <= 1.2 * size[10]
    # and the run's history is whole in the report: per-arm totals and sources count every batch
    arm = result.report["arms"][0]
    assert arm["batches"] == 100 and arm["generated"] == result.report["generated"] == 800
    assert sum(result.report["conditions_from"].values()) == 100


@pytest.mark.parametrize("frame", [
    pytest.param(pd.DataFrame({"i": [1, 2, 3], "f": [0.5, np.nan, np.inf], "b": [True, False, True]}), id="numbers"),
    pytest.param(pd.DataFrame({"s": ["a", None, "c"], "mixed": [1, "x", 2.5], "big": [2**70, 1, None]},
                              dtype=object), id="objects"),
    pytest.param(pd.DataFrame({"d": pd.to_datetime(["2020-01-01", None, "2021-02-03"]),
                               "n": pd.array([1, None, 3], dtype="Int64")}), id="pandas-types"),
    pytest.param(pd.DataFrame(index=range(4)), id="rows-without-columns"),
    pytest.param(pd.DataFrame({"a": pd.Series([], dtype=float)}), id="no-rows"),
])
def test_a_batch_travels_as_arrow_and_comes_back_as_plain_python_values(frame):
    # Run
    back = frame_from_arrow(frame_to_arrow(frame.set_axis(range(10, 10 + len(frame)))))
    # Assert: object columns of Python scalars, missing as None, numpy types gone, rows counted by position
    expected = frame.astype(object).where(frame.notna(), None)
    assert back.shape == frame.shape and back.index.equals(pd.RangeIndex(len(frame)))
    for col in frame.columns:
        got, want = back[col].tolist(), [v.item() if isinstance(v, np.generic) else v for v in expected[col]]
        want = [str(v) if isinstance(v, pd.Timestamp) else v for v in want]
        assert got == want and [type(v) for v in got] == [type(v) for v in want], col


def test_each_part_of_a_batch_is_decoded_once(monkeypatch):
    # Setup: count the decodes
    decoded = []
    monkeypatch.setattr(line_runtime, "frame_from_arrow",
                        lambda blob: decoded.append(blob) or frame_from_arrow(blob))
    conditions = frame_to_arrow(pd.DataFrame({"a": [1, 2]}))
    parts = {"lm": frame_to_arrow(pd.DataFrame({"b": ["x", "y"]}))}
    frames = BatchFrames()
    # Run: three nodes read the batch, then a station adds its part, then the next batch starts
    first = frames.batch(1, conditions, {}, ["a", "b", "c"])
    first["a"] = [9, 9]  # an agent that edits its copy changes nothing for the next node
    for _ in range(3):
        whole = frames.batch(1, conditions, parts, ["a", "b", "c"])
    assert len(decoded) == 2
    frames.batch(1, conditions, {**parts, "c": frame_to_arrow(pd.DataFrame({"c": [0.5, 1.5]}))}, ["a", "b", "c"])
    frames.batch(2, conditions, {}, ["a", "b", "c"])
    # Assert: two blobs for the first batch, one more for its new part, the new batch's conditions again
    assert len(decoded) == 4
    assert whole.to_dict("list") == {"a": [1, 2], "b": ["x", "y"]}
