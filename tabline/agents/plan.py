"""The coordinator's `Plan`: columns split into components, a precedence DAG over them, and the arms.

A plan is checked once, before anything runs, against the table's schema; every problem is reported at
once, worded for the person who wrote the plan (T²'s task manager, a user's team file, or an LLM whose
answer is fed back the errors on retry).

Example:
    >>> from tabline.schema import Column, Schema
    >>> schema = Schema(columns=[Column(name=n, kind="numeric", dtype="int") for n in ("a", "b", "c")])
    >>> plan = Plan(components=[Component(name="base", columns=["a"]),
    ...                         Component(name="rest", columns=["b", "c"], depends_on=["base"])])
    >>> plan.check(schema)
    >>> plan.levels()
    [['base'], ['rest']]
"""
from __future__ import annotations

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from tabline.errors import TablineError
from tabline.schema import Schema


class InvalidPlanError(TablineError):
    """A plan breaks a structural rule (exact cover, known names, acyclic precedence)."""


class Component(BaseModel):
    """A group of columns filled together by one worker, after the components it depends on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    depends_on: list[str] = []
    worker: str = "lm"  # which worker kind fills it; the team resolves the name
    rationale: str = ""


class Arm(BaseModel):
    """A data partition the bandit can choose (DATE): rows of the real table matching ``rule``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    rule: str = ""  # pandas query over the real table; "" = every row
    size: int = Field(0, ge=0)  # real rows in the partition


class Plan(BaseModel):
    """Components with a precedence DAG, plus arms. Build with the coordinator or by hand; then `check`."""

    model_config = ConfigDict(extra="forbid")

    components: list[Component] = Field(min_length=1)
    arms: list[Arm] = [Arm(name="all")]
    rationale: str = ""

    def problems(self, schema: Schema) -> list[str]:
        """Every structural problem, one sentence each ("plan: ..."); empty when the plan is valid."""
        out = []
        names = [c.name for c in self.components]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            out.append(f"plan: component name {dup!r} is used more than once")
        owner: dict[str, str] = {}
        for comp in self.components:
            for col in comp.columns:
                if col not in schema.names:
                    out.append(f"plan: component {comp.name!r} names unknown column {col!r}")
                elif col in owner and owner[col] != comp.name:
                    out.append(f"plan: column {col!r} is owned by both {owner[col]!r} and {comp.name!r}")
                owner.setdefault(col, comp.name)
            for dep in comp.depends_on:
                if dep == comp.name:
                    out.append(f"plan: component {comp.name!r} depends on itself")
                elif dep not in names:
                    out.append(f"plan: component {comp.name!r} depends on unknown component {dep!r}")
        orphans = [c for c in schema.names if c not in owner]
        if orphans:
            out.append(f"plan: column(s) {orphans} belong to no component")
        try:
            cycle = nx.find_cycle(self.graph())
        except nx.NetworkXNoCycle:
            cycle = None
        if cycle:
            path = " → ".join([edge[0] for edge in cycle] + [cycle[0][0]])
            out.append(f"plan: the components' dependencies form a cycle: {path}")
        arm_names = [a.name for a in self.arms]
        for dup in sorted({n for n in arm_names if arm_names.count(n) > 1}):
            out.append(f"plan: arm name {dup!r} is used more than once")
        return out

    def check(self, schema: Schema) -> None:
        """Raise `InvalidPlanError` listing every problem; return None for a valid plan."""
        problems = self.problems(schema)
        if problems:
            raise InvalidPlanError(f"{len(problems)} problem(s): " + "; ".join(problems) if len(problems) > 1
                                   else problems[0])

    def graph(self) -> nx.DiGraph:
        """Edge parent → child for every dependency (self-loops and unknown names left out)."""
        g = nx.DiGraph()
        names = {c.name for c in self.components}
        g.add_nodes_from(c.name for c in self.components)
        g.add_edges_from((d, c.name) for c in self.components for d in c.depends_on if d in names and d != c.name)
        return g

    def levels(self) -> list[list[str]]:
        """Components in precedence order, grouped so that each group's members may run side by side."""
        return [sorted(level) for level in nx.topological_generations(self.graph())]

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def parents_columns(self, name: str) -> list[str]:
        """Columns produced by every ancestor of component ``name`` (what its worker is conditioned on)."""
        ancestors = nx.ancestors(self.graph(), name)
        return [col for c in self.components if c.name in ancestors for col in c.columns]
