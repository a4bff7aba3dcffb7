"""The alignment trainer: every loss takes real optimizer steps, the reference never moves, rewards behave."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tabline.errors import InvalidArgumentError
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.tabgraa import LOSSES, AlignConfig, Aligner, reward_for
from tabline.training.policies import TabularLMPolicy, batched_logprob
from tabline.training.rewards import classifier_rewards, dcr_rewards, split_real


@pytest.fixture(scope="module")
def small(diamonds):
    data = diamonds.iloc[:400].reset_index(drop=True)
    lm = TabularLM(TabularLMConfig(n_layer=1, n_embd=32, max_epochs=2, seed=0)).fit(data, progress=False)
    return lm, data


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("loss", LOSSES)
def test_two_steps_change_the_parameters_keep_the_loss_finite_and_the_reference_fixed(small, loss):
    # Setup: 16 samples per round, B = 4 → one epoch over a group of 8 rows is exactly 2 steps
    import copy

    lm, data = small
    lm = copy.deepcopy(lm)
    aligner = Aligner(TabularLMPolicy(lm), data, AlignConfig(loss=loss, samples=16, group_batch=4, rounds=1,
                                                             learning_rate=1e-3, reward="dcr"))
    before, ref_before = _params(lm.model), _params(aligner.reference)
    # Run
    summary = aligner.run_round(0)
    # Assert
    assert summary["steps"] == 2
    assert np.isfinite(summary["align_loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, lm.model.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ref_before, aligner.reference.parameters()))
    assert all(not p.requires_grad for p in aligner.reference.parameters())


def test_graa_raises_the_high_group_relative_to_the_low_group(small):
    import copy

    lm, data = small
    lm = copy.deepcopy(lm)
    aligner = Aligner(TabularLMPolicy(lm), data, AlignConfig(samples=64, group_batch=8, learning_rate=3e-3,
                                                             reward="dcr", beta=1.0))
    frame, items = aligner.generate(0)
    rewards, _ = aligner.score(frame, 0)
    from tabline.training.groups import reward_groups

    high, low = reward_groups(rewards)
    n = len(rewards)
    ref = batched_logprob(aligner.policy, aligner.reference, items, n)
    for t in range(3):
        aligner.align(items, rewards, t)
    new = batched_logprob(aligner.policy, lm.model, items, n)
    r = (new - ref).numpy()
    assert r[high].mean() - r[low].mean() > 0.05


def test_sft_control_takes_as_many_steps_as_the_alignment(small):
    import copy

    lm, data = small
    cfg = AlignConfig(loss="sft", samples=40, group_batch=4, rounds=1)
    summary = Aligner(TabularLMPolicy(copy.deepcopy(lm)), data, cfg).run_round(0)
    assert summary["steps"] == cfg.steps_per_round(40) == 5 and np.isfinite(summary["align_loss"])


def test_classifier_reward_is_cross_fitted_and_reports_a_heldout_auc(small):
    lm, data = small
    a, b = split_real(data, seed=0)
    # Rows the forest cannot have memorised: real rows from half b score like real rows (high reward),
    # while junk rows (a constant row repeated) score low.
    junk = pd.concat([data.iloc[[0]]] * 100, ignore_index=True).assign(carat=5.0)
    rewards, info = classifier_rewards(a, b, pd.concat([b.iloc[:100], junk], ignore_index=True), lm.schema, seed=0)
    assert rewards.shape == (200,) and ((rewards >= 0) & (rewards <= 1)).all()
    assert rewards[:100].mean() > rewards[100:].mean() + 0.3
    assert 0.5 < info["heldout_auc"] <= 1.0


def test_dcr_reward_scores_copies_zero(small):
    lm, data = small
    a, _ = split_real(data, seed=0)
    rewards, info = dcr_rewards(a, pd.concat([a.iloc[:5], lm.sample(20, seed=3)], ignore_index=True), lm.schema)
    assert (rewards[:5] == 0).all() and info["copies"] >= 5 / 25


@pytest.mark.parametrize("name", ["classifer", "judge", ""])
def test_a_bad_reward_name_is_a_clear_error(name):
    with pytest.raises(InvalidArgumentError, match=f"unknown reward '{name}'; choose one of: classifier, dcr, random"):
        reward_for(name)


def test_config_rejects_unknown_settings_and_losses():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        AlignConfig(loss="ppo", betta=2)
    text = str(exc.value)
    assert "loss" in text and "betta" in text  # every problem at once


def test_same_seed_same_aligned_model(small):
    import copy

    lm, data = small
    outs = []
    for _ in range(2):
        m = copy.deepcopy(lm)
        Aligner(TabularLMPolicy(m), data, AlignConfig(samples=24, reward="classifier", trees=10, seed=3)).run(progress=False)
        outs.append(torch.cat([p.flatten() for p in m.model.parameters()]))
    assert torch.equal(outs[0], outs[1])
