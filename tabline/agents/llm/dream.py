"""TableDreamer's LLM agents, on the backends every agent of tabline uses (`ModelRef`: ``hf:PATH``,
``openai-compatible:URL:MODEL``, ``openai:MODEL``, a registered LangChain chat model) and the same
structured calls (`StructuredCaller`: an output type, the repair loop, transient retries, raw text kept):

- `LLMTableMaker` — a table from scratch: topic → subtopic → title → the table with the sampled attributes
  (kind, size, derived columns as formulas that code computes). Each draft is built into a `DreamTable`;
  one that fails (ragged rows, a repeated key, a bad formula, the wrong size) is shown its problems and
  asked again; after the last attempt it is rejected with the reason and the raw text kept.
- `LLMAnswerer` — the target model answers each item. It is asked for ``{"answer": ...}``; a reply that is
  not that JSON is kept as prose and read by the answer checker (``structured: false``) — a target model is
  judged on its answer, not on its JSON. When the backend gives up (429s, timeouts past the retries), the
  item gets a recorded failure, never a crash.
- `LLMRubricJudge` — the paper's 1–5 rubric for free-form answers only; every other answer is checked by
  the program (`tabline.agents.dream.ProgramJudge`).
- `LLMPhraser` — the template's instruction in the model's own words. The program stays the ground truth:
  a wording must keep every column name, value and number the template names and its answer-format sentence
  (`phrasing_problems`), is asked again with its problems otherwise, and after the last attempt the item
  keeps the template's wording, the failure recorded with the raw text.

Example (building an agent sends nothing):
    >>> maker = LLMTableMaker(ModelRef("openai-compatible:http://127.0.0.1:9/v1:m"))
    >>> maker.name, LLMAnswerer(ModelRef("openai-compatible:http://127.0.0.1:9/v1:m")).name
    ('llm tables', 'target')
"""
from __future__ import annotations

import asyncio
from typing import Any, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from tabline.agents.dream import Answers, MadeTables, Phrased, Reply, Verdict
from tabline.agents.llm.backends import ModelRef
from tabline.agents.llm.calls import StructuredCaller, gather_chunks
from tabline.agents.llm.prompts import load_prompt
from tabline.dream.items import SYSTEM_PROMPT, DreamItem
from tabline.dream.making import TableSpec
from tabline.dream.programs import Answer
from tabline.dream.table import DreamTable
from tabline.errors import TablineError

Cell = Union[bool, int, float, str, None]
THEMES = ("sports", "public health", "retail sales", "energy", "education", "transport", "finance", "climate",
          "agriculture", "tourism", "technology companies", "city budgets")
KIND_HELP = {"flat": "one header row, one row per record",
             "horizontal": "records as columns; give it as usual, one row per record, and it will be drawn transposed",
             "hierarchical": "two header levels: give each column an upper header in groups"}


class TableDraft(BaseModel):
    topic: str
    subtopic: str
    title: str
    columns: list[str] = Field(min_length=1)
    groups: list[str] = []
    rows: list[list[Cell]] = Field(min_length=1)
    formulas: list[str] = []


def draft_table(draft: TableDraft, kind: str, spec: TableSpec) -> tuple[DreamTable | None, list[str]]:
    """The draft as a `DreamTable`, or the problems that stop it (all of them).

    Example:
        >>> d = TableDraft(topic="t", subtopic="s", title="T", columns=["k", "v"], rows=[["a", 1], ["b"]])
        >>> draft_table(d, "flat", TableSpec(rows=(2, 3), columns=(1, 2)))[1]
        ['row 2 has 1 values for 2 columns']
    """
    problems = [f"row {k + 1} has {len(r)} values for {len(draft.columns)} columns"
                for k, r in enumerate(draft.rows) if len(r) != len(draft.columns)]
    if not spec.rows[0] <= len(draft.rows) <= spec.rows[1]:
        problems.append(f"the table has {len(draft.rows)} rows; write {spec.rows[0]} to {spec.rows[1]}")
    if not spec.columns[0] + 1 <= len(draft.columns) <= spec.columns[1] + 1:
        problems.append(f"the table has {len(draft.columns)} columns; write {spec.columns[0] + 1} to "
                        f"{spec.columns[1] + 1} (the naming column included)")
    if kind == "hierarchical" and len(draft.groups) != len(draft.columns):
        problems.append(f"a hierarchical table needs one upper header per column ({len(draft.columns)}), "
                        f"got {len(draft.groups)}")
    if problems:
        return None, problems
    frame = pd.DataFrame(draft.rows, columns=draft.columns, dtype=object)
    groups = dict(zip(draft.columns, draft.groups)) if kind == "hierarchical" else None
    try:
        table = DreamTable.from_frame(frame, title=draft.title, kind=kind, key=draft.columns[0], groups=groups,
                                      formulas=draft.formulas)
    except TablineError as exc:
        return None, [str(exc)]
    return table, []


