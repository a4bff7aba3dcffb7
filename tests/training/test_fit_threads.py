"""One thread count per fit: a seed and a thread count give one model, and a resumed fit computes with the
count its start chose, whatever the machine runs by then. Sampled rows do not depend on the count."""
from __future__ import annotations

import pytest
import torch

from tabline import threads
from tabline.training import TabularLM, TabularLMConfig
from tabline.training import lm as lm_module

needs_two_cores = pytest.mark.skipif(threads.cpu_count() < 2, reason="needs 2+ cores")


class Interrupted(Exception):
    pass


@pytest.fixture
def machine(monkeypatch):
    """A machine whose other programs keep ``machine.busy`` cores busy (no override in the environment)."""
    for name in (threads.ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)

    class Machine:
        busy = 0.0

    m = Machine()
    monkeypatch.setattr(threads, "others_busy", lambda *a, **k: m.busy)
    return m


def _config() -> TabularLMConfig:
    return TabularLMConfig(n_layer=1, n_embd=32, max_epochs=3, patience=10, seed=0, batch_size=32)


def _weights(model: TabularLM) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.model.parameters()]


@needs_two_cores
def test_a_resumed_fit_keeps_the_thread_count_its_start_chose(diamonds, machine, monkeypatch, tmp_path):
    data = diamonds.iloc[:400]
    # Reference: an uninterrupted fit started on an idle machine (all cores)
    machine.busy = 0.0
    reference = TabularLM(_config()).fit(data, progress=False)
    assert reference.log.threads == threads.cpu_count()
    # Run: the same fit killed after its first epoch; by the resume, another program holds a core
    save = lm_module.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise Interrupted

    monkeypatch.setattr(lm_module, "save_checkpoint", save_then_die)
    with pytest.raises(Interrupted):
        TabularLM(_config()).fit(data, progress=False, checkpoint=tmp_path / "ckpt")
    monkeypatch.setattr(lm_module, "save_checkpoint", save)
    machine.busy = 1.0
    resumed = TabularLM(_config()).fit(data, progress=False, checkpoint=tmp_path / "ckpt")
    # Assert: the resume trained with the first count and ends bit for bit where the uninterrupted fit did
    assert resumed.log.threads == reference.log.threads
    assert resumed.log.history == reference.log.history
    assert all(torch.equal(a, b) for a, b in zip(_weights(resumed), _weights(reference)))


def test_a_fit_does_not_change_its_thread_count_between_epochs(diamonds, machine, monkeypatch):
    # Setup: a machine whose load changes after every measurement
    counts = iter([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    monkeypatch.setattr(threads, "others_busy", lambda *a, **k: next(counts, 0.0))
    seen = []
    step = torch.optim.AdamW.step

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", spy)
    # Run
    model = TabularLM(_config()).fit(diamonds.iloc[:200], progress=False)
    # Assert: every step of every epoch ran with the one count the log reports
    assert len(seen) >= 3 and set(seen) == {model.log.threads}


@needs_two_cores
def test_sampled_rows_do_not_depend_on_the_thread_count(tiny_lm):
    before = tiny_lm.config.threads
    try:
        rows = {}
        for n in (1, 2):
            tiny_lm.config.threads = n
            for precision in ("float32", "bfloat16"):
                rows[n, precision] = tiny_lm.sample(1500, seed=3, precision=precision)
    finally:
        tiny_lm.config.threads = before
    for precision in ("float32", "bfloat16"):
        assert rows[1, precision].equals(rows[2, precision])


def test_omp_num_threads_is_honoured_and_tabline_threads_wins(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.choose_threads() == 1
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose_threads() == 3
    assert threads.choose_threads(requested=2) == 2
