"""DATE's decision-tree feedback ("reflection"): which generated rows made the data worse, and why.

Per arm, a shallow tree is fit on half of the arm's real rows (the other half validates it). After a
batch, every accepted generated row gets the tree's leaf (a readable path of rules) and predicted label.
Rows are grouped by leaf; a group is added to the real training half and the tree refit: a group whose
addition *lowers* validation accuracy (R² for a numeric target) is a negative example — its path, the
label the tree expects there, and a couple of its rows go into the next prompt of the LLM workers.
Offline this is measurement only; it steers generation when a worker is an LLM.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 10, 400).round(2)
    >>> real = pd.DataFrame({"x": x, "y": np.where(x > 5, "high", "low")})
    >>> ref = Reflector(real, Schema.infer(real), "y", [np.arange(400)], seed=0)
    >>> wrong = pd.DataFrame({"x": rng.uniform(6, 10, 40).round(2), "y": "low"})  # labels flipped
    >>> bad = ref.review(0, wrong)
    >>> bad[0]["label"], bad[0]["path"], bad[0]["drop"] > 0
    ('high', '`x` > 5...', True)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from tabline.agents.judges import RowEncoder
from tabline.agents.llm.table import records
from tabline.agents.partitions import _leaf_rules
from tabline.schema import Schema


class Reflector:
    """Trees per arm, fit once on the real rows; `review` turns a batch into negative examples."""

    def __init__(self, real: pd.DataFrame, schema: Schema, target: str, members: list[np.ndarray], *,
                 seed: int = 0, max_depth: int = 4, min_group: int = 5, keep: int = 3):
        self.target, self.seed, self.max_depth = target, seed, max_depth
        self.min_group, self.keep = min_group, keep
        self.classify = schema.column(target).kind in ("categorical", "boolean")
        self.encoder = RowEncoder(schema, exclude=(target,)).fit(real)
        self.arms: list[dict[str, Any] | None] = []
        rng = np.random.default_rng(seed)
        for rows in members:
            part = real.iloc[rows]
            if len(part) < 20 or part[target].nunique() < 2:
                self.arms.append(None)  # too small to say anything
                continue
            order = rng.permutation(len(part))
            half = len(part) // 2
            train, val = part.iloc[order[:half]], part.iloc[order[half:]]
            x_train, y_train = self._x(train), self._y(train)
            x_val, y_val = self._x(val), self._y(val)
            tree = self._tree().fit(x_train, y_train)
            self.arms.append({"x": x_train, "y": y_train, "x_val": x_val, "y_val": y_val, "tree": tree,
                              "base": tree.score(x_val, y_val), "rules": _leaf_rules(tree, self.encoder)})

    def _tree(self):
        cls = DecisionTreeClassifier if self.classify else DecisionTreeRegressor
        return cls(max_depth=self.max_depth, random_state=self.seed)

    def _x(self, frame: pd.DataFrame) -> np.ndarray:
        x = self.encoder.transform(frame)  # (rows, F)
        return np.nan_to_num(x, nan=-1.0)

    def _y(self, frame: pd.DataFrame) -> np.ndarray:
        y = frame[self.target]
        return y.astype(str).to_numpy() if self.classify else pd.to_numeric(y, errors="coerce").fillna(0).to_numpy()

    def review(self, arm: int, rows: pd.DataFrame) -> list[dict[str, Any]]:
        """Negative groups of ``rows`` (generated rows of ``arm``), worst first, at most ``keep``: each with
        ``path`` (the leaf's rule), ``label`` (what the tree predicts there), ``drop`` (validation score
        lost when the group joins the training rows), ``size`` and two example ``rows``."""
        state = self.arms[arm] if arm < len(self.arms) else None
        if state is None or self.target not in rows.columns or len(rows) < self.min_group:
            return []
        rows = rows[rows[self.target].notna()]
        x, y = self._x(rows), self._y(rows)
        leaves = state["tree"].apply(x)  # (rows,)
        out = []
        for leaf in np.unique(leaves):
            mask = leaves == leaf
            if mask.sum() < self.min_group:
                continue
            tree = self._tree().fit(np.vstack([state["x"], x[mask]]), np.concatenate([state["y"], y[mask]]))
            drop = state["base"] - tree.score(state["x_val"], state["y_val"])
            if drop > 1e-9:
                label = state["tree"].predict(x[mask][:1])[0]
                example = rows[mask].head(2)
                out.append({"path": state["rules"][int(leaf)][0] or "(any row)",
                            "label": label.item() if isinstance(label, np.generic) else label,
                            "drop": round(float(drop), 4), "size": int(mask.sum()), "rows": records(example)})
        return sorted(out, key=lambda g: -g["drop"])[:self.keep]
