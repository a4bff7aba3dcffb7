"""TabularGPT folds each column marker into the token before it: fewer positions, the same rows, the same
quantities for the callers (logits in the logical layout, the loss over value tokens), and models saved
before the folded layout still load and run as they were trained."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch
from transformers import GPT2Config

from tabline.training import TabularLM, TabularLMConfig
from tabline.training.gpt import TabularGPT
from tabline.training.lm import row_logprob, training_orders


def _gpt(markers: list[int]) -> TabularGPT:
    torch.manual_seed(0)
    return TabularGPT(GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=1, n_head=2, bos_token_id=1,
                                 eos_token_id=2, marker_ids=markers)).eval()


def test_fold_keeps_values_and_carries_each_marker_on_the_token_before_it():
    gpt = _gpt([4, 5, 6])
    # <bos> [c1] 10 11 [c0] 7 [c2] 12 <eos>: a random order, column 1 written with two tokens
    ids = torch.tensor([[1, 5, 10, 11, 4, 7, 6, 12, 2]])
    kept, short, plus = gpt.fold(ids)
    assert kept.tolist() == [[0, 2, 3, 5, 7]]
    assert short.tolist() == [[1, 10, 11, 7, 12]]
    assert plus.tolist() == [[5, -1, 4, 6, -1]]  # no marker between a column's two tokens, none after the last
    assert gpt.folded_length(ids.shape[1]) == 5


def test_folded_loss_is_the_mean_value_token_nll_that_row_logprob_sums():
    gpt = _gpt([4, 5, 6])
    ids = torch.tensor([[1, 5, 10, 11, 4, 7, 6, 12, 2], [1, 4, 8, 5, 13, 14, 6, 12, 2]])
    values = (ids > 3) & ~torch.isin(ids, torch.tensor([4, 5, 6]))
    labels = ids.masked_fill(~values, -100)
    out = gpt(input_ids=ids, labels=labels)
    lp = row_logprob(out.logits, ids, values)  # (2,)
    assert out.logits.shape == (2, 9, 20)
    torch.testing.assert_close(out.loss, -lp.sum() / values[:, 1:].sum(), atol=1e-5, rtol=0)
    # each value is scored from a distribution that did see its own column's marker: change the marker
    # riding on <bos> (column 1 first -> column 2 first) and the first value's score changes
    other = ids.clone()
    other[0, 1] = 6
    assert not torch.allclose(gpt(input_ids=other).logits[0, 1], out.logits[0, 1])


def test_the_folded_model_runs_fewer_positions_for_the_same_rows(tiny_lm):
    tok = tiny_lm.tokenizer
    assert tiny_lm.model.folded
    assert tiny_lm.model.folded_length(tok.row_length()) == tok.row_length() - len(tok.codes) - 1
    assert tiny_lm.model.config.n_positions == tiny_lm.model.folded_length(tok.row_length())
    rows = tiny_lm.sample(500, seed=3)
    assert tiny_lm.schema.check(rows).all().all()
    # logprob in any column order scores the same rows (the training layouts): finite, per row
    values = tok.encode_values(rows.head(64))
    orders = training_orders(64, len(tok.codes), np.random.default_rng(1), canonical_fraction=0.0)
    ids = torch.from_numpy(tok.assemble(values, orders))
    mask = torch.from_numpy(tok.value_mask(ids.numpy()))
    with torch.no_grad():
        lp = row_logprob(tiny_lm.model(input_ids=ids).logits, ids, mask)
    assert torch.isfinite(lp).all() and (lp < 0).all()


def test_a_model_saved_before_the_folded_layout_loads_and_samples_as_trained(diamonds, tmp_path):
    cfg = TabularLMConfig(n_layer=1, n_embd=32, max_epochs=2, seed=0, fold_markers=False)
    old = TabularLM(cfg).fit(diamonds.iloc[:400], progress=False)
    assert not old.model.folded
    assert old.model.config.n_positions == old.tokenizer.row_length()
    old.save(tmp_path / "m")
    # what an older tabline wrote: no fold_markers setting, no marker_ids in config.json
    meta = json.loads((tmp_path / "m" / "tabline.json").read_text())
    del meta["config"]["fold_markers"]
    (tmp_path / "m" / "tabline.json").write_text(json.dumps(meta))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config.pop("marker_ids", None)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    loaded = TabularLM.load(tmp_path / "m")
    assert not loaded.model.folded and loaded.config.fold_markers is False
    pd.testing.assert_frame_equal(loaded.sample(300, seed=4), old.sample(300, seed=4))
    np.testing.assert_allclose(loaded.logprob(diamonds.iloc[:50]), old.logprob(diamonds.iloc[:50]), rtol=1e-5)
