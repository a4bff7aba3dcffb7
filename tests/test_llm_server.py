"""The scripted OpenAI server must look like the real API to the real clients, or every LLM test built on
it proves nothing. These tests drive ``openai.OpenAI`` and ``langchain_openai.ChatOpenAI`` against it and
pin down the client behaviours the LLM layer relies on (error classes, timeouts, usage, and what
``response_format`` does to the request and to malformed answers)."""
from __future__ import annotations

import json
import time

import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_openai import ChatOpenAI

# Not ``tests.llm_server``: that needs the repo root on sys.path (true for ``python -m pytest`` only),
# while pytest itself puts tests/ (home of the root conftest.py, no __init__.py) there for any runner.
from llm_server import Reply, ScriptedOpenAIServer

OUT_FORMAT = {"type": "json_schema", "json_schema": {
    "name": "Out",
    "schema": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]},
}}


def _client(server: ScriptedOpenAIServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key="test-key", max_retries=0, **kw)


def _chat(server: ScriptedOpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.url, api_key="test-key", model="m", max_retries=0)


def test_openai_client_round_trip():
    with ScriptedOpenAIServer([Reply("hello", prompt_tokens=5, completion_tokens=3)]) as server:
        messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        out = _client(server).chat.completions.create(model="gpt-test", messages=messages)
        assert out.choices[0].message.content == "hello"
        assert out.choices[0].finish_reason == "stop"
        assert out.model == "gpt-test"
        assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (5, 3, 8)
        assert server.requests[0]["model"] == "gpt-test"
        assert server.requests[0]["messages"] == messages
        assert server.headers[0]["authorization"] == "Bearer test-key"
        assert server.unplanned == 0


def test_chat_openai_reports_content_and_usage():
    with ScriptedOpenAIServer([Reply("hi there", prompt_tokens=13, completion_tokens=4)]) as server:
        msg = _chat(server).invoke("hi")
    assert isinstance(msg, AIMessage) and msg.content == "hi there"
    assert msg.usage_metadata["input_tokens"] == 13 and msg.usage_metadata["output_tokens"] == 4
    assert server.requests[0]["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(("status", "error"), [(429, openai.RateLimitError), (503, openai.InternalServerError),
                                               (500, openai.InternalServerError)])
def test_error_statuses_raise_the_clients_own_classes(status, error):
    with ScriptedOpenAIServer([Reply(status=status, headers={"retry-after": "0"})]) as server:
        with pytest.raises(error) as info:
            _client(server).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status
    assert len(server.requests) == 1  # max_retries=0 really means one attempt


def test_slow_reply_times_out_and_close_does_not_wait_for_it():
    start = time.monotonic()
    with ScriptedOpenAIServer([Reply("late", delay_s=2)]) as server:
        with pytest.raises(openai.APITimeoutError):
            _client(server, timeout=0.3).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert time.monotonic() - start < 1.5  # the handler still "sleeping" was woken by close()


def test_exhausted_script_answers_500_and_is_counted():
    with ScriptedOpenAIServer([Reply("only one")]) as server:
        client = _client(server)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "1"}])
        with pytest.raises(openai.InternalServerError, match="script exhausted"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "2"}])
        assert server.unplanned == 1 and len(server.requests) == 2


def test_callable_script_sees_request_and_call_index():
    seen = []

    def script(request: dict, index: int) -> Reply:
        seen.append((request["messages"][-1]["content"], index))
        return Reply(f"answer {index}")

    with ScriptedOpenAIServer(script) as server:
        client = _client(server)
        answers = [client.chat.completions.create(model="m", messages=[{"role": "user", "content": q}])
                   .choices[0].message.content for q in ("a", "b")]
    assert answers == ["answer 0", "answer 1"]
    assert seen == [("a", 0), ("b", 1)]
    assert server.errors == [] and server.unplanned == 0


def test_unknown_path_and_streaming_get_openai_style_errors():
    with ScriptedOpenAIServer([]) as server:
        client = _client(server)
        with pytest.raises(openai.NotFoundError):
            client.embeddings.create(model="m", input="x")
        with pytest.raises(openai.BadRequestError, match="stream"):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
        assert server.requests[0]["stream"] is True
        assert server.unplanned == 0  # neither reached the script


def test_json_schema_binding_is_sent_verbatim_and_content_comes_back_raw():
    with ScriptedOpenAIServer([Reply.json({"x": 3}), Reply("{not json")]) as server:
        bound = _chat(server).bind(response_format=OUT_FORMAT)
        good, bad = bound.invoke("hi"), bound.invoke("hi")
    # langchain-openai routes a bound response_format through client.chat.completions.parse(); the
    # schema goes out untouched (no "strict" added) and a dict schema is never parsed by the client.
    body = server.requests[0]
    assert body["response_format"] == OUT_FORMAT
    assert server.headers[0]["x-stainless-helper-method"] == "chat.completions.parse"
    assert json.loads(good.content) == {"x": 3}
    assert good.additional_kwargs.get("parsed") is None
    assert good.usage_metadata["input_tokens"] == 11 and good.usage_metadata["output_tokens"] == 7
    # Malformed JSON does not raise: the caller gets the text and must parse (and reject) it itself.
    assert bad.content == "{not json"


@pytest.mark.parametrize(("finish_reason", "error"), [("length", openai.LengthFinishReasonError),
                                                      ("content_filter", openai.ContentFilterFinishReasonError)])
def test_json_schema_binding_raises_on_truncated_or_filtered_answers(finish_reason, error):
    # The parse() route refuses these finish reasons before langchain sees the message; the errors are
    # OpenAIError but not APIError, so code catching only openai.APIError would let them through.
    assert not issubclass(error, openai.APIError)
    with ScriptedOpenAIServer([Reply('{"x": 1', finish_reason=finish_reason)]) as server:
        with pytest.raises(error):
            _chat(server).bind(response_format=OUT_FORMAT).invoke("hi")