class LLMTableMaker:
    """Tables from scratch, one request each, the attributes sampled per table from ``spec``."""

    name = "llm tables"

    def __init__(self, ref: ModelRef, spec: TableSpec | None = None, *, themes: tuple[str, ...] = THEMES):
        self.ref, self.spec, self.themes = ref, spec or TableSpec(), themes
        self.caller = StructuredCaller(ref, role="table maker")
        self.prompt = load_prompt("dream_table")

    def make(self, n: int, rng: np.random.Generator) -> MadeTables:
        asks = []
        for _ in range(n):
            kind = str(rng.choice(list(self.spec.kinds)))
            asks.append({"kind": kind, "kind_help": KIND_HELP[kind], "theme": str(rng.choice(list(self.themes))),
                         "rows": int(rng.integers(self.spec.rows[0], self.spec.rows[1] + 1)),
                         "columns": int(rng.integers(self.spec.columns[0], self.spec.columns[1] + 1)),
                         "formula_help": "add one derived column as a formula, e.g. profit = revenue - cost"
                         if rng.random() < self.spec.formula_share else "no formulas: give \"formulas\": []"})
        results = gather_chunks(n, 1, self.ref.settings.concurrency,
                                lambda k, chunk, sem: self._one(asks[chunk[0]], sem))
        made = MadeTables([], usage=None)
        for table, rejected, call in results:
            made.calls.append(call)
            if table is not None:
                made.tables.append(table)
            else:
                made.rejected.append(rejected)
        made.usage = self.caller.usage.take()
        return made

    async def _one(self, ask: dict[str, Any], semaphore: asyncio.Semaphore):
        built: dict[str, DreamTable] = {}

        def check(draft: TableDraft) -> list[str]:
            table, problems = draft_table(draft, ask["kind"], self.spec)
            if table is not None:
                built["table"] = table
            return problems

        outcome = await self.caller.ask(self.prompt.messages(ask), TableDraft, semaphore=semaphore, check=check)
        call = {"agent": self.name, "prompt": self.prompt.tag, "ask": ask, **outcome.record()}
        if outcome.ok:
            return built["table"], None, call
        reason = outcome.errors[-1] if outcome.errors else "no answer"
        return None, {"reason": f"table rejected after {len(outcome.raw)} attempt(s): {reason[:300]}",
                      "raw": outcome.raw[-1] if outcome.raw else ""}, call


class TargetAnswer(BaseModel):
    answer: Union[str, float, int, bool, list[Union[str, float, int]]]


def answer_text(value: Any) -> str:
    """A JSON answer as the text the checker reads.

    Example:
        >>> answer_text(["a", 2]), answer_text(True), answer_text(3.5)
        ('a, 2', 'True', '3.5')
    """
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


class LLMAnswerer:
    """The target model: one request per item, the item's own chat messages plus the JSON answer format."""

    name = "target"

    def __init__(self, ref: ModelRef):
        self.ref = ref
        self.caller = StructuredCaller(ref, role="target")
        self.prompt = load_prompt("dream_answer")

    def answer(self, items: list[DreamItem]) -> Answers:
        results = gather_chunks(len(items), 1, self.ref.settings.concurrency,
                                lambda k, chunk, sem: self._one(items[chunk[0]], sem))
        return Answers([r for r, _ in results], [c for _, c in results], self.caller.usage.take())

    async def _one(self, item: DreamItem, semaphore: asyncio.Semaphore) -> tuple[Reply, dict[str, Any]]:
        messages = self.prompt.messages({"system": SYSTEM_PROMPT, "question": item.user_content()})
        outcome = await self.caller.ask(messages, TargetAnswer, semaphore=semaphore)
        call = {"item": item.id, "prompt": self.prompt.tag, **outcome.record()}
        if outcome.ok:
            return Reply(answer_text(outcome.value.answer)), call
        prose = next((r for r in reversed(outcome.raw) if r.strip()), "")
        if prose:  # an answer in prose, not the JSON asked for: the checker reads it
            return Reply(prose, structured=False), call
        return Reply("", structured=False, error=outcome.errors[-1] if outcome.errors else "no reply"), call


class RubricScore(BaseModel):
    score: int = Field(ge=1, le=5)
    explanation: str = ""


