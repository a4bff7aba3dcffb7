"""Measured dependence between columns, and the components + precedence DAG the coordinator derives from it.

Dependence of a column pair, each in [0, 1]:
- categorical × categorical: Cramér's V;
- categorical × numeric: the correlation ratio η (share of the numeric's variance explained by the category);
- numeric × numeric: |Spearman ρ| (monotone relations, robust to skew).
Numbers with few distinct values count as numeric; datetimes as seconds; text, id and constant columns are
left out (a constant depends on nothing and tells nothing about the others).

Components are the connected groups of the graph whose edges are pairs with dependence ≥ ``group_threshold``
(strongly related columns are generated together). Components are ordered coarse → fine — fewest
distinct values first, since a category conditions a number better than the reverse — and an edge
earlier → later is added when any cross pair reaches ``edge_threshold``. Order plus edges is acyclic by
construction.

Example:
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> g = rng.choice(["a", "b"], 400)
    >>> df = pd.DataFrame({"g": g, "v": np.where(g == "a", 0, 10) + rng.normal(size=400), "n": rng.normal(size=400)})
    >>> correlation_ratio(df["g"], df["v"]) > 0.95
    True
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tabline.agents.plan import Component, Plan
from tabline.schema import Schema, _datetime_seconds, _to_datetime

_UNPROFILED = ("text", "id", "constant")


def _with_missing(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), "\x00missing")


def cramers_v(x: pd.Series, y: pd.Series) -> float:
    """Cramér's V of two categorical Series (missing values count as a category)."""
    table = pd.crosstab(_with_missing(x), _with_missing(y)).to_numpy(dtype=float)  # (r, c)
    n = table.sum()
    if n == 0 or min(table.shape) < 2:
        return 0.0
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n  # (r, c)
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * (min(table.shape) - 1))))


def correlation_ratio(categories: pd.Series, values: pd.Series) -> float:
    """η = sqrt(between-group variance / total variance) of ``values`` grouped by ``categories``."""
    frame = pd.DataFrame({"c": _with_missing(categories).astype(str), "v": values}).dropna()
    total = float(((frame.v - frame.v.mean()) ** 2).sum())
    if total == 0 or frame.empty:
        return 0.0
    groups = frame.groupby("c").v.agg(["mean", "count"])
    between = float((groups["count"] * (groups["mean"] - frame.v.mean()) ** 2).sum())
    return float(np.sqrt(between / total))


def dependence_matrix(df: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Symmetric (d, d) matrix of pairwise dependence in [0, 1] over the modelled columns (diagonal 1)."""
    cols = [c for c in schema.columns if c.kind not in _UNPROFILED]
    values = {}
    for c in cols:
        s = df[c.name]
        if c.kind == "numeric":
            values[c.name] = pd.to_numeric(s, errors="coerce")
        elif c.kind == "datetime":
            values[c.name] = _datetime_seconds(_to_datetime(s, c.datetime_format))
        else:
            values[c.name] = s.astype(object)
    names = [c.name for c in cols]
    numeric = {c.name for c in cols if c.kind in ("numeric", "datetime")}
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a in numeric and b in numeric:
                rho = values[a].corr(values[b], method="spearman")
                dep = abs(rho) if pd.notna(rho) else 0.0
            elif a in numeric:
                dep = correlation_ratio(values[b], values[a])
            elif b in numeric:
                dep = correlation_ratio(values[a], values[b])
            else:
                dep = cramers_v(values[a], values[b])
            out.loc[a, b] = out.loc[b, a] = float(min(1.0, dep))
    return out


def propose_plan(df: pd.DataFrame, schema: Schema, *, group_threshold: float = 0.8,
                 edge_threshold: float = 0.2) -> Plan:
    """Components (strongly dependent columns together) and a coarse → fine precedence DAG."""
    dep = dependence_matrix(df, schema)
    names = list(dep.index)
    # union-find over pairs above the grouping threshold
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if dep.loc[a, b] >= group_threshold:
                parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    extra = [c.name for c in schema.columns if c.kind in _UNPROFILED]
    distinct = {n: df[n].nunique(dropna=False) for n in names}
    ordered = sorted(groups.values(), key=lambda g: (min(distinct[n] for n in g), names.index(g[0])))
    components: list[Component] = []
    for k, cols in enumerate(ordered):
        deps = [components[j].name for j, earlier in enumerate(ordered[:k])
                if dep.loc[earlier, cols].to_numpy().max() >= edge_threshold]
        best = {f"{a}~{b}": round(float(dep.loc[a, b]), 2) for a in cols for b in cols if a < b}
        components.append(Component(name=f"c{k}_{cols[0]}", columns=cols, depends_on=deps,
                                    rationale=f"pairwise dependence {best}" if best else "single column"))
    if extra:  # text/id/constant columns do not depend on anything the LM makes: their own sampler component
        components.append(Component(name="unmodelled", columns=extra, worker="sampler",
                                    rationale="text, identifier and constant columns are resampled or generated"))
    return Plan(components=components, rationale=(
        f"columns grouped when dependence ≥ {group_threshold}; component A precedes B when a pair across them "
        f"reaches {edge_threshold}; coarse (few distinct values) before fine"))
