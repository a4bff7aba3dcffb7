"""Constrained decoding: the KV cache goes by whichever name the installed transformers uses, silently."""
from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import torch
import transformers

from tabline.training.sampler import cache_keyword, sample_values


class _PastKeyValuesModel(torch.nn.Module):
    """The model as transformers 4.x exposes it: the cache is ``past_key_values`` in and out."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, past_key_values=None, use_cache=False):
        out = self.inner(input_ids=input_ids, use_cache=use_cache, **{cache_keyword(self.inner): past_key_values})
        return SimpleNamespace(logits=out.logits, past_key_values=getattr(out, cache_keyword(self.inner)))


def _values(model, lm, n: int = 64, seed: int = 3) -> np.ndarray:
    d = len(lm.tokenizer.codes)
    forced = np.full((n, d, 2), -1, dtype=np.int64)  # (n, d, 2): nothing conditioned
    return sample_values(model, lm.tokenizer, forced, list(range(d)), generator=torch.Generator().manual_seed(seed))


def test_both_names_of_the_cache_sample_the_same_rows(tiny_lm):
    # Setup: the installed transformers' name, and a 4.x-style wrapper around the same weights
    major = int(transformers.__version__.split(".")[0])
    assert cache_keyword(tiny_lm.model) == ("cache" if major >= 5 else "past_key_values")
    assert cache_keyword(_PastKeyValuesModel(tiny_lm.model)) == "past_key_values"
    # Run
    ours, old_style = _values(tiny_lm.model, tiny_lm), _values(_PastKeyValuesModel(tiny_lm.model), tiny_lm)
    # Assert: the same seed gives the same tokens whichever name carried the cache
    np.testing.assert_array_equal(ours, old_style)
    assert (ours >= 0).all()


def test_sampling_raises_no_deprecation_warning(tiny_lm):
    # Run: every warning recorded, however often it was shown before in this session
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_lm.sample(50, seed=0)
    # Assert: transformers' "`past_key_values` is deprecated ... Use `cache` instead" (and the like) is gone
    deprecations = [f"{w.category.__name__}: {w.message}" for w in caught
                    if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert deprecations == []
