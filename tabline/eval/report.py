"""The evaluation report: every metric for the synthetic table beside the same metric for real holdout data.

The holdout column is the ceiling: what real data that the generator never saw achieves against train. A
synthetic table is good when its numbers sit near the ceiling, not when they hit some absolute value.

Example:
    >>> r = Report(rows={"train": 10, "synthetic": 10, "holdout": 10}, seed=0, max_rows=100,
    ...            validity=Comparison[ValidityScores](synthetic=ValidityScores(rows=10, invalid_rows=1,
    ...                                                                         invalid_row_rate=0.1),
    ...                                                ceiling=ValidityScores(rows=10, invalid_rows=0)))
    >>> r.summary()["invalid_row_rate"], Report.from_json(r.to_json()) == r
    (0.1, True)
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from rich.console import Console
from rich.table import Table

from tabline.errors import InvalidArgumentError

T = TypeVar("T")


def finite(x) -> float | None:
    """``x`` as a float, or None when it is missing or NaN (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Comparison(_Strict, Generic[T]):
    """One metric family scored on the synthetic table and, as the ceiling, on the real holdout."""

    synthetic: T
    ceiling: T


class QualityScores(_Strict):
    """SDMetrics QualityReport scores (0..1, higher is better) against train."""

    overall: float | None = None
    column_shapes: float | None = None
    column_pair_trends: float | None = None
    column_shapes_by_column: dict[str, float] = {}


class DetectionScores(_Strict):
    """Classifier two-sample test: cross-validated ROC-AUC of telling train rows from the other table's."""

    auc: float | None = None  # 0.5 = indistinguishable, 1.0 = every row is recognised
    auc_std: float | None = None  # across folds
    rows_per_class: int = 0
    folds: int = 0


class UtilityScores(_Strict):
    """A model trained on one table and tested on the holdout; only the task's metrics are filled."""

    accuracy: float | None = None
    macro_f1: float | None = None
    r2: float | None = None
    train_rows: int = 0


class Utility(Comparison[UtilityScores]):
    """TSTR (train on synthetic, test on real holdout) as ``synthetic``; TRTR (train on train) as ``ceiling``."""

    target: str
    task: Literal["classification", "regression"]
    metric: Literal["accuracy", "r2"]  # the primary metric behind ``ratio``
    ratio: float | None = None  # TSTR / TRTR of the primary metric; None when TRTR <= 0


class PrivacyScores(_Strict):
    """Closeness to train rows compared with closeness to unseen real rows."""

    dcr_share: float | None = None  # share of rows nearer to train than to holdout (ties half); 0.5 ideal
    exact_copy_rate: float = 0.0  # share of rows identical to some train row
    query_rows: int = 0
    reference_rows: int = 0  # rows in each of the two reference sets (train sample, holdout part)


class ValidityScores(_Strict):
    """Rows breaking the schema's per-column rules and its cross-column constraints."""

    rows: int
    invalid_rows: int = 0
    invalid_row_rate: float = 0.0
    invalid_by_column: dict[str, int] = {}
    constraint_violation_rate: float | None = None  # None when the schema has no constraints
    violations_by_constraint: dict[str, int] = {}


class Report(_Strict):
    """Everything `evaluate` measured. Serialise with `to_json`, print with `render`, tabulate `summary`."""

    format_version: Literal[1] = 1
    rows: dict[str, int]  # train / synthetic / holdout, before subsampling
    columns: list[str] = []  # columns the models and distances compared
    ignored_columns: list[str] = []  # text, id and constant columns
    target: str | None = None
    seed: int
    max_rows: int
    quality: Comparison[QualityScores] | None = None
    detection: Comparison[DetectionScores] | None = None
    utility: Utility | None = None
    privacy: Comparison[PrivacyScores] | None = None
    validity: Comparison[ValidityScores]
    notes: list[str] = []  # metrics that could not be computed, and why
    seconds: dict[str, float] = {}
    versions: dict[str, str] = {}

    def summary(self) -> dict[str, float | None]:
        """The headline numbers as one flat dict; every key is always present (None when not measured)."""
        q, d, u, p, v = self.quality, self.detection, self.utility, self.privacy, self.validity
        out: dict[str, float | None] = {}
        for key, comp, field in [
            ("quality", q, "overall"),
            ("column_shapes", q, "column_shapes"),
            ("column_pair_trends", q, "column_pair_trends"),
            ("c2st_auc", d, "auc"),
            ("dcr_share", p, "dcr_share"),
            ("exact_copy_rate", p, "exact_copy_rate"),
            ("invalid_row_rate", v, "invalid_row_rate"),
            ("constraint_violation_rate", v, "constraint_violation_rate"),
        ]:
            out[key] = getattr(comp.synthetic, field) if comp else None
            out[f"{key}_ceiling"] = getattr(comp.ceiling, field) if comp else None
        out["tstr"] = getattr(u.synthetic, u.metric) if u else None
        out["trtr"] = getattr(u.ceiling, u.metric) if u else None
        out["tstr_trtr_ratio"] = u.ratio if u else None
        return out

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text of the report; also written to ``path`` if given (atomically: a reader never sees half)."""
        text = self.model_dump_json(indent=2)
        if path is not None:
            path = Path(path)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return text

    @classmethod
    def from_json(cls, text: str) -> "Report":
        """Read a report written by `to_json`; a clear `InvalidArgumentError` if the text is not one."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5])
            raise InvalidArgumentError(f"text is not a tabline evaluation report: {where}") from exc

    def render(self, console: Console | None = None) -> None:
        """Print the report as a table: each metric for the synthetic table, the real ceiling, and the ideal."""
        console = console or Console()
        rows = self.rows
        table = Table(
            title=f"Synthetic table evaluation (train {rows.get('train')}, synthetic {rows.get('synthetic')}, "
            f"holdout {rows.get('holdout')} rows)",
        )
        for name, justify in [("metric", "left"), ("synthetic", "right"), ("real holdout (ceiling)", "right"),
                              ("ideal", "left")]:
            table.add_column(name, justify=justify)
        for label, syn, ceil, ideal in headline_rows(self):
            table.add_row(label, _fmt(syn), _fmt(ceil), ideal)
        console.print(table)
        bad = {k: n for k, n in self.validity.synthetic.invalid_by_column.items() if n}
        bad.update({f"constraint {k}": n for k, n in self.validity.synthetic.violations_by_constraint.items() if n})
        if bad:
            detail = Table(title="Invalid synthetic values")
            detail.add_column("column / constraint")
            detail.add_column("synthetic rows", justify="right")
            detail.add_column("holdout rows", justify="right")
            ceiling = dict(self.validity.ceiling.invalid_by_column)
            ceiling.update({f"constraint {k}": n for k, n in self.validity.ceiling.violations_by_constraint.items()})
            for name, n in bad.items():
                detail.add_row(name, str(n), str(ceiling.get(name, 0)))
            console.print(detail)
        for note in self.notes:
            console.print(f"note: {note}", style="dim")


def headline_rows(r: Report) -> list[tuple[str, float | None, float | None, str]]:
    """The report's headline as (metric, synthetic, real holdout ceiling, ideal) rows — what `Report.render`
    prints and the run page (`tabline view`) shows.

    Example:
        >>> r = Report(rows={}, seed=0, max_rows=1, validity=Comparison[ValidityScores](
        ...     synthetic=ValidityScores(rows=4, invalid_rows=1, invalid_row_rate=0.25),
        ...     ceiling=ValidityScores(rows=4, invalid_rows=0)))
        >>> headline_rows(r)[-1][:3]
        ('rows breaking the schema', 0.25, 0.0)
    """
    s = r.summary()
    rows = [
        ("quality (SDMetrics)", s["quality"], s["quality_ceiling"], "1, higher is better"),
        ("  column shapes", s["column_shapes"], s["column_shapes_ceiling"], "1"),
        ("  column pair trends", s["column_pair_trends"], s["column_pair_trends_ceiling"], "1"),
        ("detection ROC-AUC (C2ST)", s["c2st_auc"], s["c2st_auc_ceiling"], "0.5, lower is better"),
    ]
    if r.utility is not None:
        u = r.utility
        metric = "accuracy" if u.metric == "accuracy" else "R²"
        rows.append((f"utility {metric} of {u.target!r} (TSTR | TRTR)", s["tstr"], s["trtr"], "TSTR = TRTR"))
        if u.task == "classification":
            rows.append(("  macro-F1 (TSTR | TRTR)", u.synthetic.macro_f1, u.ceiling.macro_f1, "TSTR = TRTR"))
        rows.append(("  TSTR / TRTR", s["tstr_trtr_ratio"], None, "1"))
    rows += [
        ("DCR share nearer train", s["dcr_share"], s["dcr_share_ceiling"], "0.5"),
        ("exact copies of train rows", s["exact_copy_rate"], s["exact_copy_rate_ceiling"], "holdout's rate"),
        ("rows breaking the schema", s["invalid_row_rate"], s["invalid_row_rate_ceiling"], "0"),
    ]
    if s["constraint_violation_rate"] is not None:
        rows.append(("rows breaking a constraint", s["constraint_violation_rate"],
                     s["constraint_violation_rate_ceiling"], "0"))
    return rows


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"