class LLMRubricJudge:
    """TableDreamer's judge: a 1–5 score of a free-form answer against the reference; below ``threshold``
    (3, as in the paper) is a weakness."""

    name = "llm judge"

    def __init__(self, ref: ModelRef, *, threshold: int = 3):
        self.ref, self.threshold = ref, threshold
        self.caller = StructuredCaller(ref, role="judge")
        self.prompt = load_prompt("dream_judge")

    def score(self, item: DreamItem, reply: str) -> tuple[Verdict, dict[str, Any]]:
        fields = {"question": item.instruction, "reference": Answer.text(item.answer), "answer": reply or "(empty)"}
        outcome = self.caller.ask_sync(self.prompt.messages(fields), RubricScore)
        call = {"item": item.id, "prompt": self.prompt.tag, **outcome.record()}
        if not outcome.ok:
            return Verdict("failed", 0, self.name, reason=outcome.errors[-1] if outcome.errors else "no score"), call
        s = outcome.value.score
        return Verdict("correct" if s >= self.threshold else "wrong", s, self.name, reason=outcome.value.explanation), call


class Phrasing(BaseModel):
    instruction: str = Field(min_length=1)


_FORMAT_SENTENCES = ("Answer True or False.", "Answer with a comma-separated list.")


def _terms(program: Any) -> list[str]:
    """Every name, value and number a program's arguments hold (its ``op`` words aside), as text."""
    out: list[str] = []
    if isinstance(program, dict):
        for key, value in program.items():
            if key != "op":
                out += _terms(value)
    elif isinstance(program, (list, tuple)):
        for value in program:
            out += _terms(value)
    elif isinstance(program, bool) or program is None:
        pass
    elif isinstance(program, (int, float)):
        out += list(dict.fromkeys([str(program), f"{program:g}", f"{program:,}"]))
    else:
        out.append(str(program))
    return out


def phrasing_problems(item: DreamItem, text: str) -> list[str]:
    """What a rewording of ``item``'s instruction dropped: the names, values and numbers of its program that
    the template's wording shows, and the answer-format sentence. Empty: the wording keeps the question.

    Example:
        >>> import pandas as pd
        >>> from tabline.dream.items import build_item
        >>> from tabline.dream.table import DreamTable
        >>> t = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b"], "sales": [3, 5]}), title="Shops")
        >>> item = build_item(t, "markdown", "max", {"op": "max", "column": "sales", "where": []}, 0)
        >>> phrasing_problems(item, "Which shop sold most?"), phrasing_problems(item, "Top sales figure?")
        (["keep 'sales' exactly as written"], [])
    """
    template, low = item.template_instruction, text.lower()
    shown = [t for t in dict.fromkeys(_terms(item.program)) if t and t.lower() in template.lower()]
    # a number shown as '1,500' need not also be kept as '1500': one written form of each value is enough
    problems = [f"keep {t!r} exactly as written" for t in shown if t.lower() not in low
                and not any(o.lower() in low for o in _terms(_number(t)) if o != t)]
    problems += [f"end with the sentence {s!r}" for s in _FORMAT_SENTENCES if s in template and s not in text]
    return problems


def _number(text: str) -> Any:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


class LLMPhraser:
    """The instructions in other words, one request per item; a wording that drops what the program needs is
    asked again, and after the last attempt the item keeps the template's wording (recorded, not lost)."""

    name = "llm phrasing"

    def __init__(self, ref: ModelRef):
        self.ref = ref
        self.caller = StructuredCaller(ref, role="phraser")
        self.prompt = load_prompt("dream_phrase")

    def phrase(self, items: list[DreamItem]) -> Phrased:
        results = gather_chunks(len(items), 1, self.ref.settings.concurrency,
                                lambda k, chunk, sem: self._one(items[chunk[0]], sem))
        out = Phrased([], usage=None)
        for item, failure, call in results:
            out.items.append(item)
            out.calls.append(call)
            if failure is not None:
                out.failures.append(failure)
        out.usage = self.caller.usage.take()
        return out

    async def _one(self, item: DreamItem, semaphore: asyncio.Semaphore):
        fields = {"instruction": item.template_instruction, "task_type": item.task_type.replace("_", " ")}
        outcome = await self.caller.ask(self.prompt.messages(fields), Phrasing, semaphore=semaphore,
                                        check=lambda p: phrasing_problems(item, p.instruction.strip()))
        call = {"item": item.id, "prompt": self.prompt.tag, **outcome.record()}
        if outcome.ok:
            return item.with_phrasing(outcome.value.instruction.strip()), None, call
        reason = outcome.errors[-1] if outcome.errors else "no answer"
        return item, {"item": item.id, "reason": reason[:300], "raw": outcome.raw[-1] if outcome.raw else ""}, call


__all__ = ["LLMAnswerer", "LLMPhraser", "LLMRubricJudge", "LLMTableMaker", "Phrasing", "TableDraft", "TargetAnswer",
           "answer_text", "draft_table", "phrasing_problems"]
