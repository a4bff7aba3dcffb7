"""The QC chain: sanity → objective → diversity over one batch, with every row's fate and reason.

`QCChain` holds what the stages need from the real table (row keys for copies, the diversity cells) and
the thresholds; the line calls one stage per graph node. A row rejected by an earlier stage is not shown
to a later one; `Verdicts` keeps, per row, the stage and reason that rejected it ("" while it passes).

Example:
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"a": [1, 2, 3, 4, 5, 6], "b": ["x", "y", "x", "y", "x", "y"]})
    >>> chain = QCChain(real, Schema.infer(real), thresholds={"classifier": 0.5}, cells=2)
    >>> batch = pd.DataFrame({"a": [2, 5, 3, 6], "b": ["y", "y", "y", "x"]})
    >>> v = Verdicts.start(batch.index)
    >>> v.apply(chain.sanity(batch, accepted_keys=set()))
    >>> v.apply(chain.objective({"classifier": pd.Series([0.9, 0.9, 0.2, 0.8])}, v.passing))
    >>> v.reason.tolist()
    ['copy: equals a real training row', '', "objective: judge 'classifier' scored 0.20 < 0.5", '']
"""
from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tabline.qc.diversity import DiversityStage
from tabline.qc.objective import objective
from tabline.qc.sanity import row_keys, sanity
from tabline.qc.verdicts import StageResult
from tabline.schema import Schema


@dataclass
class Verdicts:
    """Per-row outcome so far: the stage that rejected the row ("" = still passing) and why, plus the
    objective score (judged quality) of each row."""

    stage: pd.Series
    reason: pd.Series
    quality: pd.Series

    @classmethod
    def start(cls, index: pd.Index) -> "Verdicts":
        return cls(pd.Series("", index=index, dtype=object), pd.Series("", index=index, dtype=object),
                   pd.Series(np.nan, index=index))

    @property
    def passing(self) -> pd.Series:
        return self.stage.eq("")

    def apply(self, result: StageResult) -> None:
        """Record a stage's verdicts for the rows it saw (rows already rejected keep their first reason)."""
        failed = ~result.passed & self.passing.reindex(result.passed.index)
        idx = failed[failed].index
        self.stage[idx] = result.stage
        self.reason[idx] = result.reason[idx]
        if result.stage == "objective":
            self.quality[result.score.index] = result.score

    def counts(self) -> dict[str, dict[str, int]]:
        """Rejections by stage, then by reason kind (text before the first ':' or '(')."""
        out: dict[str, dict[str, int]] = {}
        rejected = ~self.passing
        kinds = self.reason[rejected].str.split(r"[:(]", n=1, regex=True).str[0].str.strip()
        for (stage, kind), n in pd.DataFrame({"s": self.stage[rejected], "k": kinds}).value_counts().items():
            out.setdefault(stage, {})[kind] = int(n)
        return out

    def to_dict(self) -> dict:
        return {"stage": self.stage.tolist(), "reason": self.reason.tolist(),
                "quality": [None if pd.isna(q) else float(q) for q in self.quality]}

    @classmethod
    def from_dict(cls, data: dict, index: pd.Index) -> "Verdicts":
        return cls(pd.Series(data["stage"], index=index, dtype=object),
                   pd.Series(data["reason"], index=index, dtype=object),
                   pd.Series([np.nan if q is None else q for q in data["quality"]], index=index, dtype=float))


class QCChain:
    """The three stages, fit once on the real table."""

    def __init__(self, real: pd.DataFrame, schema: Schema, *, thresholds: Mapping[str, float | str],
                 batch_threshold: float = 0.0, min_distance: float = 0.0, min_gain: float | None = None,
                 cells: int = 32, coverage: bool = True, seed: int = 0):
        self.schema, self.thresholds, self.batch_threshold = schema, dict(thresholds), batch_threshold
        # Stage 3 encodes rows only when something reads the result: a near-duplicate radius, a coverage-gain
        # threshold, or a bandit with arms to reward. Otherwise it passes every row, and the line skips its
        # cost (it was the largest part of the line's overhead: benchmarks/RESULTS.md, "line13").
        self.needs_features = min_distance > 0 or min_gain is not None or coverage
        self.real_keys = set(row_keys(real, schema).tolist())
        self.diversity_stage = DiversityStage(real, schema, cells=cells, min_distance=min_distance,
                                              min_gain=-math.inf if min_gain is None else min_gain, seed=seed)

    def sanity(self, batch: pd.DataFrame, *, accepted_keys: Collection[int]) -> StageResult:
        """Stage 1 on the whole batch."""
        return sanity(batch, self.schema, accepted_keys=accepted_keys, real_keys=self.real_keys)

    def objective(self, scores: Mapping[str, pd.Series], passing: pd.Series, *, seed: int = 0) -> StageResult:
        """Stage 2 on the rows still passing (``passing`` is a boolean Series over the batch). A threshold
        of ``"draw"`` means rejection sampling: one seeded uniform draw per row of the batch."""
        rows = passing[passing].index
        if len(rows) == 0:
            empty = pd.Series(dtype=object)
            return StageResult("objective", pd.Series(dtype=bool), pd.Series(dtype=float), empty)
        draws = pd.Series(np.random.default_rng(seed).random(len(passing)), index=passing.index)
        thresholds = {k: draws.loc[rows] if isinstance(t, str) and t == "draw" else t
                      for k, t in self.thresholds.items()}
        return objective({k: v.loc[rows] for k, v in scores.items()}, thresholds, self.batch_threshold)

    def features(self, batch: pd.DataFrame) -> np.ndarray:
        """The diversity stage's features of ``batch`` (rows, F); the line keeps these for the accepted pool."""
        return self.diversity_stage.features(batch)

    def diversity(self, batch: pd.DataFrame, passing: pd.Series,
                  pool_x: np.ndarray) -> tuple[StageResult, float | None, float | None]:
        """Stage 3 on the rows still passing (only they are encoded: sanity has vetted their values).
        Returns the result, the coverage gain and the under-covered share (see `tabline.qc.diversity`);
        both None when the chain does not need them (`needs_features`)."""
        rows = batch.loc[passing.to_numpy()]
        if not self.needs_features:
            return StageResult.from_reasons("diversity", pd.Series("", index=rows.index, dtype=object)), None, None
        return self.diversity_stage.judge(rows.index, self.features(rows), pool_x)
