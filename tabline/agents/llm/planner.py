"""The LLM task manager (T²'s coordinator prompt): columns → components with a precedence DAG.

The model sees the schema, the column meanings (ξ) and a few real rows, and answers a `ProposedPlan`.
The answer is held to the same rules as any plan (`Plan.problems`: exact cover of the columns asked for,
known names, no cycles); the problems are shown to the model on retry. After the last attempt the
coordinator keeps the measured plan and says so in the plan's rationale; the raw answers are kept.

Example (the answer the model must give; asking it needs the model):
    >>> answer = ProposedPlan.model_validate({"components": [{"name": "cut", "columns": ["cut", "color"]},
    ...     {"name": "price", "columns": ["price"], "depends_on": ["cut"]}]})
    >>> [c.depends_on for c in answer.components]
    [[], ['cut']]

With a key set, ``ask_plan(ModelRef("openai:gpt-4o-mini", temperature=0), schema, real, names=schema.names)``
returns ``(plan, record, caller)``; ``plan`` is None when no answer passed `Plan.problems`.
"""
from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import StructuredCaller, json_lines
from tabline.agents.llm.prompts import load_prompt
from tabline.agents.llm.table import describe_columns, records
from tabline.agents.plan import Component, Plan
from tabline.schema import Schema


class ProposedComponent(BaseModel):
    name: str
    columns: list[str]
    depends_on: list[str] = []
    rationale: str = ""


class ProposedPlan(BaseModel):
    components: list[ProposedComponent]
    rationale: str = ""


def ask_plan(ref: ModelRef, schema: Schema, real: pd.DataFrame, *, names: list[str], about: str = "",
             descriptions: dict[str, str] | None = None, fixed: list[Component] | None = None,
             worker: str = "lm", examples: int = 5, seed: int = 0) -> tuple[Plan | None, dict[str, Any], StructuredCaller]:
    """A validated plan over ``names`` (None after the last failed attempt), the call's record (prompt
    version, attempts, errors, raw answers) and the caller (for its token usage)."""
    prompt = load_prompt("coordinator")
    caller = StructuredCaller(ref, role="coordinator")
    sub = Schema(columns=[schema.column(n) for n in names])
    fixed_text = ""
    if fixed:
        fixed_text = ("\nThese columns are already handled by other workers (do not include them): " +
                      "; ".join(f"{c.name}: {c.columns}" for c in fixed) + "\n")
    shown = real[schema.names].sample(min(examples, len(real)), random_state=seed) if len(real) else real
    fields = {"about": about or "(no description given)", "names": ", ".join(names),
              "columns": describe_columns(schema, schema.names, descriptions),
              "examples": json_lines(records(shown)), "fixed": fixed_text}
    result: dict[str, Plan] = {}

    def check(parsed: ProposedPlan) -> list[str]:
        try:
            plan = Plan(components=[Component(name=c.name, columns=c.columns, depends_on=c.depends_on,
                                              rationale=c.rationale, worker=worker) for c in parsed.components],
                        rationale=parsed.rationale)
        except ValueError as exc:  # e.g. an empty component name or column list
            return [f"the plan is malformed: {str(exc).splitlines()[0]}"]
        problems = plan.problems(sub)
        if not problems:
            result["plan"] = plan
        return problems

    outcome = caller.ask_sync(prompt.messages(fields), ProposedPlan, check=check, seed=seed)
    record = {"role": "coordinator", "prompt": prompt.tag, "model": ref.label, **outcome.record()}
    return result.get("plan"), record, caller
