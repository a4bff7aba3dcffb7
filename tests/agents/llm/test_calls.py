"""Structured calls through the real ChatOpenAI client against a scripted OpenAI-compatible server."""
from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.messages import HumanMessage
from pydantic import BaseModel

from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.llm.backends import BackendError, LLMSettings, ModelRef
from tabline.agents.llm.calls import StructuredCaller, backoff_delay, extract_json, merge_usage


class Answer(BaseModel):
    x: int


FAST = dict(backoff_s=0.01, backoff_max_s=0.05, cache=False)


def ask(server, *, check=None, temperature=0.5, **settings):
    ref = ModelRef(f"openai-compatible:{server.url}:m", temperature=temperature,
                   settings=LLMSettings(**{**FAST, **settings}))
    caller = StructuredCaller(ref, role="test")

    async def go():
        return await caller.ask([HumanMessage("give x")], Answer, semaphore=asyncio.Semaphore(2), check=check)

    return asyncio.run(go()), caller


@pytest.mark.parametrize("retry, u, after, expected", [
    pytest.param(0, 0.0, None, 0.5, id="first-no-jitter"),
    pytest.param(0, 1.0, None, 1.0, id="first-full-jitter"),
    pytest.param(2, 0.5, None, 3.0, id="doubles"),
    pytest.param(9, 0.9, None, 9.5, id="capped"),
    pytest.param(1, 0.0, 7.0, 7.0, id="retry-after-floor"),
    pytest.param(1, 0.0, 99.0, 10.0, id="retry-after-capped"),
])
def test_backoff_by_hand(retry, u, after, expected):
    # base 1: delay d = min(10, 2^retry); wait = d/2 + u·d/2, at least Retry-After, at most 10
    assert backoff_delay(retry, base=1.0, cap=10.0, u=u, retry_after=after) == pytest.approx(expected)


def test_extract_json_finds_the_object():
    assert json.loads(extract_json('Here: {"x": 1} done')) == {"x": 1}
    assert json.loads(extract_json('```json\n{"x": 2}\n```')) == {"x": 2}


def test_success_sends_the_schema_and_counts_tokens():
    with ScriptedOpenAIServer([Reply.json({"x": 3}, prompt_tokens=12, completion_tokens=5)]) as server:
        outcome, caller = ask(server)
        body = server.requests[0]
    assert outcome.ok and outcome.value.x == 3
    assert body["response_format"]["json_schema"]["schema"]["properties"]["x"]["type"] == "integer"
    usage = caller.usage.take()
    assert (usage["calls"], usage["input_tokens"], usage["output_tokens"], usage["repairs"]) == (1, 12, 5, 0)
    assert caller.usage.take() is None  # take() empties it


def test_malformed_json_is_shown_to_the_model_then_fixed():
    with ScriptedOpenAIServer([Reply("{not json"), Reply.json({"x": 4})]) as server:
        outcome, caller = ask(server)
        second = server.requests[1]["messages"]
    assert outcome.ok and outcome.value.x == 4 and outcome.raw == ["{not json", '{"x": 4}']
    assert second[-2] == {"role": "assistant", "content": "{not json"}
    assert "could not be used" in second[-1]["content"] and "not valid JSON" in second[-1]["content"]
    assert caller.usage.take()["repairs"] == 1


def test_check_problems_are_fed_back_and_attempts_are_bounded():
    replies = [Reply.json({"x": -1})] * 3
    with ScriptedOpenAIServer(replies) as server:
        outcome, caller = ask(server, check=lambda a: [] if a.x >= 0 else [f"x = {a.x} must be >= 0"], attempts=3)
        n = len(server.requests)
        last = server.requests[-1]["messages"][-1]["content"]
    assert not outcome.ok and n == 3 and len(outcome.raw) == 3
    assert "x = -1 must be >= 0" in last and outcome.errors[-1] == "x = -1 must be >= 0"


def test_rate_limit_is_retried_after_a_backoff():
    with ScriptedOpenAIServer([Reply(status=429, headers={"retry-after": "0"}), Reply(status=503),
                               Reply.json({"x": 5})]) as server:
        outcome, caller = ask(server)
        n = len(server.requests)
    usage = caller.usage.take()
    assert outcome.ok and n == 3 and usage["retries"] == 2 and usage["calls"] == 1


def test_timeouts_give_up_after_the_retries_and_keep_the_reason():
    with ScriptedOpenAIServer([Reply.json({"x": 1}, delay_s=2)] * 3) as server:
        outcome, caller = ask(server, timeout_s=0.2, transient_retries=1)
        n = len(server.requests)
    assert not outcome.ok and n == 2
    assert "gave up after 2 tries" in outcome.errors[-1] and "timeout" in outcome.errors[-1].lower()


def test_an_error_retrying_cannot_fix_stops_with_the_model_named():
    with ScriptedOpenAIServer([Reply(status=401, content="bad key")]) as server:
        with pytest.raises(BackendError, match=r"test model openai-compatible:http://127\.0\.0\.1:\d+/v1:m: HTTP 401"):
            ask(server)


def test_a_truncated_answer_is_asked_again_more_briefly():
    with ScriptedOpenAIServer([Reply('{"x": ', finish_reason="length"), Reply.json({"x": 6})]) as server:
        outcome, caller = ask(server)
        last = server.requests[1]["messages"][-1]["content"]
    assert outcome.ok and outcome.value.x == 6 and "cut off at the token limit" in last


def test_temperature_zero_answers_come_from_the_sqlite_cache(tmp_path, monkeypatch):
    # Setup: a key in the environment that must not reach the cache file
    monkeypatch.setenv("TABLINE_LLM_API_KEY", "sk-secret-in-env-777")
    path = tmp_path / "cache.sqlite"
    with ScriptedOpenAIServer([Reply.json({"x": 7}), Reply.json({"x": 8})]) as server:
        first, c1 = ask(server, temperature=0.0, cache=None, cache_path=str(path))
        second, c2 = ask(server, temperature=0.0, cache=None, cache_path=str(path))
        n = len(server.requests)
        auth = server.headers[0]["authorization"]
    assert first.value.x == second.value.x == 7 and n == 1
    assert c1.usage.take()["calls"] == 1 and c2.usage.take()["cached"] == 1
    assert auth == "Bearer sk-secret-in-env-777"
    assert b"sk-secret-in-env" not in path.read_bytes()


def test_merge_usage_sums_and_keeps_unknown_cost_unknown():
    a = {"calls": 1, "cached": 0, "input_tokens": 10, "output_tokens": 2, "retries": 0, "repairs": 0,
         "failures": 0, "cost_usd": None}
    b = {**a, "calls": 2, "cost_usd": 0.5}
    assert merge_usage([a, None, b]) == {**a, "calls": 3, "input_tokens": 20, "output_tokens": 4, "cost_usd": 0.5}
    assert merge_usage([None]) is None
