"""Constrained decoding raises no warnings from transformers (sampling never calls its forward)."""
from __future__ import annotations

import warnings


def test_sampling_raises_no_deprecation_warning(tiny_lm):
    # Run: every warning recorded, however often it was shown before in this session
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_lm.sample(50, seed=0)
    # Assert: transformers' "`past_key_values` is deprecated ... Use `cache` instead" (and the like) is gone
    deprecations = [f"{w.category.__name__}: {w.message}" for w in caught
                    if issubclass(w.category, (FutureWarning, DeprecationWarning))]
    assert deprecations == []
