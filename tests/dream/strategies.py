"""Hypothesis strategies for dream tables: a unique text key, numeric columns (ints, floats, missing cells),
text columns whose cells carry the characters formats must escape (| < & " , \\)."""
from __future__ import annotations

import pandas as pd
from hypothesis import strategies as st

from tabline.dream.table import DreamTable

_TEXT = st.text(alphabet="abcXYZ |<>&\",\\'é-", min_size=1, max_size=8).filter(lambda s: s.strip())
_KEY = st.text(alphabet="abcdefghij", min_size=1, max_size=5)
_FLOAT = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def dream_tables(draw, kinds=("flat", "horizontal", "hierarchical")) -> DreamTable:
    n = draw(st.integers(1, 7))
    keys = draw(st.lists(_KEY, min_size=n, max_size=n, unique=True))
    columns = {"name": keys}
    for k in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            columns[f"int {k}"] = draw(st.lists(st.integers(-10**6, 10**6), min_size=n, max_size=n))
        else:
            columns[f"num_{k}"] = draw(st.lists(st.one_of(_FLOAT, st.none()), min_size=n, max_size=n))
    for k in range(draw(st.integers(0, 2))):
        columns[f"txt {k}"] = draw(st.lists(st.one_of(_TEXT, st.none()), min_size=n, max_size=n))
    return DreamTable.from_frame(pd.DataFrame(columns), title="t", kind=draw(st.sampled_from(kinds)), key="name")
