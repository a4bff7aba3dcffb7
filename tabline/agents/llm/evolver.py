"""`LLMEvolver`: a chat model proposes the starting values of new rows (an evolution agent).

On ``share`` of the batches it shows the model the columns it sets, real rows of the arm and a direction —
*complicate* (rare, hard, boundary cases) or *generalise* (plausible combinations the real table lacks) —
and asks for ``count`` value combinations with a rationale each. Combinations the schema rejects are
shown back to the model; the valid ones are drawn with replacement to fill the batch's conditions.

Example (building an evolver sends nothing; its proposals need the model):
    >>> import pandas as pd
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"cut": ["Ideal", "Good", "Fair", "Ideal"] * 5, "color": list("DEFG") * 5})
    >>> ev = LLMEvolver(ModelRef("openai:gpt-4o-mini"), real, Schema.infer(real), columns=["cut", "color"])
    >>> ev.direction, ev.share
    ('complicate', 0.2)

With a key set, ``ev.propose(turn).conditions`` holds starting values for a share of the batches (None for
the rest); the proposal also carries the calls made and their tokens.
"""
from __future__ import annotations


import pandas as pd
from pydantic import BaseModel

from tabline.agents.evolvers import Turn
from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import StructuredCaller, json_lines
from tabline.agents.llm.prompts import load_prompt
from tabline.agents.llm.table import (LooseRows, describe_columns, records, rows_model, stratified_examples,
                                     validate_rows)
from tabline.agents.roles import Proposal
from tabline.schema import Schema

DIRECTIONS = {
    "complicate": "complication — rare, extreme or boundary combinations that are still possible, the cases "
                  "a model trained on this table would find hard",
    "generalise": "generalisation — plausible combinations that the real rows do not contain yet",
}


class LLMEvolver:
    name = "llm-evolver"
    watches: list[str] = []

    def __init__(self, ref: ModelRef, real: pd.DataFrame, schema: Schema, *, columns: list[str],
                 direction: str = "complicate", share: float = 0.2, count: int = 20, about: str = "",
                 descriptions: dict[str, str] | None = None, instructions: str = "", target: str | None = None):
        self.ref, self.real, self.schema, self.columns = ref, real, schema, list(columns)
        self.direction, self.share, self.count = direction, share, count
        self.about, self.descriptions, self.instructions, self.target = about, descriptions or {}, instructions, target
        self.caller = StructuredCaller(ref, role="evolver")
        self.prompt = load_prompt("evolver")
        self._output: type[BaseModel] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_output"] = None  # a class made at run time; rebuilt on first use
        return state

    def propose(self, turn: Turn) -> Proposal:
        rng = turn.rng
        if rng.random() >= self.share:
            return Proposal()
        if self._output is None:
            self._output = rows_model("Proposals", self.schema, self.columns, row_id=False,
                                      extra={"rationale": (str, "")})
        examples = stratified_examples(turn.arm_rows, 20, target=self.target, seed=turn.batch_id)
        fields = {"about": self.about or "(no description given)",
                  "columns": describe_columns(self.schema, self.columns, self.descriptions),
                  "examples": json_lines(records(examples[[c for c in self.schema.names if c in examples]])),
                  "direction": DIRECTIONS[self.direction], "count": self.count, "names": ", ".join(self.columns),
                  "instructions": f"Instructions: {self.instructions}\n" if self.instructions else "",
                  "output_fields": ", ".join(f'"{c}": <value>' for c in self.columns)}
        kept: list[dict] = []

        def check(parsed: LooseRows) -> list[str]:
            items = [{c: item.get(c) for c in self.columns} for item in parsed.rows if isinstance(item, dict)]
            frame = pd.DataFrame(items, columns=self.columns)
            bad = validate_rows(frame, self.schema) if len(frame) else {}
            kept.extend(row for i, row in enumerate(items) if i not in bad)
            return [] if kept else (list(bad.values()) or ["the answer proposes no rows"])

        outcome = self.caller.ask_sync(self.prompt.messages(fields), self._output, parse_as=LooseRows,
                                       check=check, seed=turn.batch_id)
        calls = [{"evolver": self.name, "prompt": self.prompt.tag, "attempts": len(outcome.raw),
                  "errors": outcome.errors, "kept": len(kept), "raw": [] if kept else outcome.raw}]
        if not kept:
            self.caller.usage.add(failures=1)
            # the coordinator falls back to the next evolver or the arm's anchors
            return Proposal(calls=calls, usage=self.caller.usage.take())
        pick = rng.integers(0, len(kept), turn.rows)
        conditions = pd.DataFrame([kept[i] for i in pick], columns=self.columns).reset_index(drop=True)
        return Proposal(conditions, calls=calls, usage=self.caller.usage.take())
