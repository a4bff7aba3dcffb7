"""Evolution agents propose conditions toward under-covered data."""
import numpy as np
import pandas as pd

from tabline.agents.evolvers import Complicator, Generaliser, Rebalancer, Turn, combination_keys


def test_rebalancer_asks_for_the_missing_rows_then_stops():
    real = pd.DataFrame({"y": ["a"] * 95 + ["b"] * 5})
    reb = Rebalancer(real, column="y", value=None, ratio=0.5)
    # 100 accepted, 10 of class b: (0.5·100 − 10) / 0.5 = 80 more rows of b
    out = reb.propose(Turn(batch_id=3, rows=500, arm_rows=real, counts={"y": {"a": 90, "b": 10}}, accepted=100)).conditions
    assert out["y"].tolist() == ["b"] * 80
    assert reb.propose(Turn(batch_id=4, rows=500, arm_rows=real, counts={"y": {"a": 50, "b": 50}}, accepted=100)).conditions is None
    assert reb.watches == ["y"]  # the line counts its column's classes


def test_complicator_oversamples_rare_combinations():
    real = pd.DataFrame({"g": ["common"] * 990 + ["rare"] * 10})
    comp = Complicator(real, columns=["g"], share=1.0)
    out = comp.propose(Turn(batch_id=1, rows=2000, arm_rows=real, seed=0)).conditions
    share = (out["g"] == "rare").mean()
    assert 0.4 < share < 0.6  # weight 1/frequency: each combination equally likely, vs 1 % in the data


def test_generaliser_prefers_unseen_combinations():
    real = pd.DataFrame({"a": ["x", "y"] * 50, "b": ["p", "q"] * 50})  # only (x,p) and (y,q) occur
    gen = Generaliser(real, columns=["a", "b"], share=1.0)
    out = gen.propose(Turn(batch_id=2, rows=200, arm_rows=real, seed=0)).conditions
    seen = set(combination_keys(real, ["a", "b"], real))
    unseen = ~combination_keys(out, ["a", "b"], real).isin(seen)
    assert unseen.mean() > 0.95
    assert set(out["a"]) <= {"x", "y"} and set(out["b"]) <= {"p", "q"}  # values stay valid


def test_share_controls_how_often_an_evolver_acts():
    real = pd.DataFrame({"a": ["x", "y"] * 50, "b": ["p", "q"] * 50})
    gen = Generaliser(real, columns=["a", "b"], share=0.25)
    acted = [gen.propose(Turn(batch_id=i, rows=4, arm_rows=real, seed=0)).conditions is not None for i in range(400)]
    assert 0.18 < np.mean(acted) < 0.32
