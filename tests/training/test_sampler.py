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


def test_fine_masks_allow_exactly_the_fine_tokens_of_each_coarse_bin():
    from tabline.training.codec import ColumnCode
    from tabline.training.sampler import fine_masks

    # Setup: two coarse bins holding 2 exact values and 3 sub-bins (4 edges); 4 fine tokens + 'none'
    code = ColumnCode("x", "binned", marker=4, first=5, n_values=2, has_na=True,
                      bins=[("exact", [1.0, 2.0]), ("range", [3.0, 4.0, 5.0, 6.0])], fine_first=8, fine_size=4)
    # Run
    masks = fine_masks(code).tolist()
    # Assert: row per coarse token (the last for the missing-value token), column per fine token + 'none'
    assert masks == [
        [True, True, False, False, False],
        [True, True, True, False, False],
        [False, False, False, False, True],
    ]
