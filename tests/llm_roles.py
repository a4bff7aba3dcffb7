"""A scripted "model" for the test server that answers tabline's prompts by role, with faults on demand.

It reads the prompt the way a model would — the rows to fill or score are the JSON lines under the
prompt's heading — and answers in the requested shape. Tests choose the values (``values``) and the
faults: malformed JSON first, a bad value for some rows on every attempt, a 429 on the first call.
"""
from __future__ import annotations

import json
import re
import threading
from typing import Any, Callable

from llm_server import Reply


def role_of(request: dict) -> str:
    system = next((m["content"] for m in request["messages"] if m["role"] == "system"), "")
    for key, role in (("column worker", "worker"), ("quality judge", "judge"), ("task manager", "coordinator"),
                      ("evolution agent", "evolver")):
        if key in system:
            return role
    return "unknown"


def first_user(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def json_rows_after(text: str, heading: str) -> list[dict]:
    """The JSON objects on the lines after the line that starts with ``heading``, up to a blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    out = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        out.append(json.loads(line))
    return out


class TableBrain:
    """Callable script: ``fn(request, index) -> Reply``. Thread-safe; counts calls per role."""

    def __init__(self, values: Callable[[str, dict], Any] | None = None, *, score: int = 4,
                 malformed_first: bool = False, bad_rows: set[int] | None = None,
                 plan: list[dict] | None = None, bad_plan_first: bool = False,
                 proposals: list[dict] | None = None, rate_limit_first: bool = False):
        self.values = values or (lambda col, row: f"{col} for row {row['row']}")
        self.score, self.malformed_first, self.bad_rows = score, malformed_first, bad_rows or set()
        self.plan, self.bad_plan_first, self.proposals = plan, bad_plan_first, proposals
        self.rate_limit_first = rate_limit_first
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request: dict, index: int) -> Reply:
        role = role_of(request)
        with self.lock:
            n = self.calls.get(role, 0)
            self.calls[role] = n + 1
        if self.rate_limit_first and index == 0:
            return Reply(status=429, headers={"retry-after": "0"})
        if self.malformed_first and n == 0:
            return Reply('{"rows": [ this is not json')
        return getattr(self, role)(request, n)

    def worker(self, request: dict, n: int) -> Reply:
        text = first_user(request)
        own = re.search(r"^Fill in (.+) for each of these", text, re.M).group(1).split(", ")
        rows = json_rows_after(text, "Fill in ")
        answer = []
        for row in rows:
            item = {"row": row["row"]}
            for col in own:
                item[col] = "not-a-valid-value" if row["row"] in self.bad_rows else self.values(col, row)
            answer.append(item)
        return Reply.json({"rows": answer}, prompt_tokens=100, completion_tokens=10 * len(rows))

    def judge(self, request: dict, n: int) -> Reply:
        rows = json_rows_after(first_user(request), "Rows to score")
        score = self.score(rows) if callable(self.score) else [self.score] * len(rows)
        return Reply.json({"rows": [{"row": r["row"], "score": s, "explanation": f"scored {s} by the script"}
                                    for r, s in zip(rows, score)]})

    def coordinator(self, request: dict, n: int) -> Reply:
        names = re.search(r"^Split exactly these columns into components: (.+)$", first_user(request), re.M)
        names = names.group(1).split(", ")
        if self.bad_plan_first and n == 0:  # a cycle, to be shown back to the model
            return Reply.json({"components": [
                {"name": "a", "columns": names[:1], "depends_on": ["b"]},
                {"name": "b", "columns": names[1:], "depends_on": ["a"]}], "rationale": "circular"})
        plan = self.plan or [{"name": "all", "columns": names, "depends_on": [], "rationale": "one group"}]
        return Reply.json({"components": plan, "rationale": "scripted"})

    def evolver(self, request: dict, n: int) -> Reply:
        return Reply.json({"rows": [{**p, "rationale": "rare"} for p in (self.proposals or [])]})

    def unknown(self, request: dict, n: int) -> Reply:
        return Reply(status=400, content="the scripted brain does not know this prompt")
