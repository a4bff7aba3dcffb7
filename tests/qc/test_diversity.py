import math

import numpy as np
import pandas as pd
import pytest

from tabline.qc.diversity import DiversityStage, coverage_gain, js_divergence
from tabline.schema import Schema


def test_js_divergence_by_hand():
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4); KL(p||m) = 1/2 log2(2/3) + 1/2 log2(2); KL(q||m) = log2(4/3)
    expected = 0.5 * (0.5 * math.log2(2 / 3) + 0.5) + 0.5 * math.log2(4 / 3)
    assert js_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(expected)
    assert js_divergence(np.array([2, 2]), np.array([5, 5])) == pytest.approx(0.0)  # counts are normalised


def test_coverage_gain_sign():
    real = np.array([0.25, 0.25, 0.25, 0.25])
    pool = np.array([10, 10, 0, 0])
    assert coverage_gain(real, pool, np.array([0, 0, 5, 5])) > 0    # fills the empty cells
    assert coverage_gain(real, pool, np.array([10, 0, 0, 0])) < 0   # piles onto a covered cell


@pytest.fixture(scope="module")
def stage(diamonds):
    real = diamonds.iloc[:1000].reset_index(drop=True)
    return real, DiversityStage(real, Schema.infer(real), cells=8, min_distance=0.01, seed=0)


def test_near_duplicates_are_rejected_and_new_rows_kept(stage, diamonds):
    real, st = stage
    pool = real.iloc[:50]
    batch = pd.concat([pool.iloc[[0]], real.iloc[[200]], real.iloc[[200]]], ignore_index=True)
    result, _ = st(batch, st.features(pool))
    assert result.passed.tolist() == [False, True, False]  # copy of the pool; new; copy of the row before
    assert result.reason.iloc[0].startswith("diversity: near-duplicate (distance 0.0000")
    assert result.score.iloc[0] == 0 and result.score.iloc[1] == 1


def test_min_gain_rejects_a_batch_that_piles_onto_covered_cells(diamonds):
    real = diamonds.iloc[:1000].reset_index(drop=True)
    st = DiversityStage(real, Schema.infer(real), cells=8, min_distance=0.0, min_gain=0.0, seed=0)
    cells = st.kmeans.labels_
    big = int(np.argmax(np.bincount(cells)))
    pool = pd.concat([real[cells == big].iloc[:100], real[cells != big].iloc[:20]])  # over-covers one cell
    same_cell = real[cells == big].iloc[100:120]
    other_cells = real[cells != big].iloc[20:40]
    bad, gain_bad = st(same_cell, st.features(pool))
    good, gain_good = st(other_cells, st.features(pool))
    assert gain_bad < 0 < gain_good
    assert not bad.passed.any() and "coverage gain" in bad.reason.iloc[0]
    assert good.passed.all()
