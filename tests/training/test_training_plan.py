"""The training plan (budget -> size and epochs) and the schedule it drives: anneal, early stopping into the
anneal, the overfit guard. Loss curves are scripted where the rule, not the data, is under test."""
from __future__ import annotations

import math

import pytest

from tabline.training import TabularLM, TabularLMConfig
from tabline.training.plan import (ANNEAL_FLOOR, MIN_EPOCHS, REFERENCE_TOKENS_PER_S, auto_budget_s, lr_factor,
                                   plan_training)


def test_the_budget_grows_with_the_square_root_of_the_tokens():
    assert auto_budget_s(250_000) == pytest.approx(100.0)
    assert auto_budget_s(1_000_000) == pytest.approx(200.0)  # 4x the tokens, 2x the time
    assert auto_budget_s(10) == 30.0 and auto_budget_s(10**9) == 600.0  # bounded both ways


def test_a_small_budget_gets_a_smaller_model_that_sees_the_data_more_often():
    # 9,000 rows x 27 tokens: the data alone asks for 3 x 128; 100 s buys it 11 epochs (< MIN_EPOCHS)
    plan = plan_training(9_000, 27, budget_s="auto", max_epochs=60)
    assert (plan.n_layer, plan.n_embd) == (2, 96)
    assert plan.epochs == math.floor(plan.budget_s * REFERENCE_TOKENS_PER_S[(2, 96)] / (9_000 * 27))
    assert plan.epochs >= MIN_EPOCHS and plan.expected_s == pytest.approx(
        plan.epochs * 9_000 * 27 / REFERENCE_TOKENS_PER_S[(2, 96)])
    # With 3x the time the larger model gets its epochs, and keeps its size
    big = plan_training(9_000, 27, budget_s=300, max_epochs=60)
    assert (big.n_layer, big.n_embd) == (3, 128) and big.epochs >= MIN_EPOCHS


def test_explicit_sizes_caps_and_no_budget_are_honoured():
    plan = plan_training(9_000, 27, budget_s="auto", max_epochs=60, n_layer=1, n_embd=32)
    assert (plan.n_layer, plan.n_embd) == (1, 32) and plan.epochs == 60  # tiny model: cheap epochs, capped
    assert plan_training(500, 27, budget_s="auto", max_epochs=7).epochs == 7
    none = plan_training(9_000, 27, budget_s=None, max_epochs=9)
    assert none.epochs == 9 and none.budget_s is None and none.anneal_epochs == 2  # round(0.2 * 9)


def test_lr_factor_by_hand():
    assert lr_factor(0, warmup=4, anneal_start=None, anneal_steps=0) == 0.25
    assert lr_factor(10, warmup=4, anneal_start=None, anneal_steps=0) == 1.0
    assert lr_factor(9, warmup=4, anneal_start=10, anneal_steps=10) == 1.0  # the step before the anneal
    assert lr_factor(14, warmup=4, anneal_start=10, anneal_steps=10) == pytest.approx(1 - 0.95 * 0.5)
    assert lr_factor(19, warmup=4, anneal_start=10, anneal_steps=10) == pytest.approx(ANNEAL_FLOOR)  # its last
    assert lr_factor(99, warmup=4, anneal_start=10, anneal_steps=10) == pytest.approx(ANNEAL_FLOOR)


def _config(**kw) -> TabularLMConfig:
    return TabularLMConfig(**{"n_layer": 1, "n_embd": 32, "seed": 0, "batch_size": 64, "guard_rows": 0, **kw})


def test_a_fit_runs_its_plan_and_anneals_at_the_end(diamonds):
    lm = TabularLM(_config(max_epochs=5, time_budget_s=None, patience=50)).fit(diamonds.iloc[:300], progress=False)
    log = lm.log
    assert log.planned_epochs == 5 and log.anneal_epochs == 1 and log.epochs == 5
    assert log.stopped_by == "max_epochs"
    lrs = [e["lr"] for e in log.history]
    # The planned epochs before the anneal train at the full rate (unless a stall halved it); the last one
    # ends near the floor
    assert lrs[-1] < 0.1 * lm.config.learning_rate < lrs[0]
    assert log.tokens_per_s and log.tokens_per_s > 0 and log.threads >= 1


def test_early_stopping_anneals_from_the_best_weights(diamonds, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.6, 2.7, 1.9])
    monkeypatch.setattr(TabularLM, "_mean_loss", lambda self, ids, batch_size=1024: next(losses))
    lm = TabularLM(_config(max_epochs=40, time_budget_s=None, patience=3)).fit(diamonds.iloc[:300], progress=False)
    log = lm.log
    # Epoch 2 was best; epochs 3-5 stalled (patience 3), so the anneal starts from epoch 2's weights and runs
    # round(0.2 * 5) = 1 epoch, in which no early stopping applies
    assert log.annealed_from == 2 and log.epochs == 6 and log.stopped_by == "early_stopping"
    assert log.best_epoch == 6 and log.best_val_loss == 1.9  # the annealed epoch improved
    assert log.history[-1]["lr"] < log.history[1]["lr"]


def test_the_overfit_guard_stops_improving_the_best_weights(diamonds, monkeypatch):
    # Setup: sampled rows copy training rows at 30 % from epoch 3 on (a natural rate near 0)
    rates = iter([0.0, 0.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3])
    monkeypatch.setattr(TabularLM, "_watch", lambda self, held, epoch: {"copy_rate": next(rates), "guard_rows": 256})
    losses = iter([3.0 - 0.1 * i for i in range(20)])  # validation alone would never stop
    monkeypatch.setattr(TabularLM, "_mean_loss", lambda self, ids, batch_size=1024: next(losses))
    lm = TabularLM(_config(max_epochs=20, time_budget_s=None, guard_rows=256, guard_every=1)).fit(
        diamonds.iloc[:300], progress=False)
    log = lm.log
    # Assert: tripped at epoch 4 (the second epoch over the limit), so the anneal starts from epoch 3's
    # weights (one epoch over the limit is not yet a signal: 256 rows are a noisy count)
    assert log.stopped_by == "overfit_guard" and log.annealed_from == 3
    assert [e["copy_rate"] for e in log.history][:4] == [0.0, 0.0, 0.3, 0.3]


def test_the_planned_anneal_starts_from_the_best_weights(diamonds, monkeypatch):
    # Validation improves to epoch 2 then worsens (patience not yet out) when the planned anneal begins
    losses = iter([3.0, 2.0, 2.2, 2.3, 1.8])
    monkeypatch.setattr(TabularLM, "_mean_loss", lambda self, ids, batch_size=1024: next(losses))
    lm = TabularLM(_config(max_epochs=5, time_budget_s=None, patience=10)).fit(diamonds.iloc[:300], progress=False)
    assert lm.log.anneal_epochs == 1 and lm.log.annealed_from == 2 and lm.log.best_epoch == 5


def test_the_guard_watches_every_third_epoch_by_default(diamonds, monkeypatch):
    watched = []
    monkeypatch.setattr(TabularLM, "_watch", lambda self, held, epoch: watched.append(epoch) or {
        "copy_rate": 0.0, "guard_rows": 256, "dcr_share": 0.5})
    lm = TabularLM(_config(max_epochs=7, time_budget_s=None, patience=50, guard_rows=256)).fit(
        diamonds.iloc[:300], progress=False)
    assert watched == [3, 6] and [e["epoch"] for e in lm.log.history if "copy_rate" in e] == [3, 6]
