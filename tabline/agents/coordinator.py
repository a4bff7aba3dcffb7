"""The coordinator agent (T²'s task manager + DATE's partitioner), offline and measured.

`Coordinator.fit` profiles the real table once and returns a validated `Plan`:
1. columns the team gives their own worker (``workers: {notes: {kind: llm}}``) get a component each; a
   python worker (your function) gets one named after it, after the components making the columns it
   ``depends_on`` (by default after every built-in worker: it reads the whole row);
2. derived columns (``total = price * qty``) found by `detect_expressions` get an expression component
   after the components holding their inputs;
3. the rest are split by measured dependence (`propose_plan`: Cramér's V / η / Spearman) into components
   with a coarse → fine precedence DAG; the team's ``depends_on`` hints add edges (a hint that closes a
   cycle is reported as one);
4. with ``fuse_lm`` (default) every LM component becomes one LM station — the LM models them jointly and
   one call is cheaper than several — unless that would close a cycle with another worker;
5. the arms: DATE partitions of the real rows (`partition`), or the team's hand-written rules.

`Coordinator.turn` is what it does every batch: ask the bandit for an arm (arms past their quota are
closed), then the evolvers for conditions; when none proposes, the batch starts from the arm's anchors.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.schema import Schema
    >>> from tabline.agents.team import Team
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"price": rng.integers(1, 9, 300), "qty": rng.integers(1, 5, 300)})
    >>> df["total"] = df.price * df.qty
    >>> coord = Coordinator(Team()).fit(df, Schema.infer(df))
    >>> [(c.name, c.columns, c.worker, c.depends_on) for c in coord.plan.components]
    [('lm', ['qty', 'price'], 'lm', []), ('expressions', ['total'], 'expression', ['lm'])]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from tabline.agents.bandit import PartitionBandit
from tabline.agents.build import build_evolvers
from tabline.agents.custom_team import build_workers
from tabline.agents.evolvers import Turn
from tabline.agents.partitions import Partitions, partition, single_arm
from tabline.agents.plan import Component, InvalidPlanError, Plan
from tabline.agents.profile import propose_plan
from tabline.agents.roles import Evolver
from tabline.agents.team import Team
from tabline.agents.workers import detect_expressions
from tabline.schema import Schema


@dataclass
class Decision:
    """One turn of the coordinator: the arm to generate for, who set the conditions, and the conditions;
    ``calls`` (evolver name -> its LLM calls) and ``usage`` (their tokens, one entry per evolver that made
    calls) of the evolvers asked."""

    arm: int
    source: str  # "anchors", "none", or an evolver's name
    conditions: pd.DataFrame  # one row per row to make; possibly no columns
    calls: dict[str, list[dict]] = field(default_factory=dict)
    usage: list[dict] = field(default_factory=list)


class Coordinator:
    def __init__(self, team: Team):
        self.team = team
        self.plan: Plan | None = None
        self.partitions: Partitions | None = None
        self.evolvers: list[Evolver] = []
        self.custom_workers: dict = {}  # name -> PythonWorker (the team's kind: python workers)
        self.expressions: list[str] = []
        self.real: pd.DataFrame | None = None
        self.llm_records: list[dict] = []  # the LLM task manager's calls (raw answers kept)
        self.llm_usage: dict | None = None

    # ------------------------------------------------------------------ planning
    def fit(self, real: pd.DataFrame, schema: Schema, *, models: dict | None = None,
            plan: Plan | None = None) -> "Coordinator":
        """Plan, partitions and evolvers from the real rows. ``models``: chat models registered by name.

        ``plan``: a plan made earlier for this table (a resumed run's ``plan.json``): its components are used
        as they are — an LLM task manager is not asked again — and the arms derived now must equal its arms."""
        team, spec = self.team, self.team.coordinator
        team.check(schema, models)
        self.real = real.reset_index(drop=True)
        self.schema = schema
        self.models = models or {}
        self.custom_workers = build_workers(team, schema)
        self.expressions = self._detect_expressions(self.real, schema)
        if plan is not None:
            components = Plan(components=plan.components, rationale=plan.rationale)
        elif spec.components is not None:
            components = Plan(components=spec.components)
        else:
            components = self._derive(self.real, schema)
        if plan is None:
            components = self._with_hints(components)
            components.check(schema)
            if spec.fuse_lm:
                components = _fuse_lm(components)
        self.partitions = self._partitions(self.real, schema)
        self.plan = components.model_copy(update={"arms": self.partitions.arms})
        self.plan.check(schema)
        unknown = [c.name for c in self.plan.components if c.worker == "python" and c.name not in self.custom_workers]
        if unknown:
            raise InvalidPlanError(f"the plan has python worker(s) {unknown} the team does not define; its python "
                                   f"workers are {sorted(self.custom_workers)}")
        if plan is not None and plan.arms != self.plan.arms:
            raise InvalidPlanError("the saved plan's arms differ from the arms derived from the same rows now "
                                   f"({[a.name for a in plan.arms]} vs {[a.name for a in self.plan.arms]}); the run "
                                   "was made by another version of tabline or scikit-learn")
        self.evolvers = build_evolvers(team, self.real, schema, models=self.models)
        return self

    def _own_columns(self, schema: Schema) -> list[str]:
        """Columns a built-in worker other than the LM fills because the team says so (keyed by the column)."""
        team = self.team
        return [c for c in schema.names if c in team.workers and team.workers[c].kind not in ("lm", "python")]

    def _custom_columns(self) -> set[str]:
        return {c for w in self.custom_workers.values() for c in w.columns}

    def _detect_expressions(self, real: pd.DataFrame, schema: Schema) -> list[str]:
        team = self.team
        if not team.coordinator.detect_expressions:
            return []
        own = set(self._own_columns(schema)) | self._custom_columns()
        numeric = [c.name for c in schema.columns if c.kind == "numeric" and c.name not in own]
        return detect_expressions(real[numeric]) if len(numeric) >= 3 else []

    def _derive(self, real: pd.DataFrame, schema: Schema) -> Plan:
        team = self.team
        own = self._own_columns(schema)
        components: list[Component] = []
        for c in own:
            components.append(Component(name=f"worker_{c}", columns=[c], worker=team.workers[c].kind,
                                        rationale="the team gives this column its own worker"))
        for name, w in self.custom_workers.items():
            components.append(Component(name=name, columns=w.columns, worker="python",
                                        rationale=f"your worker {w.ref or name}"))
        derived = [e.split("=")[0].strip() for e in self.expressions]
        taken = set(own) | self._custom_columns() | set(derived)
        rest = [c for c in schema.columns if c.name not in taken]
        if rest:
            sub = Schema(columns=rest)
            base = self._llm_plan(real, schema, sub.names, components) if team.coordinator.model else None
            if base is None:
                base = propose_plan(real[sub.names], sub, group_threshold=team.coordinator.group_threshold,
                                    edge_threshold=team.coordinator.edge_threshold)
            for comp in base.components:  # the worker kind of the component's columns ("*" unless own)
                components.append(comp.model_copy(update={"worker": team.worker_for(comp.columns[0]).kind}))
        for i, comp in enumerate(components):  # an LLM column reads the whole row the other workers made
            if comp.worker == "llm" and comp.name.startswith("worker_"):
                others = [c.name for c in components if c.worker not in ("llm", "expression")]
                components[i] = comp.model_copy(update={"depends_on": others})
        if derived:
            inputs = {c for e in self.expressions for c in e.split("=")[1].split() if c in schema.names}
            parents = sorted({comp.name for comp in components if set(comp.columns) & inputs})
            components.append(Component(name="expressions", columns=derived, worker="expression",
                                        depends_on=parents, rationale="; ".join(self.expressions)))
        components = self._after_inputs(components)
        how = "LLM task manager" if self.llm_records and self.llm_records[-1]["ok"] else "measured dependence"
        note = self._llm_note()
        return Plan(components=components, rationale=f"{how}; own workers; derived columns{note}")

    def _after_inputs(self, components: list[Component]) -> list[Component]:
        """Each python worker after the components making the columns it reads; one that declares none reads
        the whole row tabline's own workers make (not the LLM's: an LLM worker reads the python columns)."""
        owner = {col: c.name for c in components for col in c.columns}
        out = []
        for comp in components:
            w = self.custom_workers.get(comp.name) if comp.worker == "python" else None
            if w is not None:
                parents = ([c.name for c in components if c.worker not in ("python", "llm")] if w.depends_on is None
                           else [owner[col] for col in w.depends_on if col in owner])
                comp = comp.model_copy(update={"depends_on": sorted(set(parents) - {comp.name})})
            out.append(comp)
        return out

    def _llm_plan(self, real: pd.DataFrame, schema: Schema, names: list[str], fixed: list[Component]) -> Plan | None:
        from tabline.agents.llm.backends import ModelRef
        from tabline.agents.llm.planner import ask_plan

        team = self.team
        ref = ModelRef(team.coordinator.model, temperature=team.coordinator.temperature, settings=team.llm,
                       registry=self.models)
        plan, record, caller = ask_plan(ref, schema, real, names=names, about=team.about,
                                        descriptions=team.descriptions, fixed=fixed, seed=team.seed)
        self.llm_records.append(record)
        self.llm_usage = caller.usage.take()
        return plan

    def _llm_note(self) -> str:
        if not self.llm_records or self.llm_records[-1]["ok"]:
            return ""
        last = self.llm_records[-1]
        return (f" (the LLM task manager gave no valid plan in {last['attempts']} attempt(s): "
                f"{(last['errors'] or ['no answer'])[-1][:200]}; the measured plan is used)")

    def _with_hints(self, plan: Plan) -> Plan:
        owner = {col: comp.name for comp in plan.components for col in comp.columns}
        extra: dict[str, set[str]] = {}
        for col, parents in self.team.coordinator.depends_on.items():
            for p in parents:
                if col in owner and p in owner and owner[p] != owner[col]:
                    extra.setdefault(owner[col], set()).add(owner[p])
        if not extra:
            return plan
        comps = [c.model_copy(update={"depends_on": sorted(set(c.depends_on) | extra.get(c.name, set()))})
                 for c in plan.components]
        return plan.model_copy(update={"components": comps})

    def _partitions(self, real: pd.DataFrame, schema: Schema) -> Partitions:
        spec = self.team.coordinator
        if spec.arms is not None:
            members, anchors = [], []
            for arm in spec.arms:
                try:
                    mask = real.eval(arm.rule, engine="python") if arm.rule else pd.Series(True, index=real.index)
                except Exception as exc:  # pandas raises many types for a bad rule
                    raise InvalidPlanError(f"arm {arm.name!r}: rule {arm.rule!r} cannot be evaluated: {exc}") from None
                rows = np.flatnonzero(np.asarray(mask, bool))
                if len(rows) == 0:
                    raise InvalidPlanError(f"arm {arm.name!r}: rule {arm.rule!r} matches no real row")
                members.append(rows)
                anchors.append([c for c in schema.names if f"`{c}`" in arm.rule or c in arm.rule.split()])
            arms = [a.model_copy(update={"size": len(m)}) for a, m in zip(spec.arms, members)]
            return Partitions(arms, members, anchors, "team")
        if spec.partitions == "none":
            return single_arm(len(real))
        return partition(real, schema, target=self.team.target, max_arms=spec.max_arms,
                         min_rows=spec.min_arm_rows, method=spec.partitions, seed=self.team.seed)

    # ------------------------------------------------------------------ every batch
    def quotas(self, n_rows: int) -> list[float]:
        """Most accepted rows per arm: (1 + slack) × the arm's real share × n_rows (inf with mix='free')."""
        b = self.team.bandit
        total = sum(a.size for a in self.plan.arms)
        if b.mix == "free" or len(self.plan.arms) == 1:
            return [math.inf] * len(self.plan.arms)
        return [math.ceil((1 + b.slack) * a.size / total * n_rows) for a in self.plan.arms]

    def turn(self, *, batch_id: int, rows: int, bandit: PartitionBandit, accepted_by_arm: list[int],
             quotas: list[float], counts: dict[str, dict[str, int]], accepted: int,
             yield_estimate: float = 1.0) -> Decision:
        """Choose the arm (open arms only), then the batch's conditions. A batch for an arm near its quota is
        made smaller (what the quota still needs at the yield seen so far, at least 32 rows)."""
        allowed = [a < q for a, q in zip(accepted_by_arm, quotas)]
        arm = bandit.select(allowed if any(allowed) else None)
        room = quotas[arm] - accepted_by_arm[arm]
        if math.isfinite(room) and room > 0:
            rows = int(min(rows, max(32, math.ceil(room / max(yield_estimate, 0.05)))))
        arm_rows = self.arm_rows(arm)
        turn = Turn(batch_id=batch_id, rows=rows, arm_rows=arm_rows, counts=counts, accepted=accepted,
                    seed=self.team.seed)
        calls: dict[str, list[dict]] = {}
        usage: list[dict] = []
        for ev in self.evolvers:
            proposal = ev.propose(turn)
            if proposal.calls:
                calls[ev.name] = proposal.calls
            if proposal.usage:
                usage.append(proposal.usage)
            if proposal.conditions is not None:
                return Decision(arm, ev.name, self._with_anchors(proposal.conditions, turn, arm), calls, usage)
        anchors = self.partitions.anchors[arm]
        if not anchors:
            return Decision(arm, "none", pd.DataFrame(index=range(rows)), calls, usage)
        pick = turn.rng.integers(0, len(arm_rows), rows)
        return Decision(arm, "anchors", arm_rows[anchors].iloc[pick].reset_index(drop=True), calls, usage)

    @property
    def watched(self) -> list[str]:
        """Columns whose accepted rows per class the line counts for the evolvers (`Turn.counts`)."""
        return list(dict.fromkeys(c for ev in self.evolvers for c in ev.watches))

    def arm_rows(self, arm: int) -> pd.DataFrame:
        """The real rows of ``arm``."""
        return self.real.iloc[self.partitions.members[arm]]

    def _with_anchors(self, proposal: pd.DataFrame, turn: Turn, arm: int) -> pd.DataFrame:
        """Add the arm's anchors to an evolver's conditions, drawn from arm rows that agree with them."""
        anchors = [c for c in self.partitions.anchors[arm] if c not in proposal.columns]
        if not anchors:
            return proposal
        rows = turn.arm_rows
        keys = proposal.columns.tolist()
        if len(keys) == 1:  # e.g. a rebalanced class: anchors from the arm's rows of that class
            match = rows[rows[keys[0]].astype(str) == str(proposal[keys[0]].iloc[0])]
            if len(match) >= 5 and proposal[keys[0]].nunique() == 1:
                rows = match
        pick = np.random.default_rng([self.team.seed, turn.batch_id, 11]).integers(0, len(rows), len(proposal))
        return pd.concat([proposal.reset_index(drop=True), rows[anchors].iloc[pick].reset_index(drop=True)], axis=1)

    def stations(self) -> list[list[str]]:
        """Component names grouped by precedence level (members of a level may run side by side)."""
        return self.plan.levels()


def _fuse_lm(plan: Plan) -> Plan:
    """One component for every LM component, if that keeps the precedence graph acyclic."""
    lm = [c for c in plan.components if c.worker == "lm"]
    if len(lm) < 2:
        return plan
    names = {c.name for c in lm}
    others = [c for c in plan.components if c.worker != "lm"]
    fused = Component(name="lm", columns=[col for c in lm for col in c.columns],
                      depends_on=sorted({d for c in lm for d in c.depends_on if d not in names}),
                      rationale="LM components fused into one station: " + "; ".join(f"{c.name}: {c.rationale}" for c in lm))
    others = [c.model_copy(update={"depends_on": sorted({("lm" if d in names else d) for d in c.depends_on})})
              for c in others]
    candidate = Plan(components=[fused, *others], arms=plan.arms, rationale=plan.rationale)
    return candidate if nx.is_directed_acyclic_graph(candidate.graph()) else plan
