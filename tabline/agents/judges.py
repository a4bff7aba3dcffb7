"""Judge agents: score each row of a batch in [0, 1] for the QC objective stage (1 = best).

- `ClassifierJudge` — a gradient-boosted classifier learns real (1) vs synthetic (0); for a new row
  φ = P(real | x) and the score is 1 − 2|0.5 − φ| (`tabline.training.rewards.indistinguishability`).
- `LabelJudge` — CLLM-style label consistency when a target is given: a boosted model trained on the real
  rows; over its boosting stages p_e = P(row's own label | x). Two scores: ``confidence`` = mean_e p_e and
  ``certainty`` = 1 − 4 · mean_e p_e(1 − p_e) (aleatoric uncertainty mapped onto [0, 1]; CLLM's τ_a = 0.2
  is certainty ≥ 0.2, its τ_c = 0.2 is confidence ≥ 0.8).

Judges encode rows with codes fixed at fit time, so a batch scored later reads the same features.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> rng = np.random.default_rng(0)
    >>> real = pd.DataFrame({"x": rng.normal(size=400).round(3), "c": rng.choice(["a", "b"], 400)})
    >>> fake = pd.DataFrame({"x": (rng.normal(size=400) + 6).round(3), "c": rng.choice(["a", "b"], 400)})
    >>> judge = ClassifierJudge(Schema.infer(real)).fit(real, fake)
    >>> bool(judge.phi(real.head(50)).mean() > 0.9 > 0.1 > judge.phi(fake.head(50)).mean())
    True
    >>> bool(judge.score(fake.head(50)).mean() < 0.2)  # obvious fakes score low (so would "too real" rows)
    True
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from tabline.agents.roles import Judgement
from tabline.errors import InvalidArgumentError
from tabline.eval.features import category_keys, model_columns, numbers
from tabline.eval.models import boosted_model
from tabline.schema import Schema
from tabline.training.rewards import cllm_scores, indistinguishability


class RowEncoder:
    """Numbers as floats, categories as codes learnt from the fit table (unknown → NaN)."""

    def __init__(self, schema: Schema, exclude: tuple[str, ...] = ()):
        self.columns = model_columns(schema, exclude=exclude)
        self.codes: dict[str, pd.Series] = {}

    def fit(self, df: pd.DataFrame) -> "RowEncoder":
        for col in self.columns:
            if col.kind not in ("numeric", "datetime"):
                order = category_keys(df[col.name]).value_counts().index
                self.codes[col.name] = pd.Series(np.arange(len(order), dtype=float), index=order)
        return self

    @property
    def categorical(self) -> np.ndarray:
        return np.array([c.name in self.codes and len(self.codes[c.name]) <= 255 for c in self.columns])

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        cols = [numbers(df[c.name], c) if c.name not in self.codes
                else category_keys(df[c.name]).map(self.codes[c.name]).to_numpy(dtype=float, na_value=np.nan)
                for c in self.columns]
        return np.column_stack(cols) if cols else np.empty((len(df), 0))  # (rows, features)


class ClassifierJudge:
    """Scores how indistinguishable a row is from real rows. Fit on real and synthetic rows, then `score`.
    As the line's judge (`judge`): with ``mode="ratio"`` the acceptance probability of rejection sampling
    (`accept`, after `calibrate`), with ``mode="score"`` the indistinguishability score."""

    name = "classifier"

    def __init__(self, schema: Schema, *, seed: int = 0, max_rows: int = 5000, mode: str = "score",
                 smooth: bool = True):
        self.schema, self.seed, self.max_rows, self.mode, self.smooth = schema, seed, max_rows, mode, smooth
        self.encoder = RowEncoder(schema)
        self.model = None

    def fit(self, real: pd.DataFrame, synthetic: pd.DataFrame) -> "ClassifierJudge":
        rng = np.random.default_rng(self.seed)
        n = min(len(real), len(synthetic), self.max_rows)
        if n < 2:
            raise InvalidArgumentError(f"the classifier judge needs at least 2 real and 2 synthetic rows, got {n}")
        real = real.iloc[rng.choice(len(real), n, replace=False)]
        synthetic = synthetic.iloc[rng.choice(len(synthetic), n, replace=False)]
        self.encoder.fit(pd.concat([real, synthetic], ignore_index=True))
        x = np.vstack([self.encoder.transform(real), self.encoder.transform(synthetic)])  # (2n, F)
        y = np.r_[np.ones(n, dtype=int), np.zeros(n, dtype=int)]  # (2n,)
        make = smooth_classifier if self.smooth else boosted_model
        self.model = make("classification", y, self.encoder.categorical, seed=self.seed).fit(x, y)
        return self

    def phi(self, batch: pd.DataFrame) -> pd.Series:
        """P(real | x) per row."""
        return pd.Series(self.model.predict_proba(self.encoder.transform(batch))[:, 1], index=batch.index)

    def score(self, batch: pd.DataFrame) -> pd.Series:
        return pd.Series(indistinguishability(self.phi(batch).to_numpy()), index=batch.index)

    def judge(self, batch: pd.DataFrame) -> Judgement:
        return Judgement({self.name: self.accept(batch) if self.mode == "ratio" else self.score(batch)})

    def calibrate(self, synthetic: pd.DataFrame, quantile: float = 0.95) -> "ClassifierJudge":
        """Set M, the density-ratio cap of `accept`, to a quantile of r = φ/(1 − φ) over ``synthetic``."""
        self.cap = float(np.quantile(density_ratio(self.phi(synthetic).to_numpy()), quantile))
        return self

    def accept(self, batch: pd.DataFrame) -> pd.Series:
        """Discriminator rejection sampling (Azadi et al., 2019): keeping a row with probability
        min(1, r / M), r = φ/(1 − φ) ≈ p_real(x)/p_synthetic(x), moves the kept rows toward the real
        distribution. Measured on the demo table: C2ST AUC 0.689 → 0.571 at 52 % yield (M = 95th percentile)."""
        r = density_ratio(self.phi(batch).to_numpy())  # (B,)
        return pd.Series(np.minimum(1.0, r / max(getattr(self, "cap", 1.0), 1e-12)), index=batch.index)


def smooth_classifier(task: str, y: np.ndarray, categorical: np.ndarray, *, seed: int) -> HistGradientBoostingClassifier:
    """The classifier judge's default model: boosted trees kept small (8 leaves, at least 100 rows per leaf,
    L2 penalty, early stopping on a 10 % slice).

    Why small: the judge is fitted on the training rows, and an LM fitted on the same rows already copies
    their fine-grained quirks; a full-size classifier then learns those quirks too and steers the line
    towards the training sample rather than the population. Measured against the holdout on the five
    development tables (benchmarks/RESULTS.md, "line13"), it rejects fewer rows (QC yield 0.79-0.87 by table
    instead of 0.72-0.82) but gains less C2ST over plain sampling (median -0.006 instead of -0.016).

    Example:
        >>> smooth_classifier("classification", np.array([0, 1] * 100), np.array([False]), seed=0).max_leaf_nodes
        8
    """
    return HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None, max_leaf_nodes=8, min_samples_leaf=100,
        learning_rate=0.05, max_iter=300, l2_regularization=1.0, early_stopping=True, random_state=seed)


def density_ratio(phi: np.ndarray) -> np.ndarray:
    """r = φ / (1 − φ) with φ clipped away from 0 and 1; (B,) -> (B,).

    Example:
        >>> density_ratio(np.array([0.5, 0.8])).round(3).tolist()
        [1.0, 4.0]
    """
    phi = np.clip(np.asarray(phi, float), 1e-6, 1 - 1e-6)
    return phi / (1.0 - phi)


class LabelJudge:
    """CLLM label consistency of ``target`` given the other columns, learnt from real rows."""

    name = "labels"

    def __init__(self, schema: Schema, target: str, *, seed: int = 0):
        col = schema.column(target)
        if col.kind not in ("categorical", "boolean"):
            raise InvalidArgumentError(f"the label judge needs a categorical or boolean target; {target!r} is {col.kind}")
        self.schema, self.target, self.seed = schema, target, seed
        self.encoder = RowEncoder(schema, exclude=(target,))
        self.model = None
        self.classes: pd.Series | None = None

    def fit(self, real: pd.DataFrame) -> "LabelJudge":
        labels = category_keys(real[self.target])
        self.classes = pd.Series(np.arange(labels.nunique()), index=sorted(labels.dropna().unique()))
        y = labels.map(self.classes).to_numpy()
        keep = ~pd.isna(y)
        x = self.encoder.fit(real).transform(real)[keep]
        self.model = boosted_model("classification", y[keep].astype(int), self.encoder.categorical, seed=self.seed)
        self.model.fit(x, y[keep].astype(int))
        return self

    def scores(self, batch: pd.DataFrame) -> dict[str, pd.Series]:
        """``confidence`` and ``certainty`` per row (a label the real data never had scores 0 on both)."""
        x = self.encoder.transform(batch)
        staged = np.stack(list(self.model.staged_predict_proba(x)))  # (E, B, C)
        y = category_keys(batch[self.target]).map(self.classes)
        known = y.notna().to_numpy()
        conf, alea = cllm_scores(staged, np.where(known, y.fillna(0).to_numpy(), 0).astype(int))
        conf, certainty = np.where(known, conf, 0.0), np.where(known, 1.0 - 4.0 * alea, 0.0)
        return {"confidence": pd.Series(conf, index=batch.index), "certainty": pd.Series(certainty, index=batch.index)}

    def judge(self, batch: pd.DataFrame) -> Judgement:
        return Judgement({f"{self.name}.{k}": v for k, v in self.scores(batch).items()})


class RuleJudge:
    """Share of the schema's constraints (cross-column rules) each row keeps; 1.0 when there are none.

    Example:
        >>> import pandas as pd
        >>> from tabline.schema import Schema
        >>> schema = Schema.infer(pd.DataFrame({"lo": [1, 2], "hi": [3, 4]})).model_copy(update={"constraints": ["lo <= hi"]})
        >>> RuleJudge(schema).score(pd.DataFrame({"lo": [1, 5], "hi": [3, 4]})).tolist()
        [1.0, 0.0]
    """

    name = "rules"

    def __init__(self, schema: Schema):
        self.schema = schema

    def score(self, batch: pd.DataFrame) -> pd.Series:
        checks = self.schema.check_constraints(batch)
        if not checks:
            return pd.Series(1.0, index=batch.index)
        return pd.DataFrame(checks).astype(float).mean(axis=1).set_axis(batch.index)

    def judge(self, batch: pd.DataFrame) -> Judgement:
        return Judgement({self.name: self.score(batch)})
