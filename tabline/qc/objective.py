"""QC stage 2, objective filter: thresholds on the judges' scores, per row and per batch.

Each judge gives every row a score in [0, 1] (1 = best). A row a judge gave no score (NaN) or a score
outside [0, 1] is rejected first, naming the judge (a judge of your own can do that; its rows are not let
through, nor silently clipped). A row passes when every judge's score reaches that judge's row threshold; its stage score is the mean of the judges' scores. The batch passes when the mean
score of its passing rows reaches ``batch_threshold``; otherwise its passing rows are rejected too, with the
batch mean as the reason (T²'s batch-level objective filter). Thresholds are settings: the paper does not
publish them. A per-row threshold (a Series of uniform draws) makes the stage a rejection sampler: a row
with acceptance probability a passes with probability a (used by the classifier judge's ``accept`` score).

Example:
    >>> import pandas as pd
    >>> scores = {"classifier": pd.Series([0.9, 0.1, 0.7])}
    >>> objective(scores, {"classifier": 0.5}).reason.tolist()
    ['', "objective: judge 'classifier' scored 0.10 < 0.5", '']
    >>> objective({"mine": pd.Series([float("nan"), 1.5, 0.9])}, {"mine": 0.5}).reason.tolist()
    ["objective: judge 'mine' gave no score (NaN)", "objective: judge 'mine' scored 1.5, outside [0, 1]", '']
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from tabline.errors import InvalidArgumentError
from tabline.qc.verdicts import StageResult


def objective(scores: Mapping[str, pd.Series], row_thresholds: Mapping[str, float | pd.Series],
              batch_threshold: float = 0.0) -> StageResult:
    """Per-row verdicts from judges' scores (all Series share the batch's index). A threshold may be a Series
    with one value per row: with uniform draws it turns an acceptance probability into rejection sampling."""
    if not scores:
        raise InvalidArgumentError("the objective stage needs at least one judge's scores")
    unknown = sorted(set(row_thresholds) - set(scores))
    if unknown:
        raise InvalidArgumentError(f"thresholds name judges that gave no scores: {unknown}; judges: {sorted(scores)}")
    raw = pd.DataFrame(dict(scores)).astype(float)  # (B, judges)
    reason = pd.Series("", index=raw.index, dtype=object)
    for judge in raw.columns:
        missing = raw[judge].isna() & reason.eq("")
        reason[missing] = f"objective: judge {judge!r} gave no score (NaN)"
        # a hair outside [0, 1] is rounding (1 - 4·p(1-p) can reach 1 + 1e-16), not a fault
        outside = ((raw[judge] < -1e-9) | (raw[judge] > 1 + 1e-9)) & reason.eq("")
        reason[outside] = raw.loc[outside, judge].map(lambda v, j=judge: f"objective: judge {j!r} scored {v:g}, "
                                                                          "outside [0, 1]")
    frame = raw.clip(0.0, 1.0)
    for judge, threshold in row_thresholds.items():
        low = frame[judge] < threshold
        fresh = low & reason.eq("")
        if isinstance(threshold, pd.Series):
            reason[fresh] = [f"objective: judge {judge!r} acceptance {v:.2f} < draw {t:.2f} (rejection sampling)"
                             for v, t in zip(frame.loc[fresh, judge], threshold[fresh])]
        else:
            reason[fresh] = frame.loc[fresh, judge].map(lambda v, j=judge, t=threshold: f"objective: judge {j!r} scored {v:.2f} < {t}")
    score = frame.mean(axis=1)
    passing = reason.eq("")
    batch_mean = float(score[passing].mean()) if passing.any() else 0.0
    if passing.any() and batch_mean < batch_threshold:
        reason[passing] = f"objective: batch mean score {batch_mean:.2f} < {batch_threshold}"
    return StageResult.from_reasons("objective", reason, score)
