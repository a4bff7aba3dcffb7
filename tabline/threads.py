"""How many CPU threads torch should use: the cores that are free now, not all cores.

Why: with two threads on two cores and one other busy process, every parallel region waits for the thread
that shares its core, and OpenMP's spin-waiting makes both programs slower still (sampling measured 4-5x
slower that way, a 10k-row fit ~10x). Counting the cores other programs keep busy and using the rest avoids
both. Sampling takes the count again before every batch, so it speeds up again when the machine frees up.
A fit keeps the count it started with (and a resumed fit the count it was started with): sums in the
gradients are split by thread, so another count changes the last bits and, over many steps, the model.

Reproducibility: a seed gives the same fit for the same thread count (the count is in the fit's log,
``threads``); pin it to get the same model whatever else the machine runs. Sampled rows do not depend on it.

``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of spinning) was measured too and is not set: it cut
the slow-down under load as well, but cost 20 % of idle sampling speed and ~50 % of idle training speed on
these small models. Set it yourself before importing torch if your machine is always shared.

A Ray replica (`tabline.cluster`) is given ``OMP_NUM_THREADS`` = its reserved CPUs by Ray; it turns that
into ``TABLINE_MAX_THREADS``, a ceiling, so that on a shared node it still steps back when other processes
are busy instead of spinning against them.

Override, first one set wins: ``TabularLMConfig(threads=N)``, the ``TABLINE_THREADS`` environment variable,
then ``OMP_NUM_THREADS`` (the usual knob, which schedulers and containers set).

Example:
    >>> 1 <= choose_threads() <= cpu_count()
    True
    >>> choose_threads(requested=1)
    1
"""
from __future__ import annotations

import os
import time

ENV = "TABLINE_THREADS"
MAX_ENV = "TABLINE_MAX_THREADS"
_last: tuple[float, float, float] | None = None  # (wall clock, busy CPU-seconds of all processes, ours)
_answer: float | None = None  # the last measurement's result


def cpu_count() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _busy_seconds() -> float | None:
    """CPU-seconds all processes spent busy since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def others_busy(window_s: float = 0.15, stale_s: float = 5.0) -> float | None:
    """How many cores other processes kept busy: on average since the previous measurement if that is at
    most ``stale_s`` old (our own CPU time is subtracted, so this works while we compute), otherwise measured
    afresh over ``window_s`` seconds. A call within ``window_s`` of the last measurement returns it again.
    None where /proc/stat cannot be read."""
    global _last, _answer
    now = time.monotonic()
    if _last is not None and now - _last[0] < window_s and _answer is not None:
        return _answer
    busy, ours = _busy_seconds(), time.process_time()
    if busy is None:
        return None
    if _last is None or now - _last[0] > stale_s:
        time.sleep(window_s)
        _last = (now, busy, ours)
        now, busy, ours = time.monotonic(), _busy_seconds(), time.process_time()
    t0, b0, o0 = _last
    _last = (now, busy, ours)
    _answer = max(0.0, ((busy - b0) - (ours - o0)) / max(now - t0, 1e-6))
    return _answer


def _cap() -> int:
    try:
        return max(1, int(os.environ.get(MAX_ENV, "").strip()))
    except ValueError:
        return cpu_count()


def choose_threads(requested: int | None = None) -> int:
    """Threads to use: ``requested``, else ``$TABLINE_THREADS``, else ``$OMP_NUM_THREADS``, else the cores
    other processes leave free (at most ``$TABLINE_MAX_THREADS``: a Ray replica's reserved CPUs)."""
    if requested:
        return requested
    for name in (ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(name, "").strip()
        if value:
            try:
                return max(1, int(value))
            except ValueError:
                pass  # a garbled override falls back to measuring rather than failing a long job
    n = min(cpu_count(), _cap())
    busy = others_busy()
    if busy is None:
        return n
    return max(1, min(n, round(n - busy)))


def apply(requested: int | None = None) -> int:
    """Set torch's intra-op thread count from `choose_threads`; returns it."""
    import torch

    n = choose_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
