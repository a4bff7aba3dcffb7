"""`LLMWorker`: a prompted chat model fills its columns for a batch of partial rows (T²'s worker, DATE's
per-subset generator).

Each call carries many rows (``rows_per_call``): the worker's columns and their meanings, the columns
already filled, the arm's rule and ~30 stratified real rows of the arm (DATE), the rows that lowered
quality last time (DATE's reflection) and the partial rows to complete. Calls run concurrently under the
team's limit. Answers are checked against the schema row by row: good rows are kept, the model is asked
again for the bad or missing ones; rows still without values after the last attempt are returned empty
and listed in `Filled.failures` with the reason — the line rejects them with stage ``worker`` and keeps the
raw answers in the run folder (`Filled.calls`).

Example (building a worker sends nothing; its answers need the server):
    >>> import pandas as pd
    >>> from tabline.agents.llm.backends import ModelRef
    >>> from tabline.schema import Schema
    >>> real = pd.DataFrame({"age": [34, 51, 27, 45] * 5, "notes": ["new", "renewal", "referral", "renewal"] * 5})
    >>> ref = ModelRef("openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct")
    >>> worker = LLMWorker(ref, ["notes"], Schema.infer(real), real=real)
    >>> worker.name, worker.rows_per_call
    ('notes', 20)

With the server up, ``worker.fill(batch, seed=1).frame`` holds the batch's ``notes``.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
from pydantic import BaseModel

from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import StructuredCaller, gather_chunks, json_lines, settle
from tabline.agents.llm.prompts import load_prompt
from tabline.agents.llm.table import (LooseRows, describe_columns, records, rows_model, stratified_examples,
                                     validate_rows)
from tabline.agents.roles import FillContext, Filled
from tabline.schema import Schema


class LLMWorker:
    """Fills ``columns`` with a chat model, ``rows_per_call`` rows per request."""

    def __init__(self, ref: ModelRef, columns: list[str], schema: Schema, *, real: pd.DataFrame,
                 about: str = "", descriptions: dict[str, str] | None = None, target: str | None = None,
                 rows_per_call: int = 20, examples: int = 30, instructions: str = "", name: str = ""):
        self.ref, self.columns, self.schema = ref, list(columns), schema
        self.real, self.about, self.descriptions = real, about, dict(descriptions or {})
        self.target, self.rows_per_call, self.examples = target, rows_per_call, examples
        self.instructions, self.name = instructions, name or "+".join(columns)
        self.caller = StructuredCaller(ref, role=f"worker {self.name!r}")
        self.prompt = load_prompt("worker")
        self._output: type[BaseModel] | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_output"] = None  # a class made at run time; rebuilt on first use
        return state

    @property
    def output(self) -> type[BaseModel]:
        if self._output is None:
            self._output = rows_model("FilledRows", self.schema, self.columns)
        return self._output

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        """The worker's columns for every row of ``batch`` (rows that failed are empty and listed in
        ``failures``), with the calls made and their tokens."""
        context = context or FillContext()
        wanted = [c for c in self.columns if c not in batch.columns]
        out = pd.DataFrame({c: pd.Series([None] * len(batch), index=batch.index, dtype=object) for c in wanted})
        if not wanted or not len(batch):
            return Filled(out)
        given = [c for c in self.schema.names if c in batch.columns]
        fields = self._fields(given, wanted, context, seed)
        shown = records(batch[given]) if given else [{} for _ in range(len(batch))]
        results = gather_chunks(len(batch), self.rows_per_call, self.ref.settings.concurrency,
                                lambda k, chunk, sem: self._chunk(chunk, shown, wanted, fields, sem, seed * 1_000_003 + k))
        got, failures, calls = settle(results, batch.index, self.caller.usage)
        for pos, values in got.items():
            for c in wanted:
                out.iat[pos, out.columns.get_loc(c)] = values.get(c)
        return Filled(out, failures=failures, calls=calls, usage=self.caller.usage.take())

    async def _chunk(self, chunk: list[int], shown: list[dict], wanted: list[str], fields: dict[str, Any],
                     semaphore: asyncio.Semaphore, seed: int) -> tuple[dict[int, dict], dict[int, str], dict]:
        rows = [{"row": pos, **shown[pos]} for pos in chunk]
        messages = self.prompt.messages({**fields, "rows": json_lines(rows), "n_rows": len(rows)})
        pending = set(chunk)
        got: dict[int, dict] = {}

        def check(parsed: LooseRows) -> list[str]:
            answered: dict[int, dict] = {}
            problems = []
            for item in parsed.rows:
                pos = item.get("row")
                if isinstance(pos, int) and pos in pending:
                    answered[pos] = {c: item.get(c) for c in wanted}
                    missing_keys = [c for c in wanted if c not in item]
                    if missing_keys:
                        problems.append(f"row {pos}: no value for {missing_keys}")
                        answered.pop(pos)
            if answered:
                frame = pd.DataFrame.from_dict(answered, orient="index", columns=wanted)
                bad = validate_rows(frame, self.schema)
                problems.extend(bad.values())
                for pos, values in answered.items():
                    if pos not in bad:
                        got[pos] = values
                        pending.discard(pos)
            missing = sorted(pending - set(answered))
            if missing:
                problems.append(f"rows {missing} are missing from the answer")
            return problems if pending else []

        outcome = await self.caller.ask(messages, self.output, semaphore=semaphore, check=check, seed=seed,
                                        parse_as=LooseRows)
        last = outcome.errors[-1] if outcome.errors else ""
        failed = {pos: f"llm worker {self.name!r}: no valid value after {len(outcome.raw)} attempt(s): "
                       f"{_short(last)}" for pos in sorted(pending)}
        record = {"worker": self.name, "prompt": self.prompt.tag, "rows": chunk, "failed_rows": sorted(pending),
                  "attempts": len(outcome.raw), "errors": outcome.errors,
                  "raw": outcome.raw if pending else outcome.raw[:-1]}
        return got, failed, record

    def _fields(self, given: list[str], wanted: list[str], context: FillContext, seed: int) -> dict[str, Any]:
        arm_rows = context.arm_rows if context.arm_rows is not None and len(context.arm_rows) else self.real
        examples = stratified_examples(arm_rows, self.examples, target=self.target, seed=seed)
        balance = ""
        if self.target and self.target in wanted and self.target in arm_rows:
            shares = arm_rows[self.target].astype(str).value_counts(normalize=True)
            balance = (f"\nClass balance of {self.target} in these real rows: " +
                       ", ".join(f"{k} {v:.0%}" for k, v in shares.items()) +
                       f". Do not under-produce the rarer classes (here {shares.index[-1]}).\n")
        negatives = ""
        if context.negatives:
            lines = [f"- rows where {g['path']} (a tree trained on real rows predicts {g['label']}), e.g. "
                     f"{json_lines(g['rows'][:2])}" for g in context.negatives]
            negatives = ("\nGenerated rows like these lowered the data's quality last time; make rows unlike "
                         "them:\n" + "\n".join(lines) + "\n")
        return {
            "about": self.about or "(no description given)",
            "own_columns": describe_columns(self.schema, wanted, self.descriptions),
            "given_columns": describe_columns(self.schema, given, self.descriptions),
            "own_names": ", ".join(wanted),
            "rule": context.rule or "(any row of the table)",
            "balance": balance,
            "examples": json_lines(records(examples)),
            "negatives": negatives,
            "instructions": f"\nInstructions: {self.instructions}\n" if self.instructions else "",
            "output_fields": ", ".join(f'"{c}": <value>' for c in wanted),
        }


def _short(text: str, n: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


__all__ = ["LLMWorker"]
