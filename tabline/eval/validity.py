"""Validity: how many rows break the schema's per-column rules or its cross-column constraints.

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> schema = Schema.infer(pd.DataFrame({"lo": [1, 2, 3], "hi": [2, 3, 4]}), constraints=["hi > lo"])
    >>> v = validity_scores(pd.DataFrame({"lo": [1, 9, 3], "hi": [2, 3, 2]}), schema)
    >>> v.invalid_by_column, v.violations_by_constraint
    ({'lo': 1, 'hi': 0}, {'hi > lo': 2})
"""
from __future__ import annotations

import pandas as pd

from tabline.eval.report import Comparison, ValidityScores
from tabline.schema import Schema


def validity(synthetic: pd.DataFrame, holdout: pd.DataFrame, schema: Schema) -> Comparison[ValidityScores]:
    """Validity of the synthetic table, and of the holdout as the ceiling (real rows outside train's range
    or categories count as invalid too: that is how strict a schema inferred from train is)."""
    return Comparison[ValidityScores](synthetic=validity_scores(synthetic, schema),
                                      ceiling=validity_scores(holdout, schema))


def validity_scores(df: pd.DataFrame, schema: Schema) -> ValidityScores:
    """Per-column invalid counts, share of rows with any invalid cell, and constraint violations of ``df``
    (the table as the user has it, not coerced: a value that does not parse is invalid)."""
    cells = schema.check(df)  # (n, n_columns) bool, True = valid
    bad_rows = ~cells.all(axis=1)
    rules = schema.check_constraints(df)  # rule -> (n,) bool, True = satisfied
    broken = pd.Series(False, index=df.index)
    for ok in rules.values():
        broken |= ~ok
    n = len(df)
    return ValidityScores(
        rows=n,
        invalid_rows=int(bad_rows.sum()),
        invalid_row_rate=float(bad_rows.mean()) if n else 0.0,
        invalid_by_column={name: int((~ok).sum()) for name, ok in cells.items()},
        constraint_violation_rate=(float(broken.mean()) if n else 0.0) if rules else None,
        violations_by_constraint={rule: int((~ok).sum()) for rule, ok in rules.items()},
    )
