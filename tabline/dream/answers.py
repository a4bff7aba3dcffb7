"""Checking a model's answer against the executed reference: find the answer in the prose around it
("The answer is 42.", "**True**", "Answer: a, b"), then compare by the reference's kind — numbers within a
relative tolerance (1e-2 by default), booleans, normalised text, lists as sets. An empty answer, or one with
nothing of the right kind in it, is ``unparsable``; the raw text is always kept with the verdict.

Example:
    >>> from tabline.dream.programs import Answer
    >>> check("After adding them up, the answer is **1,234.5**.", Answer("number", 1234.5)).verdict
    'correct'
    >>> check("I think it is False.", Answer("bool", True)).verdict
    'wrong'
    >>> check("", Answer("text", "Oslo")).verdict
    'unparsable'
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

from tabline.dream.programs import Answer

_NUM = re.compile(r"(?<![\w.])[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?%?|(?<![\w.])[-+−]?\.\d+%?")
_LEAD = re.compile(r"(?:final answer|the answer is|answer\s*[:：]|answer is|=>)\s*(.+)", re.I | re.S)
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.S)
_TRUE = {"true", "yes", "correct", "right"}
_FALSE = {"false", "no", "incorrect", "wrong", "not true"}


@dataclass(frozen=True)
class Check:
    """A verdict (``correct`` / ``wrong`` / ``unparsable``), what was read from the answer, and the raw text."""

    verdict: str
    parsed: Any
    raw: str
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def normalise(text: str) -> str:
    """Text compared as a person would: case, accents, quotes, markdown and end punctuation ignored.

    Example:
        >>> normalise('  "**Café  Nord**." ')
        'cafe nord'
    """
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[*_`\"“”‘’]", "", text).replace("'", "'")
    text = " ".join(text.split()).casefold()
    return text.strip(" .,:;!?'()[]")


def focus(text: str) -> str:
    """The part of a reply that states the answer: after "answer is"/"Answer:", else a bold span, else all.

    Example:
        >>> focus("Let me think. Row b has 5. The answer is: b."), focus("It is **Oslo** of course")
        ('b.', 'Oslo')
    """
    lead = list(_LEAD.finditer(text))
    if lead:
        return lead[-1].group(1).strip().lstrip(":").strip().split("\n")[0]
    bold = _BOLD.findall(text)
    if bold:
        return next(a or b for a, b in reversed(bold))
    return text.strip()


def parse_number(text: str) -> float | None:
    """The answer's number: the only one in the focus, else its last. Thousands commas, a unicode minus and a
    trailing % are read.

    Example:
        >>> parse_number("The answer is −1,250.5"), parse_number("3 rows, total 17."), parse_number("none")
        (-1250.5, 17.0, None)
    """
    found = _NUM.findall(focus(text)) or _NUM.findall(text)
    if not found:
        return None
    token = found[-1].replace(",", "").replace("−", "-").rstrip("%")
    try:
        return float(token)
    except ValueError:
        return None


def parse_bool(text: str) -> bool | None:
    """True/False (yes/no) in the focus; None when absent or both appear.

    Example:
        >>> parse_bool("**True**"), parse_bool("No, it is lower."), parse_bool("maybe")
        (True, False, None)
    """
    words = set(re.findall(r"[a-z]+", normalise(focus(text))))
    if "not true" in normalise(focus(text)):
        return False
    t, f = bool(words & _TRUE), bool(words & _FALSE)
    return t if t != f else None


def parse_list(text: str) -> list[str]:
    """Items of a list answer: split on commas, semicolons, "and", new lines and bullets.

    Example:
        >>> parse_list("The answer is: A, b and C."), parse_list("- x\\n- y")
        (['a', 'b', 'c'], ['x', 'y'])
    """
    lead = list(_LEAD.finditer(text))
    body = lead[-1].group(1).strip() if lead else text.strip()  # all lines after the marker: a list may span them
    lines = body.splitlines()
    if len(lines) > 1 and lines[0].rstrip().endswith(":"):  # "The top two are:" introduces the items
        body = "\n".join(lines[1:])
    parts = re.split(r"\s*(?:,|;|\n|\band\b)\s*", body)
    return [normalise(re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", p)) for p in parts if normalise(p)]


def check(text: str | None, reference: Answer, *, rel_tol: float = 1e-2) -> Check:
    """Compare a model's reply with the executed reference."""
    raw = "" if text is None else str(text)
    if not raw.strip():
        return Check("unparsable", None, raw, "empty answer")
    kind = reference.kind
    if kind == "number":
        got = parse_number(raw)
        if got is None:
            return Check("unparsable", None, raw, "no number in the answer")
        ok = math.isclose(got, float(reference.value), rel_tol=rel_tol, abs_tol=1e-6)
        return Check("correct" if ok else "wrong", got, raw)
    if kind == "bool":
        got = parse_bool(raw)
        if got is None:
            return Check("unparsable", None, raw, "neither true nor false (or both)")
        return Check("correct" if got == bool(reference.value) else "wrong", got, raw)
    if kind == "list":
        got = parse_list(raw)
        if not got:
            return Check("unparsable", None, raw, "no list items in the answer")
        ok = set(got) == {normalise(v) for v in reference.value}
        return Check("correct" if ok else "wrong", got, raw)
    return _check_text(raw, str(reference.value))


def _check_text(raw: str, reference: str) -> Check:
    got = normalise(focus(raw))
    want = normalise(reference)
    if got == want or normalise(raw) == want:
        return Check("correct", got, raw)
    ref_number = parse_number(reference) if re.fullmatch(r"[-\d.,]+", reference.strip()) else None
    if ref_number is not None and parse_number(raw) == ref_number:  # a numeric key written differently
        return Check("correct", got, raw)
    # "It is Oslo." — a filler before the value; never a containment test ("not ideal" is not "ideal")
    if re.sub(r"^(?:it is|it's|this is|that is|that's|answer|the answer)\s+", "", got) == want:
        return Check("correct", got, raw)
    return Check("wrong" if got else "unparsable", got or None, raw, "" if got else "nothing after the answer marker")


__all__ = ["Check", "check", "focus", "normalise", "parse_bool", "parse_list", "parse_number"]
