"""Category keys: the fast path (each distinct value once) gives what the key of every cell gives."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tabline._values import _category_key
from tabline.rowkeys import category_keys

cells = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-3, 3), st.just(float("nan")),
                  st.sampled_from(["a", "b", "true", "FALSE", "3", "3.0", " "]))


def cell_by_cell(s: pd.Series) -> list:
    return [None if pd.isna(v) else _category_key(v) for v in s]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(cells, max_size=30))
def test_any_column_gets_the_key_of_each_cell(values):
    s = pd.Series(values, dtype=object)
    got = [None if pd.isna(v) else v for v in category_keys(s)]
    assert got == cell_by_cell(s)


def test_typed_columns_of_one_kind():
    for s in (pd.Series([1, 2, 1], dtype="int64"), pd.Series([1.0, 2.5, np.nan]), pd.Series([True, False]),
              pd.Series(["x", None, "True"], dtype=object)):
        assert [None if pd.isna(v) else v for v in category_keys(s)] == cell_by_cell(s)
    assert category_keys(pd.Series([True, 1, 1.0], dtype=object)).tolist() == ["True", "1", "1"]
