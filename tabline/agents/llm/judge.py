"""`LLMJudge`: a chat model scores rows against a rubric (1–5 with a one-sentence explanation), usable as a
QC objective like any other judge: its score is mapped to [0, 1] as (s − 1) / 4 and thresholded by the
objective stage. Rows the model never scored get 0 and their reason is kept (`last_failures`).

Example (building a judge sends nothing; its scores need the model):
    >>> import pandas as pd
    >>> real = pd.DataFrame({"cut": ["Ideal", "Good", "Fair", "Ideal"] * 5, "price": range(300, 320)})
    >>> judge = LLMJudge(ModelRef("openai:gpt-4o-mini", temperature=0), Schema.infer(real), real=real)
    >>> judge.name, judge.rows_per_call
    ('llm', 20)

With a key set, ``judge.score(batch)`` returns one score in [0, 1] per row of ``batch``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import StructuredCaller, gather_chunks, json_lines, settle
from tabline.agents.llm.prompts import load_prompt
from tabline.agents.llm.table import describe_columns, records, stratified_examples
from tabline.agents.roles import Judgement
from tabline.schema import Schema

DEFAULT_RUBRIC = ("Would a domain expert believe this row is a real record of this table? Check that the "
                  "values are plausible on their own and consistent with each other.")


class RowScore(BaseModel):
    row: int
    score: int = Field(ge=1, le=5)
    explanation: str = ""


class Scores(BaseModel):
    rows: list[RowScore]


class LLMJudge:
    """Scores every row of a batch, ``rows_per_call`` rows per request."""

    name = "llm"

    def __init__(self, ref: ModelRef, schema: Schema, *, real: pd.DataFrame, rubric: str = DEFAULT_RUBRIC,
                 about: str = "", descriptions: dict[str, str] | None = None, rows_per_call: int = 20,
                 examples: int = 10, target: str | None = None, seed: int = 0):
        self.ref, self.schema, self.rubric = ref, schema, rubric or DEFAULT_RUBRIC
        self.rows_per_call, self.prompt = rows_per_call, load_prompt("judge")
        self.caller = StructuredCaller(ref, role="judge")
        shown = stratified_examples(real, examples, target=target, seed=seed)
        self.fields = {"about": about or "(no description given)", "rubric": self.rubric,
                       "columns": describe_columns(schema, schema.names, descriptions),
                       "examples": json_lines(records(shown))}
        self.last_failures: dict[Any, str] = {}
        self.last_explanations: dict[Any, str] = {}
        self.last_calls: list[dict[str, Any]] = []

    @property
    def usage(self):
        return self.caller.usage

    def score(self, batch: pd.DataFrame) -> pd.Series:
        """(score − 1) / 4 per row, in [0, 1]; 0 for a row the model did not score."""
        self.last_failures, self.last_explanations, self.last_calls = {}, {}, []
        out = pd.Series(0.0, index=batch.index)
        if not len(batch):
            return out
        shown = records(batch[[c for c in self.schema.names if c in batch.columns]])
        results = gather_chunks(len(batch), self.rows_per_call, self.ref.settings.concurrency,
                                lambda k, chunk, sem: self._chunk(chunk, shown, sem))
        got, self.last_failures, self.last_calls = settle(results, batch.index, self.caller.usage)
        for pos, (value, why) in got.items():
            out.iloc[pos] = (value - 1) / 4
            self.last_explanations[batch.index[pos]] = why
        return out

    def judge(self, batch: pd.DataFrame) -> Judgement:
        """`score`, with the model's explanations (and the reasons of rows it never scored) as notes, and the
        calls and tokens for the run folder."""
        scores = self.score(batch)
        return Judgement({self.name: scores}, notes={**self.last_explanations, **self.last_failures},
                         calls=self.last_calls, usage=self.usage.take())

    async def _chunk(self, chunk: list[int], shown: list[dict], semaphore: asyncio.Semaphore):
        rows = [{"row": pos, **shown[pos]} for pos in chunk]
        pending, got = set(chunk), {}

        def check(parsed: Scores) -> list[str]:
            for item in parsed.rows:
                if item.row in pending:
                    got[item.row] = (item.score, item.explanation)
                    pending.discard(item.row)
            return [f"rows {sorted(pending)} have no score"] if pending else []

        messages = self.prompt.messages({**self.fields, "rows": json_lines(rows)})
        outcome = await self.caller.ask(messages, Scores, semaphore=semaphore, check=check)
        last = outcome.errors[-1] if outcome.errors else ""
        failed = {pos: f"llm judge: no score after {len(outcome.raw)} attempt(s): {last[:200]}" for pos in pending}
        record = {"judge": "llm", "prompt": self.prompt.tag, "rows": chunk, "failed_rows": sorted(pending),
                  "attempts": len(outcome.raw), "errors": outcome.errors,
                  "raw": outcome.raw if pending else outcome.raw[:-1]}
        return got, failed, record
