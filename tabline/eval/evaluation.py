"""`evaluate`: score a synthetic table against the real table it was learned from, beside a real ceiling.

Every metric runs twice: on the synthetic table, and on real holdout rows the generator never saw (the
ceiling: what real data achieves). See `tabline.eval.quality`, `.detection`, `.utility`, `.privacy` and
`.validity` for what each measures.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> def table(n):
    ...     x = rng.normal(size=n)
    ...     return pd.DataFrame({"x": x.round(2), "y": np.where(x + rng.normal(size=n) > 0, "hi", "lo")})
    >>> report = evaluate(table(200), table(200), table(200), target="y", max_rows=200)
    >>> report.utility.task, 0.0 <= report.summary()["quality"] <= 1.0
    ('classification', True)
"""
from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from tabline.errors import InvalidArgumentError, InvalidTableError
from tabline.eval.detection import detection
from tabline.eval.features import model_columns
from tabline.eval.privacy import privacy
from tabline.eval.quality import quality
from tabline.eval.report import Report
from tabline.eval.utility import utility
from tabline.eval.validity import validity
from tabline.schema import Schema

_TARGET_KINDS = ("numeric", "categorical", "boolean")


def evaluate(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    target: str | None = None,
    schema: Schema | None = None,
    seed: int = 0,
    max_rows: int = 10_000,
) -> Report:
    """Evaluate ``synthetic`` against ``train``, with ``holdout`` (real rows not used for training) as ceiling.

    ``target`` adds the utility test (TSTR vs TRTR); ``schema`` defaults to ``Schema.infer(train)``; each
    model and distance sees at most ``max_rows`` rows per table (seeded draws, so a seed fixes the result).
    Columns of the tables that the schema does not name are ignored. Raises `InvalidArgumentError` for bad
    arguments and `InvalidTableError` naming every problem of the tables.
    """
    _check_arguments(train, target, schema, seed, max_rows)
    _check_frames(train=train, synthetic=synthetic, holdout=holdout)
    if schema is None:
        schema = _infer_schema(train)
    _check_columns(schema, target, train=train, synthetic=synthetic, holdout=holdout)

    raw = {"train": train, "synthetic": synthetic, "holdout": holdout}
    typed = {name: schema.coerce(df[schema.names]) for name, df in raw.items()}
    tr, sy, ho = typed["train"], typed["synthetic"], typed["holdout"]
    seconds: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        seconds[name] = round(time.perf_counter() - start, 3)
        return result

    opts = {"seed": int(seed), "max_rows": int(max_rows)}
    report = Report(
        rows={name: len(df) for name, df in raw.items()},
        columns=[c.name for c in model_columns(schema)],
        ignored_columns=[n for n in schema.names if n not in {c.name for c in model_columns(schema)}],
        target=target,
        seed=int(seed),
        max_rows=int(max_rows),
        quality=timed("quality", quality, tr, sy, ho, schema, **opts),
        detection=timed("detection", detection, tr, sy, ho, schema, **opts),
        utility=timed("utility", utility, tr, sy, ho, schema, target, **opts) if target is not None else None,
        privacy=timed("privacy", privacy, tr, sy, ho, schema, **opts),
        validity=timed("validity", validity, synthetic, holdout, schema),
        seconds=seconds,
        versions=_versions(),
    )
    return report.model_copy(update={"notes": _notes(report)})


def _notes(report: Report) -> list[str]:
    """Why a metric is missing, in the user's words."""
    notes = []
    if not report.columns:
        notes.append("quality, detection and distances skipped: no numeric, categorical, boolean or datetime column")
    q = report.quality
    if q is not None:
        for side, scores in (("synthetic table", q.synthetic), ("holdout", q.ceiling)):
            unscored = [c for c in report.columns if c not in scores.column_shapes_by_column]
            if unscored:
                notes.append(f"SDMetrics gave no column-shape score for {unscored} in the {side} (e.g. every "
                             "value missing there); its quality score leaves them out")
    d = report.detection
    if d is not None and d.synthetic.auc is None:
        notes.append(f"detection needs at least 2 rows per table; it had {d.synthetic.rows_per_class}")
    u = report.utility
    if u is not None and u.synthetic.train_rows == 0:
        notes.append(f"TSTR skipped: the synthetic table has no value in target column {u.target!r}")
    if u is not None and u.ratio is None and u.synthetic.train_rows and u.metric == "r2":
        notes.append("TSTR/TRTR ratio left out: TRTR R² is not positive, so the ratio would mislead")
    return notes


def _check_arguments(train, target, schema, seed, max_rows) -> None:
    problems = []
    if not isinstance(max_rows, (int, np.integer)) or isinstance(max_rows, bool) or max_rows < 2:
        problems.append(f"max_rows must be an integer of at least 2, not {max_rows!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        problems.append(f"seed must be a non-negative integer, not {seed!r}")
    if schema is not None and not isinstance(schema, Schema):
        problems.append(f"schema must be a tabline Schema, not {type(schema).__name__}")
    if target is not None and isinstance(train, pd.DataFrame) and target not in train.columns:
        problems.append(f"target {target!r} is not a column of train (columns: {[str(c) for c in train.columns]})")
    if problems:
        raise InvalidArgumentError("; ".join(problems))


def _check_frames(**tables: pd.DataFrame) -> None:
    problems = []
    for name, df in tables.items():
        if not isinstance(df, pd.DataFrame):
            problems.append(f"{name} is a {type(df).__name__}, not a pandas DataFrame")
            continue
        smallest = 1 if name == "synthetic" else 2  # a real table is split or cross-validated
        if len(df) < smallest:
            problems.append(f"{name} has {len(df)} rows; it needs at least {smallest}")
        names = [str(c) for c in df.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"{name} repeats column(s) {dupes}")
    if problems:
        raise InvalidTableError(problems)


def _infer_schema(train: pd.DataFrame) -> Schema:
    try:
        return Schema.infer(train)
    except InvalidTableError as exc:
        raise InvalidTableError(
            [f"cannot infer a schema from train (pass schema= to choose one): {p}" for p in exc.problems]
        ) from exc


def _check_columns(schema: Schema, target: str | None, **tables: pd.DataFrame) -> None:
    problems = []
    for name, df in tables.items():
        missing = [n for n in schema.names if n not in df.columns]
        if missing:
            owner = "train" if name != "train" else "the schema"
            problems.append(f"{name} lacks column(s) of {owner}: {missing}")
    if target is not None:
        if target not in schema.names:
            raise InvalidArgumentError(f"target {target!r} is not a column of the schema (columns: {schema.names})")
        kind = schema.column(target).kind
        if kind not in _TARGET_KINDS:
            raise InvalidArgumentError(
                f"target {target!r} is a column of kind {kind!r}; the utility test needs a numeric (regression), "
                "categorical or boolean (classification) target"
            )
        for name in ("train", "holdout"):
            df = tables[name]
            if target in df.columns and schema.coerce(df[[target]])[target].notna().sum() == 0:
                problems.append(f"{name} has no value in target column {target!r}")
    if problems:
        raise InvalidTableError(problems)


def _versions() -> dict[str, str]:
    out = {}
    for package in ("tabline", "sdmetrics", "scikit-learn", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out
