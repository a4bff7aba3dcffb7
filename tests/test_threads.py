"""Thread count from the free cores: a real busy process on the machine is seen and left its core."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from tabline import threads


@pytest.fixture
def fresh_measurement(monkeypatch):
    monkeypatch.setattr(threads, "_last", None)
    monkeypatch.setattr(threads, "_answer", None)
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_a_request_or_the_environment_overrides_the_measurement(fresh_measurement, monkeypatch):
    assert threads.choose_threads(requested=3) == 3
    monkeypatch.setenv(threads.ENV, "5")
    assert threads.choose_threads() == 5
    monkeypatch.setenv(threads.ENV, "many")  # garbled: measured instead, never an error mid-job
    assert 1 <= threads.choose_threads() <= threads.cpu_count()


@pytest.mark.skipif(not threads.cpu_count() > 1 or threads.others_busy() is None, reason="needs Linux and 2+ cores")
def test_a_busy_process_is_counted_and_its_core_left_to_it(fresh_measurement):
    # Setup: one real process spinning on a core
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # past interpreter start-up
        # Run
        busy = threads.others_busy(window_s=0.4)
        chosen = threads.choose_threads()
    finally:
        hog.kill()
        hog.wait()
    # Assert: at least most of a core is seen busy, and we do not take every core
    assert busy >= 0.6, busy
    assert chosen <= threads.cpu_count() - 1


def test_our_own_work_is_not_counted_as_others(fresh_measurement, monkeypatch):
    # Setup: a machine where all busy time is this process's own (plus a constant from before)
    monkeypatch.setattr(threads, "_busy_seconds", lambda: time.process_time() + 10.0)
    threads.others_busy(window_s=0.05)  # start the interval
    end = time.process_time() + 0.3
    while time.process_time() < end:  # this process keeps a core busy
        pass
    time.sleep(0.2)  # past the window in which the last answer is reused
    # Assert: none of it is counted as other programs' (counting it would say ~0.6 cores)
    assert threads.others_busy(window_s=0.05) < 0.05


def test_fit_and_sample_use_the_configured_threads(tiny_lm):
    before = tiny_lm.config.threads
    try:
        tiny_lm.config.threads = 1
        tiny_lm.sample(20, seed=0)
        assert torch.get_num_threads() == 1
    finally:
        tiny_lm.config.threads = before
