"""Prompt files, one per role, shipped with the package (``tabline/agents/llm/prompts/*.md``).

A file starts with ``version: N`` and has a ``--- system`` and a ``--- user`` section; fields are
``$name`` (`string.Template`, so the JSON braces in a prompt need no escaping). The version goes into the
trace with every call, so a change of wording is visible when results change.

Example:
    >>> p = load_prompt("judge")
    >>> p.name, p.version >= 1, "$rubric" in p.user_template
    ('judge', True, True)
    >>> sorted(PROMPTS)
    ['coordinator', 'dream_answer', 'dream_judge', 'dream_phrase', 'dream_table', 'evolver', 'judge', 'repair', 'worker']
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from string import Template
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

PROMPTS = ("coordinator", "worker", "judge", "evolver", "repair", "dream_answer", "dream_table", "dream_judge",
           "dream_phrase")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system_template: str
    user_template: str

    def system(self, fields: dict[str, Any]) -> str:
        return Template(self.system_template).substitute(fields).strip()

    def user(self, fields: dict[str, Any]) -> str:
        return Template(self.user_template).substitute(fields).strip()

    def messages(self, fields: dict[str, Any]) -> list[BaseMessage]:
        """System and user messages with ``fields`` filled in (a missing field is a KeyError: a bug)."""
        out: list[BaseMessage] = []
        if self.system_template.strip():
            out.append(SystemMessage(self.system(fields)))
        out.append(HumanMessage(self.user(fields)))
        return out

    @property
    def tag(self) -> str:
        return f"{self.name}@v{self.version}"


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    """The packaged prompt ``name`` (see `PROMPTS`)."""
    if name not in PROMPTS:
        raise KeyError(f"no prompt {name!r}; prompts: {list(PROMPTS)}")
    text = resources.files("tabline.agents.llm").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    head, _, body = text.partition("\n")
    if not head.startswith("version:"):
        raise ValueError(f"prompt {name}.md must start with 'version: N'")
    sections = {"system": "", "user": ""}
    current = None
    for line in body.splitlines(keepends=True):
        if line.startswith("--- "):
            current = line[4:].strip()
            continue
        if current in sections:
            sections[current] += line
    return Prompt(name, int(head.split(":", 1)[1]), sections["system"], sections["user"])
