"""The inference-only decoder computes what transformers' GPT-2 computes, in float32 exactly and in bfloat16
closely enough that sampling from it is sampling from the trained model."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tabline.training.decoder import Decoder, cpu_has_fast_bf16, resolve_precision


def _rows(lm, n: int = 96) -> torch.Tensor:
    return torch.from_numpy(lm.tokenizer.encode(lm.sample(n, seed=5)))  # (n, T) real layouts of the model


def _stepwise_logprobs(dec: Decoder, ids: torch.Tensor, chunks: list[int]) -> torch.Tensor:
    """Feed ``ids`` in chunks; log-probs over the whole vocabulary after every chunk, (steps, B, V)."""
    dec.start(ids.shape[0], ids.shape[1])
    out, pos = [], 0
    for k in chunks:
        h = dec.step(ids[:, pos : pos + k])
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


def test_float32_decoder_matches_transformers_gpt2(tiny_lm):
    # Setup: real rows, fed 1, 2 and 3 tokens at a time (as forced markers and conditions are)
    ids = _rows(tiny_lm)
    chunks = _chunks(ids.shape[1])
    # Run
    ours = _stepwise_logprobs(Decoder(tiny_lm.model, "float32"), ids, chunks)
    with torch.no_grad():
        full = torch.log_softmax(tiny_lm.model(input_ids=ids).logits.float(), -1)  # (B, T, V)
    ends = np.cumsum(chunks) - 1
    ref = full[:, ends].transpose(0, 1)  # (steps, B, V)
    # Assert: the same next-token distributions, to float32 rounding
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=2e-4, rtol=0)


def test_bfloat16_decoder_distributions_stay_close_to_float32(tiny_lm):
    # Setup
    ids = _rows(tiny_lm, 256)
    chunks = _chunks(ids.shape[1])
    # Run
    exact = _stepwise_logprobs(Decoder(tiny_lm.model, "float32"), ids, chunks)
    fast = _stepwise_logprobs(Decoder(tiny_lm.model, "bfloat16"), ids, chunks)
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
