"""What a QC stage says about a batch: one verdict per row — passed, a score, and a reason when it failed.

Rejected rows are never dropped silently: a stage returns the whole batch's verdicts, and the line keeps
the rejected rows beside them.

Example:
    >>> import pandas as pd
    >>> r = StageResult.from_reasons("sanity", pd.Series(["", "duplicate of row 0 in this batch"]))
    >>> r.passed.tolist(), r.verdicts()["reason"].tolist()
    ([True, False], ['', 'duplicate of row 0 in this batch'])
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

STAGES = ("sanity", "objective", "diversity")


@dataclass
class StageResult:
    """Per-row outcome of one stage, all Series indexed like the batch."""

    stage: str
    passed: pd.Series  # bool
    score: pd.Series  # float in [0, 1]; 1 = best
    reason: pd.Series  # str, "" where the row passed

    @classmethod
    def from_reasons(cls, stage: str, reason: pd.Series, score: pd.Series | None = None) -> "StageResult":
        """Build a result where a row passes exactly when its reason is empty."""
        passed = reason.eq("")
        score = passed.astype(float) if score is None else score
        return cls(stage, passed, score, reason)

    def verdicts(self) -> pd.DataFrame:
        """One row per batch row: row_id, stage, passed, score, reason."""
        return pd.DataFrame({
            "row_id": self.passed.index, "stage": self.stage, "passed": self.passed.to_numpy(),
            "score": self.score.to_numpy(dtype=float), "reason": self.reason.to_numpy(dtype=object),
        })

    def rejection_counts(self) -> dict[str, int]:
        """How many rows failed for each reason kind (the text before the first ':' or '(')."""
        kinds = self.reason[~self.passed].str.split(r"[:(]", n=1, regex=True).str[0].str.strip()
        return {k: int(v) for k, v in kinds.value_counts().items()}
