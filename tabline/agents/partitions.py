"""DATE's partitions: homogeneous subsets of the real table that become the bandit's arms.

- With a categorical target: the leaves of a decision tree predicting the target (rows in a leaf share a
  label mix and a region of the features).
- Without one: k-means clusters of the rows (on the evaluation's distance features), each then described
  by a surrogate decision tree on the original columns, so every arm is a readable rule.

Each leaf holds at least ``min_rows`` real rows and there are at most ``max_arms`` leaves. Membership is the
tree's leaf, so the arms cover every row exactly once (missing numbers are routed like the median; the
readable rule says so only implicitly). The rule's columns are the arm's **anchors**: generation for an
arm starts from anchor values drawn from the arm's real rows.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=600).round(2), "g": rng.choice(["a", "b", "c"], 600)})
    >>> df["y"] = np.where(df.x > 0.5, "hi", "lo")
    >>> parts = partition(df, Schema.infer(df), target="y", max_arms=2, min_rows=50, seed=0)
    >>> [(p.rule, p.size) for p in parts.arms]
    [('`x` <= 0.505', 419), ('`x` > 0.505', 181)]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.tree import DecisionTreeClassifier

from tabline.agents.judges import RowEncoder
from tabline.agents.plan import Arm
from tabline.eval.features import distance_features, model_columns
from tabline.schema import Schema


@dataclass
class Partitions:
    """Arms, which real rows (positions) belong to each, and each arm's anchor columns."""

    arms: list[Arm]
    members: list[np.ndarray]
    anchors: list[list[str]] = field(default_factory=list)
    method: str = "none"


def single_arm(n_rows: int) -> Partitions:
    """Everything in one arm (no partitioning)."""
    return Partitions([Arm(name="all", rule="", size=n_rows)], [np.arange(n_rows)], [[]], "none")


def partition(df: pd.DataFrame, schema: Schema, *, target: str | None, max_arms: int = 6, min_rows: int = 50,
              method: str = "auto", seed: int = 0) -> Partitions:
    """Split the real rows into at most ``max_arms`` arms of at least ``min_rows`` rows."""
    n = len(df)
    if method == "none" or max_arms < 2 or n < 2 * min_rows:
        return single_arm(n)
    if method == "auto":
        method = "tree" if target is not None and schema.column(target).kind in ("categorical", "boolean") else "cluster"
    exclude = (target,) if target is not None else ()
    encoder = RowEncoder(schema, exclude=exclude).fit(df)
    if not encoder.columns:
        return single_arm(n)
    x = encoder.transform(df)  # (n, F)
    x = np.where(np.isnan(x), np.nanmedian(np.where(np.isnan(x), np.nan, x), axis=0), x)
    x = np.nan_to_num(x, nan=-1.0)
    if method == "tree":
        y = df[target].astype(str).to_numpy()
    else:
        cols = model_columns(schema)
        typed = schema.coerce(df[schema.names])
        feats = distance_features([typed], cols, typed)[0]
        y = KMeans(n_clusters=max_arms, n_init=3, random_state=seed).fit_predict(feats)
    tree = DecisionTreeClassifier(max_leaf_nodes=max_arms, min_samples_leaf=min_rows, random_state=seed).fit(x, y)
    leaves = tree.apply(x)  # (n,)
    ids = sorted(np.unique(leaves))
    rules = _leaf_rules(tree, encoder)
    arms, members, anchors = [], [], []
    for k, leaf in enumerate(ids):
        rows = np.flatnonzero(leaves == leaf)
        text, cols = rules[leaf]
        arms.append(Arm(name=f"arm{k}", rule=text, size=len(rows)))
        members.append(rows)
        anchors.append(cols)
    return Partitions(arms, members, anchors, method)


def _leaf_rules(tree: DecisionTreeClassifier, encoder: RowEncoder) -> dict[int, tuple[str, list[str]]]:
    """Readable rule per leaf: numeric ranges and category sets along the path, merged per column."""
    t = tree.tree_
    out: dict[int, tuple[str, list[str]]] = {}

    def walk(node: int, bounds: dict[int, tuple[float, float]]) -> None:
        if t.children_left[node] == -1:
            out[node] = _describe(bounds, encoder)
            return
        f, thr = int(t.feature[node]), float(t.threshold[node])
        lo, hi = bounds.get(f, (-np.inf, np.inf))
        walk(int(t.children_left[node]), {**bounds, f: (lo, min(hi, thr))})
        walk(int(t.children_right[node]), {**bounds, f: (max(lo, thr), hi)})

    walk(0, {})
    return out


def _describe(bounds: dict[int, tuple[float, float]], encoder: RowEncoder) -> tuple[str, list[str]]:
    parts, cols = [], []
    for f in sorted(bounds):
        col = encoder.columns[f]
        lo, hi = bounds[f]
        name = f"`{col.name}`"
        cols.append(col.name)
        if col.name in encoder.codes:  # category codes: the rule is the set of categories in range
            codes = encoder.codes[col.name]
            keep = [k for k, v in codes.items() if lo < v <= hi]
            parts.append(f"{name} in {keep!r}")
        else:
            if lo > -np.inf:
                parts.append(f"{name} > {lo:.6g}")
            if hi < np.inf:
                parts.append(f"{name} <= {hi:.6g}")
    return " and ".join(parts), cols
