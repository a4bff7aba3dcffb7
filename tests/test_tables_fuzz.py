"""Fuzz (fast): random files and frames through `read_table` + `Schema.infer` + the tokenizer.

Every input ends either in a `TablineError` with a one-line message, or in a schema that the table itself
satisfies, that survives a JSON round trip, and whose tokenizer encodes every row of the table and decodes
only values the schema allows. Any other exception is a bug. Derandomized: the same cases run every time.
"""
from __future__ import annotations

import collections
import json
import tempfile
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from fuzz_tables import EXTREME_FLOATS, HUGE_INTS, csv_texts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabline.errors import TablineError
from tabline.io import read_table
from tabline.schema import Schema
from tabline.training.tokenizer import TableTokenizer

FAST = settings(derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _one_line(exc: TablineError) -> str:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)
    return message


def check_table(df: pd.DataFrame) -> str:
    """Infer a schema and hold it to the table; return the outcome ('schema' or 'infer-error')."""
    try:
        schema = Schema.infer(df)
    except TablineError as exc:
        _one_line(exc)
        return "infer-error"
    schema.validate_table(df)  # a table always fits the schema inferred from it
    assert Schema.from_dict(json.loads(schema.to_json())) == schema
    tok = TableTokenizer.fit(df, schema)
    if tok.modelled:
        back = tok.decode(tok.encode_strict(df))
        shown = schema.format(back.reindex(columns=schema.names))
        assert schema.check(shown)[tok.modelled].all().all(), shown[tok.modelled]
    return "schema"


def _read(content: str | bytes, suffix: str = ".csv") -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"t{suffix}"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8", newline="")
        return read_table(path, notes=[])


def test_fuzzed_csv_files_end_in_a_schema_or_one_clear_error(record_property):
    outcomes: collections.Counter = collections.Counter()

    @settings(FAST, max_examples=500)
    @given(st.one_of(csv_texts(), csv_texts(), csv_texts(), st.text(max_size=200), st.binary(max_size=200)))
    def one(content):
        try:
            df = _read(content)
        except TablineError as exc:
            _one_line(exc)
            outcomes["read-error"] += 1
            return
        outcomes[check_table(df)] += 1

    one()
    print(f"fuzz read+infer: {sum(outcomes.values())} cases {dict(outcomes)}")
    record_property("fuzz_cases", dict(outcomes))
    assert min(outcomes[k] for k in ("read-error", "infer-error", "schema")) >= 10, outcomes


# pandas holds datetimes as int64 nanoseconds: 1677-09-21 to 2262-04-11
_DATETIMES = st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2200, 1, 1))
_CELLS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_INTS), st.sampled_from(EXTREME_FLOATS),
    st.floats(), st.text(max_size=5), _DATETIMES.map(pd.Timestamp),
)


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 25))
    columns = {}
    for j in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["float64", "int64", "object", "bool", "datetime"]))
        if kind == "float64":
            x = draw(st.lists(st.floats() | st.sampled_from(EXTREME_FLOATS), min_size=n, max_size=n))
            columns[f"c{j}"] = pd.Series(x, dtype="float64")
        elif kind == "int64":
            x = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
            columns[f"c{j}"] = pd.Series(x, dtype="int64")
        elif kind == "bool":
            columns[f"c{j}"] = pd.Series(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        elif kind == "datetime":
            columns[f"c{j}"] = pd.Series(draw(st.lists(_DATETIMES, min_size=n, max_size=n)), dtype="datetime64[ns]")
        else:
            columns[f"c{j}"] = pd.Series(draw(st.lists(_CELLS, min_size=n, max_size=n)), dtype=object)
    return pd.DataFrame(columns)


def test_fuzzed_frames_end_in_a_schema_or_one_clear_error(record_property):
    outcomes: collections.Counter = collections.Counter()

    @settings(FAST, max_examples=300)
    @given(frames())
    def one(df):
        outcomes[check_table(df)] += 1

    one()
    print(f"fuzz frames: {sum(outcomes.values())} cases {dict(outcomes)}")
    record_property("fuzz_cases", dict(outcomes))
    assert outcomes["schema"] >= 10 and outcomes["infer-error"] >= 10, outcomes
