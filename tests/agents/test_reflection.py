"""DATE's decision-tree feedback: groups that lower validation accuracy, and only those."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabline.agents.reflection import Reflector
from tabline.schema import Schema


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 10, 600).round(2)
    return pd.DataFrame({"x": x, "z": rng.choice(["u", "v"], 600), "y": np.where(x > 5, "high", "low")})


def test_consistent_rows_give_no_negatives(real):
    ref = Reflector(real, Schema.infer(real), "y", [np.arange(len(real))], seed=0)
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 10, 80).round(2)
    good = pd.DataFrame({"x": x, "z": "u", "y": np.where(x > 5, "high", "low")})
    assert ref.review(0, good) == []


def test_flipped_labels_are_found_in_their_region_only(real):
    # Setup: rows with x < 3 carry the wrong label; rows with x > 7 are right
    ref = Reflector(real, Schema.infer(real), "y", [np.arange(len(real))], seed=0, keep=5)
    rng = np.random.default_rng(3)
    wrong = pd.DataFrame({"x": rng.uniform(0, 3, 150).round(2), "z": "v", "y": "high"})
    right = pd.DataFrame({"x": rng.uniform(7, 10, 40).round(2), "z": "v", "y": "high"})
    # Run
    groups = ref.review(0, pd.concat([wrong, right], ignore_index=True))
    # Assert: every negative group is in the flipped region, predicted "low", with the rows as examples
    assert groups and all(g["label"] == "low" and g["drop"] > 0 for g in groups)
    assert all(r["x"] < 3 for g in groups for r in g["rows"])
    assert sum(g["size"] for g in groups) <= 150


def test_small_arms_and_missing_targets_are_skipped(real):
    ref = Reflector(real, Schema.infer(real), "y", [np.arange(10), np.arange(len(real))], seed=0)
    assert ref.arms[0] is None and ref.review(0, real.head(50)) == []
    assert ref.review(1, real.drop(columns="y").head(50)) == []
