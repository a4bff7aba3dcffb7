import numpy as np
import pandas as pd
import pytest

from tabline.agents.profile import correlation_ratio, cramers_v, dependence_matrix, propose_plan
from tabline.schema import Schema


def test_cramers_v_by_hand():
    # 2x2 table [[10, 0], [0, 10]]: chi2 = 20, n = 20, V = sqrt(20 / 20) = 1
    x = pd.Series(["a"] * 10 + ["b"] * 10)
    assert cramers_v(x, x.map({"a": "u", "b": "v"})) == pytest.approx(1.0)
    # [[5, 5], [5, 5]]: independent, V = 0
    y = pd.Series(["u", "v"] * 10)
    assert cramers_v(x, y) == pytest.approx(0.0)


def test_correlation_ratio_by_hand():
    # groups a: (1, 3), b: (5, 7); mean 4; total SS = 9+1+1+9 = 20; between = 2*(2-4)^2 + 2*(6-4)^2 = 16
    eta = correlation_ratio(pd.Series(["a", "a", "b", "b"]), pd.Series([1.0, 3.0, 5.0, 7.0]))
    assert eta == pytest.approx(np.sqrt(16 / 20))


def test_dependence_on_real_data(diamonds):
    dep = dependence_matrix(diamonds, Schema.infer(diamonds))
    assert dep.loc["carat", "price"] > 0.9 and dep.loc["x", "y"] > 0.9      # size drives price
    assert dep.loc["carat", "cut"] < dep.loc["carat", "price"]
    assert np.allclose(dep.to_numpy(), dep.to_numpy().T) and (np.diag(dep) == 1).all()


def test_proposed_plan_is_valid_and_orders_coarse_before_fine(diamonds, mixed_table):
    for df in (diamonds, mixed_table):
        schema = Schema.infer(df)
        plan = propose_plan(df, schema)
        plan.check(schema)  # exact cover, acyclic
    plan = propose_plan(diamonds, Schema.infer(diamonds))
    owner = {col: c.name for c in plan.components for col in c.columns}
    assert owner["carat"] == owner["price"] == owner["x"]  # strongly dependent: one component
    order = [name for level in plan.levels() for name in level]
    assert order.index(owner["cut"]) < order.index(owner["price"])  # categories condition numbers
    assert plan.component(owner["price"]).depends_on  # the size component has parents


def test_unmodelled_columns_get_a_sampler_component(mixed_table):
    plan = propose_plan(mixed_table, Schema.infer(mixed_table))
    unmodelled = plan.component("unmodelled")
    assert sorted(unmodelled.columns) == ["customer", "note"] and unmodelled.worker == "sampler"


def test_constant_columns_are_left_out_of_the_dependence_and_sampled_apart():
    rng = np.random.default_rng(0)
    g = rng.choice(["a", "b"], 200)
    df = pd.DataFrame({"g": g, "v": np.where(g == "a", 0.0, 10.0) + rng.normal(size=200), "unit": "kg", "n": 3})
    schema = Schema.infer(df)

    plan = propose_plan(df, schema)

    assert list(dependence_matrix(df, schema).index) == ["g", "v"]
    assert [c.columns for c in plan.components if c.name == "unmodelled"] == [["unit", "n"]]
