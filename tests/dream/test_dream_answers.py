"""Reading a model's answer out of its reply and comparing it with the executed reference."""
from __future__ import annotations

import pytest

from tabline.dream.answers import check, parse_list, parse_number
from tabline.dream.programs import Answer

CASES = [
    # numbers
    pytest.param("42", Answer("number", 42.0), "correct", id="bare-number"),
    pytest.param("The answer is 42.", Answer("number", 42.0), "correct", id="answer-is-sentence"),
    pytest.param("Rows 3 and 7 qualify, so the total is **1,250.5**.", Answer("number", 1250.5), "correct",
                 id="bold-with-thousands-comma"),
    pytest.param("Answer: 99.5", Answer("number", 100.0), "correct", id="within-1-percent"),
    pytest.param("Answer: 98", Answer("number", 100.0), "wrong", id="outside-1-percent"),
    pytest.param("The change is −25%", Answer("number", -25.0), "correct", id="unicode-minus-percent"),
    pytest.param("First I add 3 and 4, giving 7. The answer is 12.", Answer("number", 12.0), "correct",
                 id="numbers-in-reasoning-then-answer"),
    pytest.param("I cannot tell from the table.", Answer("number", 3.0), "unparsable", id="no-number"),
    pytest.param("0", Answer("number", 0.0), "correct", id="zero"),
    # booleans
    pytest.param("**True**", Answer("bool", True), "correct", id="bold-true"),
    pytest.param("No, Oslo is smaller.", Answer("bool", False), "correct", id="no-means-false"),
    pytest.param("The claim is not true.", Answer("bool", True), "wrong", id="not-true"),
    pytest.param("True or false? Hard to say.", Answer("bool", True), "unparsable", id="both-words"),
    # text
    pytest.param("Rome", Answer("text", "Rome"), "correct", id="bare-text"),
    pytest.param("The answer is: **rome**.", Answer("text", "Rome"), "correct", id="case-and-markdown"),
    pytest.param("It is Rome.", Answer("text", "Rome"), "correct", id="filler-before"),
    pytest.param("not ideal", Answer("text", "Ideal"), "wrong", id="negated-is-not-contained"),
    pytest.param("Answer: Cafe Nord", Answer("text", "Café Nord"), "correct", id="accents"),
    pytest.param("Answer: 7", Answer("text", "7.0"), "correct", id="numeric-key"),
    # lists
    pytest.param("Rome, Oslo", Answer("list", ["Oslo", "Rome"]), "correct", id="list-any-order"),
    pytest.param("The top two are:\n- Rome\n- Oslo", Answer("list", ["Oslo", "Rome"]), "correct",
                 id="bullets-after-a-lead-in"),
    pytest.param("Answer: Rome and Oslo", Answer("list", ["Oslo", "Rome"]), "correct", id="list-with-and"),
    pytest.param("Answer: Rome, Bern", Answer("list", ["Oslo", "Rome"]), "wrong", id="list-wrong-member"),
    # empty
    pytest.param("", Answer("text", "Rome"), "unparsable", id="empty"),
    pytest.param("   \n", Answer("number", 1.0), "unparsable", id="blank"),
    pytest.param(None, Answer("bool", True), "unparsable", id="none"),
]


@pytest.mark.parametrize("reply, reference, verdict", CASES)
def test_verdicts(reply, reference, verdict):
    result = check(reply, reference)
    assert result.verdict == verdict
    assert result.raw == (reply or "")  # the raw text is always kept


def test_unparsable_says_why():
    assert check("", Answer("text", "x")).reason == "empty answer"
    assert check("no idea", Answer("number", 1.0)).reason == "no number in the answer"


def test_tolerance_is_a_setting():
    assert check("101", Answer("number", 100.0), rel_tol=1e-3).verdict == "wrong"
    assert check("101", Answer("number", 100.0), rel_tol=2e-2).verdict == "correct"


def test_number_and_list_parsers():
    assert parse_number("from 1,000 to 2,500") == 2500.0
    assert parse_number(".5 of them") == 0.5
    assert parse_list("Answer: x; y; z") == ["x", "y", "z"]
    assert parse_list("Answer:\n1. x\n2. y") == ["x", "y"]
