"""The copy guard: a model that memorised its table samples copies at the natural rate (or none), says how
many it drew again, stays reproducible, and keeps the guard through save/load."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.cli import app
from tabline.eval.privacy import exact_copy_rate, row_keys
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.guard import keep_probability, overfit_signal


def test_keep_probability_brings_the_copy_share_to_the_natural_rate():
    for c, h in [(0.12, 0.013), (0.5, 0.1), (0.9, 0.3)]:
        q = keep_probability(c, h)
        assert q * c / (q * c + 1 - c) == pytest.approx(h)  # copies among the rows kept
    assert keep_probability(0.2, 0.0) == 0.0 and keep_probability(0.0, 0.0) == 1.0
    assert keep_probability(0.05, 0.05) == 1.0


def test_overfit_signal_needs_two_epochs_over_the_limit():
    ok, copying, near = ({"copy_rate": 0.01, "guard_rows": 256, "dcr_share": 0.5},
                         {"copy_rate": 0.25, "guard_rows": 256, "dcr_share": 0.5},
                         {"copy_rate": 0.0, "guard_rows": 256, "dcr_share": 0.7})
    # Computers' measured worst (8 % copies, natural 0.6 %, DCR 0.55) must not stop training: the sampler
    # redraws surplus copies, and stopping there cost fidelity
    computers = {"copy_rate": 0.08, "guard_rows": 256, "dcr_share": 0.55}
    assert not overfit_signal([computers, computers], 0.006)
    assert not overfit_signal([ok, copying], 0.01)
    assert overfit_signal([ok, copying, copying], 0.01)
    assert overfit_signal([near, near], 0.0) and not overfit_signal([near, ok], 0.0)
    assert not overfit_signal([copying, copying], None)  # no natural rate (no guard): never


@pytest.fixture(scope="module")
def memorised():
    """A model trained at a constant rate well past the point where it copies its rows: the validation loss
    is scripted to keep falling, so neither early stopping nor the rate halving steps in (it copies ~50 %)."""
    rng = np.random.default_rng(0)
    train = pd.DataFrame({f"c{i}": rng.choice(list("abcdefghij"), 150) for i in range(5)})  # 10^5 possible rows
    cfg = TabularLMConfig(n_layer=2, n_embd=64, seed=0, max_epochs=20, time_budget_s=None, guard_rows=0,
                          anneal_fraction=0, batch_size=16, canonical_fraction=1.0)
    counter = itertools.count()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(TabularLM, "_mean_loss", lambda self, ids, batch_size=1024: 10.0 - 0.001 * next(counter))
        lm = TabularLM(cfg).fit(train, progress=False)
    return lm, train


def test_a_memorising_model_is_held_to_the_natural_copy_rate(memorised):
    lm, train = memorised
    raw = lm.sample(2000, seed=1, copies="allow")
    raw_rate = exact_copy_rate(row_keys(raw, lm.schema), row_keys(train, lm.schema))
    assert raw_rate > 0.2, raw_rate  # the premise: it does copy
    guarded = lm.sample(2000, seed=1)
    rate = exact_copy_rate(row_keys(guarded, lm.schema), row_keys(train, lm.schema))
    report = lm.last_sample
    # Assert: the copies kept are about the natural rate (0 here: no held row equals a training one), the
    # report counts what really happened, and nothing else changed shape
    assert lm.guard.natural_rate == 0.0 and rate <= 0.01, rate
    assert report.copies_kept == round(rate * 2000) and report.copies_rejected >= raw_rate * 2000 * 0.9
    assert len(guarded) == 2000 and list(guarded.columns) == list(raw.columns)
    assert (guarded.dtypes == raw.dtypes).all()
    # Same seed, same rows, guard included
    pd.testing.assert_frame_equal(lm.sample(2000, seed=1), guarded)


def test_natural_rate_keeps_copies_where_real_rows_repeat_and_reject_gives_up_boundedly():
    # Setup: two binary columns, every combination in the table: any row is a copy, and so is every held row
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.choice(["x", "y"], 300), "b": rng.choice(["u", "v"], 300)})
    lm = TabularLM(TabularLMConfig(n_layer=1, n_embd=16, max_epochs=2, seed=0)).fit(df, progress=False)
    assert lm.guard.natural_rate == 1.0
    rows = lm.sample(200, seed=0)
    assert lm.last_sample.copies_rejected == 0 and lm.last_sample.copies_kept == 200
    # "reject" cannot avoid copies here: it redraws a bounded number of times and says what is left
    rows = lm.sample(200, seed=0, copies="reject")
    assert len(rows) == 200 and lm.last_sample.copies_kept == 200 and lm.last_sample.rounds == 20


def test_the_guard_survives_save_and_load_and_an_old_model_has_none(memorised, tmp_path):
    lm, _ = memorised
    lm.save(tmp_path / "m")
    again = TabularLM.load(tmp_path / "m")
    assert again.guard.natural_rate == lm.guard.natural_rate and np.array_equal(again.guard.keys, lm.guard.keys)
    pd.testing.assert_frame_equal(again.sample(300, seed=4), lm.sample(300, seed=4))
    # A model directory from before the guard (no keys file, no entry) loads and samples unguarded
    meta = json.loads((tmp_path / "m" / "tabline.json").read_text())
    del meta["copy_guard"]
    (tmp_path / "m" / "tabline.json").write_text(json.dumps(meta))
    (tmp_path / "m" / "copy_keys.npy").unlink()
    old = TabularLM.load(tmp_path / "m")
    old.sample(50, seed=0)
    assert not old.guard.active and old.last_sample.summary() == "copy guard: off"


def test_cli_sample_reports_the_guard_and_rejects_a_bad_mode(memorised, tmp_path):
    lm, _ = memorised
    lm.save(tmp_path / "m")
    runner = CliRunner()
    ok = runner.invoke(app, ["sample", str(tmp_path / "m"), "-n", "300", "-o", str(tmp_path / "s.csv"), "-q"])
    assert ok.exit_code == 0, ok.output
    assert "copies of training rows drawn again" in ok.output
    bad = runner.invoke(app, ["sample", str(tmp_path / "m"), "-n", "10", "-o", str(tmp_path / "t.csv"),
                              "--copies", "sometimes"])
    assert bad.exit_code != 0 and "sometimes" in bad.output and "Traceback" not in bad.output
    budget = runner.invoke(app, ["fit", str(tmp_path / "s.csv"), "-o", str(tmp_path / "m2"), "--time-budget", "soon"])
    assert budget.exit_code != 0 and "--time-budget 'soon'" in budget.output
