"""Tables turned into arrays for the evaluation models, and seeded subsampling.

Every metric reads a table through the same lens: numerics as floats, datetimes as seconds since the epoch,
categoricals and booleans as categories compared by the schema's canonical text form (so ``3``, ``3.0`` and
``"3"`` are one category), text, id and constant columns left out (free text, row labels and a single value
carry no distribution a tree or a distance can compare). Tables given here are already coerced by `Schema.coerce`.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "b", "a", "a"]})
    >>> cols = model_columns(Schema.infer(df))
    >>> blocks, categorical = tree_features([df], cols)
    >>> blocks[0].tolist(), categorical.tolist()
    ([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 0.0]], [False, True])
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.rowkeys import category_keys, numbers
from tabline.schema import Column, Schema

MODEL_KINDS = ("numeric", "datetime", "categorical", "boolean")
# HistGradientBoosting bins categorical features into at most 255 bins; codes must lie in [0, 254].
_MAX_TREE_CATEGORIES = 255
# One-hot distance columns cost time linearly; categories rarer than the 50 most frequent in train share one.
_MAX_DISTANCE_CATEGORIES = 50


def model_columns(schema: Schema, *, exclude: tuple[str, ...] = ()) -> list[Column]:
    """The schema's columns that models and distances can use (not text, id or constant), minus ``exclude``."""
    return [c for c in schema.columns if c.kind in MODEL_KINDS and c.name not in exclude]


def subsample(df: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``n`` rows of ``df`` drawn without replacement (``df`` itself when it is small enough).

    Example:
        >>> len(subsample(pd.DataFrame({"a": range(10)}), 3, np.random.default_rng(0)))
        3
    """
    if len(df) <= n:
        return df
    return df.iloc[np.sort(rng.choice(len(df), size=n, replace=False))]


def tree_features(frames: list[pd.DataFrame], columns: list[Column]) -> tuple[list[np.ndarray], np.ndarray]:
    """One float matrix per frame for gradient-boosted trees, plus the mask of categorical features.

    Category codes are shared across ``frames`` (most frequent first over all of them), so a category means
    the same code in every matrix. Columns with more categories than trees can bin keep their codes as
    ordinal numbers: still separable, just not as one-vs-rest splits.
    """
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    categorical = []
    for col in columns:
        if col.kind in ("numeric", "datetime"):
            for out, df in zip(blocks, frames):
                out.append(numbers(df[col.name], col))
            categorical.append(False)
            continue
        keys = [category_keys(df[col.name]) for df in frames]
        order = pd.concat(keys, ignore_index=True).value_counts().index
        code_of = pd.Series(np.arange(len(order), dtype=float), index=order)
        for out, k in zip(blocks, keys):
            out.append(k.map(code_of).to_numpy(dtype=float, na_value=np.nan))
        categorical.append(len(order) <= _MAX_TREE_CATEGORIES)
    matrices = [np.column_stack(b) if b else np.empty((len(df), 0)) for b, df in zip(blocks, frames)]
    return matrices, np.array(categorical, dtype=bool)


def distance_features(frames: list[pd.DataFrame], columns: list[Column], reference: pd.DataFrame) -> list[np.ndarray]:
    """One matrix per frame whose L1 distance is the evaluation's row distance.

    Numerics and datetimes are scaled by the ``reference`` (train) range, so a whole-range gap costs 1.
    A column with missing values anywhere is embedded as ``(x/2, -x/2)`` with NaN at ``(1/2, 1/2)``: then
    NaN vs NaN costs 0 and NaN vs a value inside the train range costs exactly 1 (``max(1, |x|)`` outside).
    Categories are one-hot scaled by 1/2, so any mismatch costs 1; missing is a category of its own.

    Example:
        >>> from tabline.schema import Schema
        >>> df = pd.DataFrame({"x": [0.0, 10.0, None]})
        >>> col = Column(name="x", kind="numeric", dtype="float", nullable=True)
        >>> distance_features([df], [col], df)[0].tolist()
        [[0.0, -0.0], [0.5, -0.5], [0.5, 0.5]]
    """
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for col in columns:
        if col.kind in ("numeric", "datetime"):
            _scaled_columns(frames, col, reference, blocks)
        else:
            _one_hot_columns(frames, col, reference, blocks)
    return [np.column_stack(b) if b else np.empty((len(df), 0)) for b, df in zip(blocks, frames)]


def _scaled_columns(frames, col: Column, reference: pd.DataFrame, blocks) -> None:
    ref = numbers(reference[col.name], col)
    lo, hi = (np.nanmin(ref), np.nanmax(ref)) if np.isfinite(ref).any() else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    scaled = [(numbers(df[col.name], col) - lo) / span for df in frames]
    if not any(np.isnan(x).any() for x in scaled):
        for out, x in zip(blocks, scaled):
            out.append(x)
        return
    for out, x in zip(blocks, scaled):
        missing = np.isnan(x)
        out.append(np.where(missing, 0.5, x / 2))
        out.append(np.where(missing, 0.5, -x / 2))


def _one_hot_columns(frames, col: Column, reference: pd.DataFrame, blocks) -> None:
    kept = category_keys(reference[col.name]).value_counts().index[:_MAX_DISTANCE_CATEGORIES]
    code_of = pd.Series(np.arange(len(kept)), index=kept)
    other, missing = len(kept), len(kept) + 1
    codes = []
    for df in frames:
        keys = category_keys(df[col.name])
        c = keys.map(code_of).to_numpy(dtype=float, na_value=np.nan)
        c[np.isnan(c)] = other
        c[keys.isna().to_numpy()] = missing
        codes.append(c.astype(int))
    used = np.unique(np.concatenate(codes))  # a one-hot column that is zero everywhere only costs time
    for out, c in zip(blocks, codes):
        one_hot = (c[:, None] == used[None, :]) * 0.5  # (n, n_used)
        out.extend(one_hot.T)
