"""GReaT-style text rows on any transformers causal LM: parsing, log-probabilities, trl SFT, alignment steps.

The model is a tiny random-weight GPT-2 written offline (tests/agents/llm/tiny_hf.py), so what is checked is
the plumbing a real checkpoint goes through, not the quality of its rows.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agents" / "llm"))
from tiny_hf import make_tiny_chat_model  # noqa: E402

from tabline.errors import ModelDirError  # noqa: E402
from tabline.schema import Schema  # noqa: E402
from tabline.training.tabgraa import AlignConfig, Aligner  # noqa: E402
from tabline.training.policies import TextRowsPolicy, format_text_row, load_policy, parse_text_row  # noqa: E402

TABLE = pd.DataFrame({"age": [23, 35, 47, 51, 62, 29, 33, 41] * 4,
                      "job": ["nurse", "chef", "pilot", "chef"] * 8})


@pytest.fixture()
def policy(tmp_path):
    torch.set_num_threads(1)
    path = make_tiny_chat_model(tmp_path / "tiny")
    return TextRowsPolicy(path, Schema.infer(TABLE), threads=1)


def test_text_rows_round_trip_and_invalid_texts_are_dropped(policy):
    texts = [format_text_row({"age": 23, "job": "nurse"}, ["job", "age"]),
             "age is 35, job is astronaut",  # not a category of the table
             "age is old, job is chef",  # not a number
             "job is chef",  # a column is missing
             "garbage"]
    frame, ok = policy.rows(texts)
    assert ok.tolist() == [True, False, False, False, False]
    assert frame.to_dict("records") == [{"age": 23, "job": "nurse"}]
    assert parse_text_row("garbage") is None


def test_logprob_is_the_sum_over_the_row_tokens(policy):
    text = "age is 23, job is nurse"
    tok = policy.tokenizer
    ids = [policy.start] + tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logp = torch.log_softmax(policy.model(input_ids=torch.tensor([ids])).logits[0], -1)
    by_hand = sum(logp[t - 1, ids[t]].item() for t in range(1, len(ids)))
    got = policy.logprob(policy.model, np.array([text, "job is chef, age is 35"], dtype=object), np.array([0]))
    assert got.item() == pytest.approx(by_hand, abs=1e-4)


def _memorise(policy, texts: list[str], steps: int = 100) -> None:
    """Fit the tiny model to ``texts`` by plain gradient steps on their log-probability (about a second)."""
    torch.manual_seed(0)  # dropout
    items = np.array(texts, dtype=object)
    opt = torch.optim.Adam(policy.model.parameters(), lr=1e-2)
    policy.model.train()
    for _ in range(steps):
        loss = -policy.logprob(policy.model, items, np.arange(len(items))).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.model.eval()


def test_sampling_gibberish_gives_no_rows_and_counts_every_attempt(policy):
    # Run: random weights and 8 new tokens cannot spell out "age is …, job is …"
    frame, texts = policy.sample(4, seed=0, temperature=1.0, max_new_tokens=8)
    # Assert: nothing kept, and all 5·n attempts are counted as invalid
    assert len(frame) == 0 and len(texts) == 0
    assert list(frame.columns) == ["age", "job"]
    assert policy.invalid == 5 * 4


def test_sampling_keeps_the_valid_rows_and_counts_the_invalid_ones(policy):
    # Setup: the model learns two texts about equally: a valid row, and one whose job the table does not have
    _memorise(policy, ["age is 23, job is nurse", "age is 35, job is astronaut"])
    # Run: one batch of 5·4 = 20 attempts
    frame, texts = policy.sample(4, seed=0, temperature=1.0)
    # Assert: only the valid row comes back, coerced to the schema's types, with its text
    assert frame.to_dict("records") == [{"age": 23, "job": "nurse"}] * 4
    assert Schema.infer(TABLE).valid_rows(frame).all()
    assert texts.tolist() == ["age is 23, job is nurse"] * 4
    assert 0 < policy.invalid <= 20 - 4  # the astronaut rows (and any garbled ones) were counted


def test_sft_uses_trl_and_changes_the_weights(policy):
    before = [p.detach().clone() for p in policy.model.parameters()]
    losses = policy.sft(TABLE, steps=2, batch_size=4, learning_rate=1e-2, seed=0)
    assert np.isfinite(losses).all()
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters()))


@pytest.mark.parametrize("loss", ["graa", "dpo", "npo"])
def test_alignment_steps_on_text_rows(policy, loss):
    aligner = Aligner(policy, TABLE, AlignConfig(loss=loss, group_batch=2, learning_rate=1e-2))
    items, _ = policy.items(TABLE.head(8), seed=0)
    before, ref = [p.detach().clone() for p in policy.model.parameters()], [p.detach().clone() for p in aligner.reference.parameters()]
    metrics = aligner.align(items, np.linspace(0, 1, 8), 0)
    assert metrics["steps"] == 2 and np.isfinite(metrics["loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, policy.model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ref, aligner.reference.parameters()))


def test_save_and_load_policy_round_trip(policy, tmp_path):
    policy.save(tmp_path / "out", {"align.json": "{}"})
    again = load_policy(tmp_path / "out")
    assert isinstance(again, TextRowsPolicy) and again.schema.names == ["age", "job"]
    assert (tmp_path / "out" / "align.json").exists()


def test_a_directory_that_is_no_model_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelDirError, match="no schema.json|neither a tabline model"):
        load_policy(tmp_path / "empty", TABLE)
