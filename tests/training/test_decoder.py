"""The inference-only decoder computes what transformers' GPT-2 computes, in float32 exactly and in bfloat16
closely enough that sampling from it is sampling from the trained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from transformers import GPT2LMHeadModel

from tabline.training import TabularLM, TabularLMConfig
from tabline.training.decoder import Decoder, cpu_has_fast_bf16, resolve_precision
from tabline.training.lm import training_orders


@pytest.fixture(scope="module", params=["folded", "markers"])
def lm(request, tiny_lm, diamonds):
    """The shared tiny model (markers folded into the token before them) and one in the older layout."""
    if request.param == "folded":
        return tiny_lm
    cfg = TabularLMConfig(n_layer=2, n_embd=64, max_epochs=3, seed=0, batch_size=32, fold_markers=False)
    return TabularLM(cfg).fit(diamonds.iloc[:800], progress=False)


def _inputs(lm, n: int = 96) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Real rows in training layouts (schema order and random prefixes), as the model runs them: its
    position ids, the marker folded into each (None unfolded) and transformers' logits, (B, K, V)."""
    values = lm.tokenizer.encode_values(lm.sample(n, seed=5))
    orders = training_orders(n, len(lm.tokenizer.codes), np.random.default_rng(0), canonical_fraction=0.5)
    ids = torch.from_numpy(lm.tokenizer.assemble(values, orders))  # (B, T)
    model = lm.model
    with torch.no_grad():
        if not model.folded:
            return ids, None, model(input_ids=ids).logits
        _, short, plus = model.fold(ids)  # (B, K) each
        return short, plus, GPT2LMHeadModel.forward(model, inputs_embeds=model.embed(short, plus)).logits


def _stepwise_logprobs(dec: Decoder, ids: torch.Tensor, plus: torch.Tensor | None, chunks: list[int]) -> torch.Tensor:
    """Feed ``ids`` in chunks; log-probs over the whole vocabulary after every chunk, (steps, B, V)."""
    dec.start(ids.shape[0], ids.shape[1])
    out, pos = [], 0
    for k in chunks:
        h = dec.step(ids[:, pos : pos + k], None if plus is None else plus[:, pos : pos + k])
        pos += k
        out.append(torch.log_softmax(dec.logits(h, 0, dec.wte.shape[0]), -1))
    return torch.stack(out)


def _chunks(length: int) -> list[int]:
    sizes, rest = [], length - 1  # the last token predicts nothing
    for k in [1, 2, 3] * length:
        if rest <= 0:
            break
        sizes.append(min(k, rest))
        rest -= sizes[-1]
    return sizes


def test_float32_decoder_matches_transformers_gpt2(lm):
    # Setup: real rows, fed 1, 2 and 3 positions at a time (as forced markers and conditions are)
    ids, plus, logits = _inputs(lm)
    chunks = _chunks(ids.shape[1])
    # Run
    ours = _stepwise_logprobs(Decoder(lm.model, "float32"), ids, plus, chunks)
    full = torch.log_softmax(logits.float(), -1)  # (B, T, V)
    ends = np.cumsum(chunks) - 1
    ref = full[:, ends].transpose(0, 1)  # (steps, B, V)
    # Assert: the same next-token distributions, to float32 rounding
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=0)


def test_bfloat16_decoder_distributions_stay_close_to_float32(lm):
    # Setup
    ids, plus, _ = _inputs(lm, 256)
    chunks = _chunks(ids.shape[1])
    # Run
    exact = _stepwise_logprobs(Decoder(lm.model, "float32"), ids, plus, chunks)
    fast = _stepwise_logprobs(Decoder(lm.model, "bfloat16"), ids, plus, chunks)
    # Assert: KL(float32 || bfloat16) per step is far below what training moves (validation losses of
    # successive epochs differ by ~1e-2 nats per token)
    kl = (exact.exp() * (exact - fast)).nan_to_num().sum(-1)  # (steps, B)
    assert float(kl.mean()) < 1e-3, float(kl.mean())
    assert float(kl.max()) < 2e-2, float(kl.max())


def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if cpu_has_fast_bf16() else torch.float32)
    assert resolve_precision("float32", cpu) == torch.float32
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_same_seed_same_rows_in_either_precision(tiny_lm, precision):
    a = tiny_lm.sample(300, seed=11, precision=precision)
    b = tiny_lm.sample(300, seed=11, precision=precision, batch_size=300)
    c = tiny_lm.sample(300, seed=12, precision=precision)
    assert a.equals(b)
    assert not a.equals(c)
