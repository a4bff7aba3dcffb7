import pandas as pd
import pytest

from tabline.errors import InvalidArgumentError
from tabline.qc.objective import objective


def test_row_thresholds_and_mean_score():
    scores = {"classifier": pd.Series([0.9, 0.4, 0.8]), "labels": pd.Series([1.0, 1.0, 0.2])}
    result = objective(scores, {"classifier": 0.5, "labels": 0.5})
    assert result.reason.tolist() == ["", "objective: judge 'classifier' scored 0.40 < 0.5",
                                      "objective: judge 'labels' scored 0.20 < 0.5"]
    assert result.score.tolist() == pytest.approx([0.95, 0.7, 0.5])


def test_batch_threshold_rejects_a_weak_batch_whole():
    scores = {"classifier": pd.Series([0.6, 0.7, 0.1])}
    weak = objective(scores, {"classifier": 0.5}, batch_threshold=0.8)
    assert weak.passed.tolist() == [False, False, False]
    assert weak.reason.iloc[0] == "objective: batch mean score 0.65 < 0.8"
    assert objective(scores, {"classifier": 0.5}, batch_threshold=0.6).passed.tolist() == [True, True, False]


def test_configuration_mistakes_are_named():
    with pytest.raises(InvalidArgumentError, match=r"\['labls'\]"):
        objective({"labels": pd.Series([0.5])}, {"labls": 0.5})
    with pytest.raises(InvalidArgumentError, match="at least one judge"):
        objective({}, {})
