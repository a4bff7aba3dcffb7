"""SDMetrics quality: metadata from the schema, and what shuffling columns does to pair trends."""
from __future__ import annotations

import pytest

from tabline.eval.quality import quality, quality_scores, sdmetrics_metadata
from tabline.schema import Schema


def test_metadata_follows_the_schema_and_leaves_out_text_and_ids(mixed_tables):
    schema = Schema.infer(mixed_tables.train)

    meta = sdmetrics_metadata(schema)

    assert meta == {"columns": {
        "age": {"sdtype": "numerical"},
        "income": {"sdtype": "numerical"},
        "city": {"sdtype": "categorical"},
        "member": {"sdtype": "boolean"},
        "joined": {"sdtype": "datetime", "datetime_format": "%Y-%m-%d"},
    }}


def test_a_table_against_itself_scores_one(mixed_tables):
    schema = Schema.infer(mixed_tables.train)
    typed = schema.coerce(mixed_tables.train)

    scores = quality_scores(typed, typed, schema)

    assert scores.overall == pytest.approx(1.0)
    assert set(scores.column_shapes_by_column) == {"age", "income", "city", "member", "joined"}


def test_shuffled_columns_keep_shapes_but_lose_pair_trends(diamond_splits):
    schema = Schema.infer(diamond_splits.train)
    train, holdout = schema.coerce(diamond_splits.train), schema.coerce(diamond_splits.holdout)
    shuffled = schema.coerce(diamond_splits.shuffled)

    q = quality(train, shuffled, holdout, schema, seed=0, max_rows=10_000)

    assert q.ceiling.overall > 0.85
    assert q.synthetic.column_shapes > 0.95
    assert q.synthetic.column_pair_trends < q.ceiling.column_pair_trends - 0.2
