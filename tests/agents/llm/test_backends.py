"""Backend shorthands, model refs (what is pickled) and settings."""
from __future__ import annotations

import pickle

import pytest

from tabline.agents.llm.backends import (BackendError, InvalidModelSpecError, LLMSettings, ModelRef,
                                         build_chat_model, parse_model_spec)


@pytest.mark.parametrize("spec, expected", [
    pytest.param("openai:gpt-4o-mini", ("openai", "", "gpt-4o-mini"), id="openai"),
    pytest.param("openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct",
                 ("openai-compatible", "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-7B-Instruct"), id="vllm"),
    pytest.param("openai-compatible:http://localhost:11434/v1:llama3.1:8b",
                 ("openai-compatible", "http://localhost:11434/v1", "llama3.1:8b"), id="ollama-colon-model"),
    pytest.param("openai-compatible:https://api.example.com:m", ("openai-compatible", "https://api.example.com", "m"),
                 id="no-path"),
    pytest.param("hf:/models/tiny", ("hf", "/models/tiny", ""), id="hf"),
    pytest.param("embedded", ("embedded", "", ""), id="embedded"),
])
def test_shorthands_parse(spec, expected):
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec, words", [
    pytest.param("gpt-4o", "not a backend shorthand", id="bare-name"),
    pytest.param("openai:", "nothing after", id="empty-model"),
    pytest.param("openai-compatible:127.0.0.1:8000:m", "expected openai-compatible:URL:MODEL", id="no-scheme"),
    pytest.param("anthropic:claude", "not a backend shorthand", id="unknown-backend"),
])
def test_bad_shorthands_name_the_problem(spec, words):
    with pytest.raises(InvalidModelSpecError, match=words):
        parse_model_spec(spec)


def test_openai_without_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        build_chat_model("openai:gpt-4o-mini", temperature=0, settings=LLMSettings())


def test_clients_never_retry_on_their_own(monkeypatch):
    monkeypatch.setenv("TABLINE_LLM_API_KEY", "sk-local")
    model = build_chat_model("openai-compatible:http://127.0.0.1:9/v1:m", temperature=0.3,
                             settings=LLMSettings(timeout_s=7, max_tokens=99), seed=5)
    assert (model.max_retries, model.request_timeout, model.max_tokens, model.seed) == (0, 7, 99, 5)
    assert model.openai_api_base == "http://127.0.0.1:9/v1" and model.model_name == "m"


def test_a_pickled_ref_holds_no_client_and_no_key(monkeypatch):
    # Setup: a ref with a live client whose key comes from the environment
    monkeypatch.setenv("TABLINE_LLM_API_KEY", "sk-very-secret-123")
    ref = ModelRef("openai-compatible:http://127.0.0.1:9/v1:m", temperature=0.5,
                   settings=LLMSettings(cache=False))
    assert ref.get() is not None
    # Run
    blob = pickle.dumps(ref)
    # Assert: no key in the bytes; the copy rebuilds its client lazily
    assert b"sk-very-secret" not in blob
    copy = pickle.loads(blob)
    assert copy._model is None and copy.get().model_name == "m"


def test_cache_is_on_for_temperature_zero_only_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TABLINE_CACHE_DIR", str(tmp_path))
    assert ModelRef("openai:x", temperature=0).cached and not ModelRef("openai:x", temperature=0.7).cached
    assert ModelRef("openai:x", temperature=0.7, settings=LLMSettings(cache=True)).cached
    assert LLMSettings().cache_file() == tmp_path / "llm-cache.sqlite"


def test_structured_mode_follows_the_backend():
    assert ModelRef("openai:x").structured == "json_schema"
    assert ModelRef("openai:x", registry={"openai:x": object()}).structured == "prompt"
    assert ModelRef("openai:x", settings=LLMSettings(structured="prompt")).structured == "prompt"
