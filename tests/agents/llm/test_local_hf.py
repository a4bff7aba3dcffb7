"""The ``hf:PATH`` chat model on a tiny random-weight checkpoint: loading, seeding, async, errors,
pickling, stop strings and LangChain caching. The text is gibberish; the plumbing is real."""
from __future__ import annotations

import asyncio
import copy
import pickle
import shutil

import pytest
from langchain_core.caches import InMemoryCache
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from tabline.agents.llm.local_hf import LocalHFChatModel, check_model_dir
from tabline.errors import ModelDirError
from tiny_hf import make_tiny_chat_model

MESSAGES = [SystemMessage("Answer with one JSON object."), HumanMessage('Give me a row: {"age": 1}')]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("tiny-hf") / "tiny-chat")


@pytest.fixture(scope="module")
def greedy(model_dir):
    """One loaded greedy model shared by the tests that only read from it (loading once keeps this file fast)."""
    return LocalHFChatModel(path=str(model_dir), temperature=0.0, max_new_tokens=16)


def test_invoke_returns_ai_message_with_usage(greedy):
    reply = greedy.invoke(MESSAGES)
    assert isinstance(reply, AIMessage)
    assert isinstance(reply.content, str)
    usage = reply.usage_metadata
    assert usage["input_tokens"] > 0
    assert 0 < usage["output_tokens"] <= greedy.max_new_tokens
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert reply.response_metadata["model_name"] == "tiny-chat"
    assert reply.response_metadata["finish_reason"] in ("stop", "length")

    short = greedy.invoke(MESSAGES, max_new_tokens=3)
    assert short.usage_metadata["output_tokens"] <= 3


def test_plain_prompt_without_chat_template(model_dir, tmp_path):
    # Base models have no chat template: the fallback transcript must still generate.
    plain = tmp_path / "plain"
    shutil.copytree(model_dir, plain)
    (plain / "chat_template.jinja").unlink()
    llm = LocalHFChatModel(path=str(plain), temperature=0.0, max_new_tokens=4)
    assert llm._prompt_text(llm._load()[1], MESSAGES) == (
        'System: Answer with one JSON object.\nUser: Give me a row: {"age": 1}\nAssistant:',
        False,
    )
    assert llm.invoke(MESSAGES).usage_metadata["input_tokens"] > 0


def test_same_seed_same_text_different_seeds_differ(model_dir):
    llm = LocalHFChatModel(path=str(model_dir), temperature=1.0, max_new_tokens=16, seed=123)
    first = llm.invoke(MESSAGES).content
    assert llm.invoke(MESSAGES).content == first
    assert LocalHFChatModel(path=str(model_dir), temperature=1.0, max_new_tokens=16, seed=123).invoke(MESSAGES).content == first
    # Any single pair of seeds could collide by chance; five distinct seeds all colliding cannot.
    texts = {llm.invoke(MESSAGES, seed=s).content for s in range(5)}
    assert len(texts) > 1


def test_seed_does_not_touch_global_rng(model_dir):
    import torch

    llm = LocalHFChatModel(path=str(model_dir), temperature=1.0, max_new_tokens=4, seed=0)
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    llm.invoke(MESSAGES)
    assert torch.equal(torch.rand(3), expected)


def test_ainvoke_matches_invoke_and_serialises(model_dir):
    llm = LocalHFChatModel(path=str(model_dir), temperature=1.0, max_new_tokens=8, seed=5)
    expected = llm.invoke(MESSAGES).content

    async def main():
        return await asyncio.gather(llm.ainvoke(MESSAGES), llm.ainvoke(MESSAGES))

    replies = asyncio.run(main())
    assert [r.content for r in replies] == [expected, expected]


def test_missing_directory(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelDirError, match="does not exist") as info:
        LocalHFChatModel(path=str(missing)).invoke("hi")
    assert str(missing.resolve()) in str(info.value)


def test_directory_without_config(model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "config.json").unlink()
    with pytest.raises(ModelDirError, match="config.json") as info:
        LocalHFChatModel(path=str(broken)).invoke("hi")
    assert str(broken.resolve()) in str(info.value)


def test_directory_without_weights_or_tokenizer(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelDirError, match=r"weights.*tokenizer"):
        check_model_dir(tmp_path)


def test_pickle_and_deepcopy_after_call_reload_lazily(greedy):
    before = greedy.invoke(MESSAGES).content
    clone = pickle.loads(pickle.dumps(greedy))
    assert clone._model is None and clone._tokenizer is None
    assert clone.invoke(MESSAGES).content == before
    # The original keeps its loaded weights: pickling must not strip the live object.
    assert greedy._model is not None

    twin = copy.deepcopy(greedy)
    assert twin._model is None and twin._lock is not greedy._lock
    assert twin.invoke(MESSAGES).content == before


def test_stop_string_truncates(model_dir):
    llm = LocalHFChatModel(path=str(model_dir), temperature=1.0, max_new_tokens=24, seed=1)
    full = llm.invoke(MESSAGES).content
    assert len(full) >= 6, full
    stop = full[3:5]
    expected = full[: full.find(stop)]
    reply = llm.invoke(MESSAGES, stop=[stop])
    assert reply.content == expected
    assert len(reply.content) < len(full)
    assert reply.response_metadata["finish_reason"] == "stop"


def test_langchain_cache_skips_second_generation(model_dir, monkeypatch):
    calls = []
    real_generate = LocalHFChatModel._generate

    def counting_generate(self, *args, **kwargs):
        calls.append(1)
        return real_generate(self, *args, **kwargs)

    monkeypatch.setattr(LocalHFChatModel, "_generate", counting_generate)
    llm = LocalHFChatModel(path=str(model_dir), temperature=0.0, max_new_tokens=8, cache=InMemoryCache())
    first = llm.invoke(MESSAGES)
    second = llm.invoke(MESSAGES)
    assert second.content == first.content
    assert len(calls) == 1
    llm.invoke(MESSAGES, max_new_tokens=4)  # different call parameters are a different cache entry
    assert len(calls) == 2


def test_identifying_params_resolve_path(model_dir):
    params = LocalHFChatModel(path=str(model_dir), seed=3)._identifying_params
    assert params == {"path": str(model_dir.resolve()), "temperature": 0.7, "max_new_tokens": 512, "seed": 3}
