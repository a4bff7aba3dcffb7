"""Values written with many decimals (float32 artifacts, long ratios) come out exactly as the column holds them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.schema import Schema
from tabline.training import TabularLM, TabularLMConfig

# float32 values printed as float64: 14 decimals, as a real export writes them
ARTIFACTS = [3.09999990463257, 1.20000004768372, 0.300000011920929, 7.69999980926514]


def test_float32_artifacts_keep_every_decimal_in_the_schema():
    schema = Schema.infer(pd.DataFrame({"x": ARTIFACTS * 5}))
    assert schema.column("x").decimals == 15  # 0.300000011920929 needs all 15
    assert schema.format(pd.DataFrame({"x": ARTIFACTS}))["x"].tolist() == ARTIFACTS


def test_sampled_values_of_a_few_valued_column_are_values_it_holds():
    # Setup: a few-valued column of 14-decimal values beside a categorical one
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.choice(ARTIFACTS, 300), "g": rng.choice(["a", "b"], 300)})
    lm = TabularLM(TabularLMConfig(n_layer=1, n_embd=32, max_epochs=2, seed=0)).fit(df, progress=False)
    # Run
    out = lm.sample(300, seed=1)
    # Assert: no value was re-rounded into one the column never held
    assert set(out["x"]) <= set(ARTIFACTS), set(out["x"]) - set(ARTIFACTS)
