import numpy as np
import pandas as pd
import pytest

from tabline.agents.judges import ClassifierJudge, LabelJudge
from tabline.errors import InvalidArgumentError
from tabline.qc.objective import objective
from tabline.schema import Schema


@pytest.mark.parametrize("smooth", [True, False])
def test_classifier_judge_scores_fakes_low(diamonds, smooth):
    real = diamonds.iloc[:1500].reset_index(drop=True)
    fake = real.copy()
    fake["price"] = fake["price"].sample(frac=1, random_state=0).to_numpy()  # break price ~ carat
    judge = ClassifierJudge(Schema.infer(diamonds), smooth=smooth).fit(real.iloc[:1000], fake.iloc[:1000])
    real_scores, fake_scores = judge.score(real.iloc[1000:]), judge.score(fake.iloc[1000:])
    # the small default model is less sure of itself than the full one, so its scores are closer together
    assert fake_scores.mean() < real_scores.mean() - 0.15
    assert ((0 <= fake_scores) & (fake_scores <= 1)).all()
    assert judge.phi(fake.iloc[1000:]).mean() < 0.35 < 0.65 < judge.phi(real.iloc[1000:]).mean()


def test_label_judge_flags_wrong_labels(diamonds):
    schema = Schema.infer(diamonds)
    judge = LabelJudge(schema, "cut").fit(diamonds.iloc[:3000])
    rows = diamonds.iloc[3000:3400].reset_index(drop=True)
    wrong = rows.copy()
    wrong["cut"] = rows["cut"].map({"Ideal": "Fair", "Premium": "Fair", "Very Good": "Ideal", "Good": "Ideal", "Fair": "Ideal"})
    right_s, wrong_s = judge.scores(rows), judge.scores(wrong)
    assert right_s["confidence"].mean() > wrong_s["confidence"].mean() + 0.2
    kept = objective({**right_s}, {"confidence": 0.8, "certainty": 0.2}).passed.mean()
    kept_wrong = objective({**wrong_s}, {"confidence": 0.8, "certainty": 0.2}).passed.mean()
    assert kept > kept_wrong


def test_label_judge_needs_a_categorical_target(diamonds):
    with pytest.raises(InvalidArgumentError, match="'price' is numeric"):
        LabelJudge(Schema.infer(diamonds), "price")
