"""The QC chain on hand-made batches: each stage rejects the rows it should, with the reason."""
import numpy as np
import pandas as pd

from tabline.qc.chain import QCChain, Verdicts
from tabline.qc.objective import objective
from tabline.schema import Schema


def _real():
    return pd.DataFrame({"a": np.arange(40) % 20 + 1, "b": ["x", "y"] * 20})  # odd a with x, even a with y


def test_three_stages_keep_first_reason_and_count_by_stage():
    real = _real()
    schema = Schema.infer(real)
    chain = QCChain(real, schema, thresholds={"judge": 0.5}, min_distance=0.05, cells=2)
    batch = pd.DataFrame({"a": [1, 100, 15, 15, 12, 12], "b": ["x", "x", "z", "z", "x", "x"]})
    # row 0 copies a real row; row 1 out of range; rows 2-3 unknown category; rows 4 and 5 identical
    v = Verdicts.start(batch.index)
    v.apply(chain.sanity(batch, accepted_keys=set()))
    assert v.stage.tolist() == ["sanity"] * 4 + ["", "sanity"]
    assert v.reason[0] == "copy: equals a real training row" and "column 'a' = 100" in v.reason[1]
    assert v.reason[5] == "duplicate: same as row 4 of this batch"
    v.apply(chain.objective({"judge": pd.Series([1, 1, 1, 1, 0.9, 1.0])}, v.passing))
    assert v.passing.tolist() == [False] * 4 + [True, False]
    result, gain, under = chain.diversity(batch, v.passing, chain.features(real.head(0)))
    v.apply(result)
    assert v.passing.tolist() == [False] * 4 + [True, False] and 0 <= under <= 1
    assert v.counts() == {"sanity": {"copy": 1, "schema": 3, "duplicate": 1}}


def test_near_duplicate_of_the_accepted_pool_is_rejected():
    real = _real()
    chain = QCChain(real, Schema.infer(real), thresholds={}, min_distance=0.05, cells=2)
    pool = pd.DataFrame({"a": [10], "b": ["x"]})
    batch = pd.DataFrame({"a": [10.5, 18], "b": ["x", "y"]})  # 0.5/19/2 ≈ 0.013 away from the pool row
    result, _, _ = chain.diversity(batch, pd.Series([True, True]), chain.features(pool))
    assert result.passed.tolist() == [False, True] and "near-duplicate" in result.reason[0]


def test_rejection_sampling_threshold_per_row():
    scores = {"classifier": pd.Series([0.9, 0.2, 0.5])}
    draws = pd.Series([0.5, 0.1, 0.7])
    r = objective(scores, {"classifier": draws})
    assert r.passed.tolist() == [True, True, False]
    assert r.reason[2] == "objective: judge 'classifier' acceptance 0.50 < draw 0.70 (rejection sampling)"


def test_seeded_draws_accept_about_the_acceptance_probability():
    real = _real()
    chain = QCChain(real, Schema.infer(real), thresholds={"classifier": "draw"}, cells=2)
    passing = pd.Series(True, index=range(4000))
    r = chain.objective({"classifier": pd.Series(0.3, index=passing.index)}, passing, seed=1)
    assert 0.27 < r.passed.mean() < 0.33
    again = chain.objective({"classifier": pd.Series(0.3, index=passing.index)}, passing, seed=1)
    assert again.passed.equals(r.passed)


def test_diversity_measures_coverage_only_when_something_reads_it():
    real = _real()
    schema = Schema.infer(real)
    batch = pd.DataFrame({"a": [3, 4, 5], "b": ["x", "y", "x"]})
    passing = pd.Series([True, False, True])
    quiet = QCChain(real, schema, thresholds={}, cells=2, coverage=False)  # one arm, no thresholds
    result, gain, under = quiet.diversity(batch, passing, np.empty((0, 0)))
    assert not quiet.needs_features and gain is None and under is None
    assert result.passed.tolist() == [True, True] and list(result.passed.index) == [0, 2]
    for chain in (QCChain(real, schema, thresholds={}, cells=2, coverage=True),      # arms to reward
                  QCChain(real, schema, thresholds={}, cells=2, coverage=False, min_gain=0.0),
                  QCChain(real, schema, thresholds={}, cells=2, coverage=False, min_distance=0.01)):
        _, gain, under = chain.diversity(batch, passing, chain.features(real.head(0)))
        assert chain.needs_features and gain is not None and 0 <= under <= 1


def test_no_rows_left_for_the_diversity_stage():
    real = _real()
    chain = QCChain(real, Schema.infer(real), thresholds={}, min_distance=0.05, cells=2)
    batch = pd.DataFrame({"a": [3, 4], "b": ["x", "y"]})
    result, _, _ = chain.diversity(batch, pd.Series([False, False]), chain.features(real.head(3)))
    assert result.passed.empty
