import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from tabline.training.rewards import cllm_keep, cllm_scores, dcr_reward, indistinguishability


@pytest.mark.parametrize("phi, expected", [
    pytest.param(0.5, 1.0, id="cannot-tell"),
    pytest.param(0.0, 0.0, id="obvious-fake"),
    pytest.param(1.0, 0.0, id="too-real"),
    pytest.param(0.75, 0.5, id="between"),
])
def test_indistinguishability_by_hand(phi, expected):
    assert indistinguishability(np.array([phi]))[0] == pytest.approx(expected)


def test_dcr_reward_by_hand():
    # median of (0, 2, 4, 10) is 3: rewards 0/3, 2/3, 1, 1
    assert dcr_reward(np.array([0.0, 2.0, 4.0, 10.0])) == pytest.approx([0.0, 2 / 3, 1.0, 1.0])
    assert dcr_reward(np.array([1.0, 3.0]), tau=2.0) == pytest.approx([0.5, 1.0])
    assert dcr_reward(np.array([0.0, 0.0, 0.5])).tolist() == [0.0, 0.0, 1.0]  # median 0: copies get nothing


def test_cllm_scores_by_hand():
    # 3 stages, 2 rows, 3 classes; row 0 label 2, row 1 label 0
    probs = np.array([
        [[0.2, 0.3, 0.5], [0.4, 0.4, 0.2]],
        [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]],
        [[0.1, 0.0, 0.9], [0.6, 0.2, 0.2]],
    ])
    conf, alea = cllm_scores(probs, np.array([2, 0]))
    assert conf == pytest.approx([(0.5 + 0.7 + 0.9) / 3, (0.4 + 0.5 + 0.6) / 3])
    assert alea == pytest.approx([(0.25 + 0.21 + 0.09) / 3, (0.24 + 0.25 + 0.24) / 3])
    assert cllm_keep(conf, alea).tolist() == [False, False]
    assert cllm_keep(conf, alea, tau_conf=0.35).tolist() == [True, False]


def test_cllm_on_a_real_boosted_model_flags_mislabelled_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 2))
    y = (x[:, 0] > 0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(x, y)
    probe = np.array([[2.0, 0.0], [2.0, 0.0]])
    staged = np.stack(list(model.staged_predict_proba(probe)))  # (E, 2, 2)
    conf, alea = cllm_scores(staged, np.array([1, 0]))  # second row carries the wrong label
    keep = cllm_keep(conf, alea)
    assert keep.tolist() == [True, False] and conf[0] > 0.8 > conf[1]
