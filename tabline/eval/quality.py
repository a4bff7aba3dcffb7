"""SDMetrics quality: how well single columns and column pairs of one table match another.

The score comes from SDMetrics' ``QualityReport`` (Column Shapes: KS / TV complement per column; Column
Pair Trends: correlation / contingency similarity per pair; overall = their mean). tabline's schema decides
each column's sdtype; text, id and constant columns are left out.

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 5, "c": ["a", "b", "a", "b"] * 5})
    >>> schema = Schema.infer(df)
    >>> sdmetrics_metadata(schema)
    {'columns': {'x': {'sdtype': 'numerical'}, 'c': {'sdtype': 'categorical'}}}
    >>> quality_scores(df, df, schema).overall
    1.0
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from tabline.errors import InvalidTableError
from tabline.eval.features import category_keys, model_columns, numbers, subsample
from tabline.eval.report import Comparison, QualityScores, finite
from tabline.schema import Schema

_SDTYPES = {"numeric": "numerical", "categorical": "categorical", "boolean": "boolean", "datetime": "datetime"}


def sdmetrics_metadata(schema: Schema) -> dict:
    """SDMetrics single-table metadata for the schema's modelable columns."""
    columns = {}
    for col in model_columns(schema):
        meta = {"sdtype": _SDTYPES[col.kind]}
        if col.kind == "datetime":
            meta["datetime_format"] = col.datetime_format
        columns[col.name] = meta
    return {"columns": columns}


def quality(
    train: pd.DataFrame, synthetic: pd.DataFrame, holdout: pd.DataFrame, schema: Schema, *, seed: int, max_rows: int
) -> Comparison[QualityScores] | None:
    """Quality of train vs synthetic, and of train vs holdout as the ceiling; None without modelable columns.

    Each side is subsampled to at most ``max_rows`` rows; the train sample is the same for both.
    """
    if not model_columns(schema):
        return None
    rng = np.random.default_rng(seed)
    real = subsample(train, max_rows, rng)
    return Comparison[QualityScores](
        synthetic=quality_scores(real, subsample(synthetic, max_rows, rng), schema, label="synthetic"),
        ceiling=quality_scores(real, subsample(holdout, max_rows, rng), schema, label="holdout"),
    )


def quality_scores(
    real: pd.DataFrame, other: pd.DataFrame, schema: Schema, *, label: str = "synthetic"
) -> QualityScores:
    """SDMetrics quality of ``other`` against ``real`` (both coerced by the schema)."""
    metadata = sdmetrics_metadata(schema)
    report = _run_report(_sdmetrics_frame(real, schema), _sdmetrics_frame(other, schema), metadata, label)
    props = dict(zip(report.get_properties()["Property"], report.get_properties()["Score"]))
    shapes = report.get_details("Column Shapes")
    return QualityScores(
        overall=finite(report.get_score()),
        column_shapes=finite(props.get("Column Shapes")),
        column_pair_trends=finite(props.get("Column Pair Trends")),
        column_shapes_by_column={
            str(name): round(float(score), 6)
            for name, score in zip(shapes["Column"], shapes["Score"])
            if finite(score) is not None
        },
    )


def _run_report(real: pd.DataFrame, other: pd.DataFrame, metadata: dict, label: str):
    try:
        # The unified report replaces the deprecated single-table one (same properties, same scores).
        from sdmetrics.reports import QualityReport

        report, args = QualityReport(), ({"table": real}, {"table": other}, {"tables": {"table": metadata}})
    except ImportError:  # sdmetrics before the unified reports
        from sdmetrics.reports.single_table import QualityReport

        report, args = QualityReport(), (real, other, metadata)
    try:
        with warnings.catch_warnings():
            # scipy and pandas warn on constant or tiny columns; the score already reflects them.
            warnings.simplefilter("ignore")
            report.generate(*args, verbose=False)
    except Exception as exc:  # sdmetrics raises many types on data it cannot score
        raise InvalidTableError(f"SDMetrics could not score train vs {label}: {type(exc).__name__}: {exc}") from exc
    return report


def _sdmetrics_frame(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    # Canonical category text keeps 3 / 3.0 / "3" one category; datetimes stay datetime64 so no format parsing.
    out = {}
    for col in model_columns(schema):
        s = df[col.name]
        if col.kind == "numeric":
            out[col.name] = numbers(s, col)
        elif col.kind == "datetime":
            out[col.name] = pd.to_datetime(s, errors="coerce")
        else:
            out[col.name] = category_keys(s).astype(object)
    return pd.DataFrame(out, index=df.index)

