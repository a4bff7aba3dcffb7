import numpy as np
import pandas as pd
import pytest

from tabline.agents.workers import ExpressionWorker, LMWorker, SamplerWorker, detect_expressions
from tabline.errors import InvalidSchemaError


def test_detect_expressions_finds_derived_columns_only():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"price": rng.integers(1, 100, 200).astype(float), "qty": rng.integers(1, 9, 200)})
    df["total"] = df["price"] * df["qty"]
    df["margin"] = df["total"] - 5.0 * df["qty"]  # not a two-column relation with an existing column
    df["noise"] = rng.normal(size=200)
    assert detect_expressions(df) == ["total = price * qty"]


def test_expression_worker_computes_in_order_and_names_mistakes():
    worker = ExpressionWorker(["total = price * qty", "with_tax = total * 1.2"])
    out = worker.fill(pd.DataFrame({"price": [10.0, 2.0], "qty": [3, 5]}, index=[7, 9])).frame
    assert out.index.tolist() == [7, 9] and out["with_tax"].tolist() == pytest.approx([36.0, 12.0])
    with pytest.raises(InvalidSchemaError, match="must look like"):
        ExpressionWorker(["price times qty"])
    with pytest.raises(InvalidSchemaError, match="cannot be computed"):
        ExpressionWorker(["t = price * weight"]).fill(pd.DataFrame({"price": [1.0]}))


def test_sampler_worker_keeps_real_combinations(diamonds):
    worker = SamplerWorker(diamonds, ["x", "y", "z"])
    out = worker.fill(pd.DataFrame(index=range(50)), seed=1).frame
    real = set(map(tuple, diamonds[["x", "y", "z"]].to_numpy()))
    assert all(tuple(r) in real for r in out.to_numpy())
    assert out.equals(worker.fill(pd.DataFrame(index=range(50)), seed=1).frame)


def test_lm_worker_conditions_on_the_parents(tiny_lm, diamonds):
    parents = diamonds.iloc[:40][["cut", "color"]].reset_index(drop=True).set_axis(range(100, 140))
    out = LMWorker(tiny_lm, ["price", "carat"]).fill(parents, seed=0).frame
    assert out.index.tolist() == list(range(100, 140)) and list(out.columns) == ["price", "carat"]
    full = pd.concat([parents, out], axis=1).reindex(columns=tiny_lm.schema.names)
    assert tiny_lm.schema.check(full)[["price", "carat"]].all().all()


def test_lm_worker_redraws_copies_of_training_rows_when_it_makes_whole_rows():
    from tabline.training import TabularLM, TabularLMConfig

    rng = np.random.default_rng(0)
    real = pd.DataFrame({c: rng.choice(["a", "b", "c"], 120) for c in "pqrs"})  # 81 combinations, ~60 seen
    lm = TabularLM(TabularLMConfig(n_layer=1, n_embd=32, max_epochs=8, seed=0, batch_size=32)).fit(real, progress=False)
    raw = lm.sample(400, seed=3, columns=list("pqrs"))  # partial-row path: no copy guard
    out = LMWorker(lm, list("pqrs")).fill(pd.DataFrame(index=range(400)), seed=3).frame
    raw_copies, out_copies = lm.guard.copies(raw).mean(), lm.guard.copies(out).mean()
    assert raw_copies > 0.3  # the table makes copies common, so the check below can fail
    assert out_copies < 0.25 * raw_copies
    assert list(out.columns) == list("pqrs") and len(out) == 400
