"""Utility: is a model trained on the synthetic table as good on real data as one trained on real data?

TSTR (train on synthetic, test on real) fits a gradient-boosted model on the synthetic table and scores it
on the holdout; TRTR (train on real, test on real) fits the same model on train: the ceiling. A categorical
or boolean target is a classification task (primary metric: accuracy; macro-F1 reported beside it, as it
punishes a generator that drops rare classes); a numeric target is regression (metric: R²). An integer
column with a handful of values is still regression: mark it categorical in the schema to classify it.

Example:
    >>> import numpy as np
    >>> x = np.arange(100, dtype=float)[:, None]
    >>> y = np.where(x[:, 0] >= 50, "big", "small")
    >>> p = fit_predict(x, y, x, task="classification", categorical=np.array([False]), seed=0)
    >>> task_scores(y, p, task="classification", train_rows=100).accuracy
    1.0
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, r2_score

from tabline.eval.features import category_keys, model_columns, numbers, subsample, tree_features
from tabline.eval.models import Task, boosted_model
from tabline.eval.report import Utility, UtilityScores, finite
from tabline.schema import Schema

def task_of(schema: Schema, target: str) -> Task:
    """Classification for categorical/boolean targets, regression for numeric ones."""
    return "classification" if schema.column(target).kind in ("categorical", "boolean") else "regression"


def utility(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: Schema,
    target: str,
    *,
    seed: int,
    max_rows: int,
) -> Utility:
    """TSTR and TRTR of ``target`` on the holdout; rows with a missing target are left out of every table."""
    task = task_of(schema, target)
    col = schema.column(target)
    rng = np.random.default_rng(seed)
    tables = [subsample(df[df[target].notna()], max_rows, rng) for df in (synthetic, train, holdout)]
    (x_syn, x_train, x_test), categorical = tree_features(tables, model_columns(schema, exclude=(target,)))
    y_syn, y_train, y_test = (
        category_keys(df[target]).to_numpy(dtype=object) if task == "classification" else numbers(df[target], col)
        for df in tables
    )
    tstr = _train_and_score(x_syn, y_syn, x_test, y_test, task, categorical, seed)
    trtr = _train_and_score(x_train, y_train, x_test, y_test, task, categorical, seed)
    metric = "accuracy" if task == "classification" else "r2"
    top, ceiling = getattr(tstr, metric), getattr(trtr, metric)
    ratio = finite(top / ceiling) if top is not None and ceiling is not None and ceiling > 0 else None
    return Utility(synthetic=tstr, ceiling=trtr, target=target, task=task, metric=metric, ratio=ratio)


def _train_and_score(x_train, y_train, x_test, y_test, task: Task, categorical, seed: int) -> UtilityScores:
    keep = ~pd.isna(y_train)  # a numeric target that did not parse is NaN after coercion
    x_train, y_train = x_train[keep], y_train[keep]
    if len(y_train) == 0:
        return UtilityScores(train_rows=0)
    pred = fit_predict(x_train, y_train, x_test, task=task, categorical=categorical, seed=seed)
    return task_scores(y_test, pred, task=task, train_rows=len(y_train))


def fit_predict(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, task: Task, categorical: np.ndarray, seed: int
) -> np.ndarray:
    """Fit a gradient-boosted model and predict ``x_test``. With one class, one value or no features there is
    nothing to learn: predict the most frequent class / the mean, as any model would."""
    if x_train.shape[1] == 0 or len(pd.unique(y_train)) < 2:
        constant = pd.Series(y_train).mode().iloc[0] if task == "classification" else float(np.mean(y_train))
        return np.full(len(x_test), constant, dtype=object if task == "classification" else float)
    return boosted_model(task, y_train, categorical, seed=seed).fit(x_train, y_train).predict(x_test)


def task_scores(y_true: np.ndarray, y_pred: np.ndarray, *, task: Task, train_rows: int) -> UtilityScores:
    """Accuracy and macro-F1 (classes never predicted score F1 = 0), or R², of predictions on the holdout."""
    if task == "classification":
        y_true, y_pred = y_true.astype(str), y_pred.astype(str)
        return UtilityScores(
            accuracy=finite(accuracy_score(y_true, y_pred)),
            macro_f1=finite(f1_score(y_true, y_pred, average="macro", zero_division=0)),
            train_rows=train_rows,
        )
    r2 = r2_score(y_true, y_pred) if len(y_true) >= 2 else None  # R² of one point is undefined
    return UtilityScores(r2=finite(r2), train_rows=train_rows)
