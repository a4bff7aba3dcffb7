"""Sampling in fixed-size chunks, each with its own seed: the plan every sampler follows, local or on Ray.

``n`` rows are cut into chunks of ``CHUNK_ROWS`` (the last one shorter); chunk ``k`` is sampled with
``chunk_seed(seed, k)``. A chunk's rows depend only on the model, its size and its seed, so whoever samples
it — this process, or any of K Ray actors — the rows, put back in chunk order, are the same
(`tabline.cluster.sampling` runs the same plan on actors). ``CHUNK_ROWS`` is also the largest batch the
decoder takes at once, so a chunk is one decoding pass.

Each chunk applies the copy guard (``copies``) to its own rows: the rate of kept copies is held per chunk.

Example:
    >>> [c.rows for c in chunk_plan(10_000, seed=0)]
    [4096, 4096, 1808]
    >>> chunk_plan(10, seed=0)[0].seed == chunk_seed(0, 0)
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from tabline.errors import InvalidArgumentError
from tabline.training.guard import SampleReport

CHUNK_ROWS = 4096


@dataclass(frozen=True)
class Chunk:
    """One piece of a sample: its position in the output, its row count and its seed."""

    index: int
    rows: int
    seed: int


def chunk_seed(seed: int, index: int) -> int:
    """A 31-bit seed for chunk ``index`` of a sample seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([int(seed), 0x5A4D, int(index)]).generate_state(1)[0] & 0x7FFFFFFF)


def chunk_plan(n: int, *, seed: int, chunk_rows: int = CHUNK_ROWS) -> list[Chunk]:
    """The chunks of an ``n``-row sample."""
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise InvalidArgumentError(f"n must be a positive whole number of rows, got {n!r}")
    if chunk_rows <= 0:
        raise InvalidArgumentError(f"chunk_rows must be positive, got {chunk_rows!r}")
    return [Chunk(k, min(chunk_rows, n - start), chunk_seed(seed, k)) for k, start in enumerate(range(0, n, chunk_rows))]


@dataclass
class Sampled:
    """A chunked sample: its rows, and what the copy guard did over all chunks (None: no guard report)."""

    frame: pd.DataFrame
    report: SampleReport | None = None


def sample_chunk(lm: Any, chunk: Chunk, options: dict[str, Any]) -> tuple[pd.DataFrame, SampleReport | None]:
    """One chunk's rows and its copy-guard report (``options``: `TabularLM.sample`'s keywords other than n
    and seed)."""
    frame = lm.sample(chunk.rows, seed=chunk.seed, **options)
    return frame, getattr(lm, "last_sample", None)


def merge_reports(reports: list[SampleReport | None]) -> SampleReport | None:
    """The chunks' copy-guard reports as one.

    Example:
        >>> merge_reports([SampleReport(10, "natural", 2, 1, 1, 1, 0.1), SampleReport(5, "natural", 1, 1, 0, 2, 0.1)])
        SampleReport(rows=15, mode='natural', copies_drawn=3, copies_rejected=2, copies_kept=1, rounds=2, natural_rate=0.1)
    """
    known = [r for r in reports if r is not None]
    if not known:
        return None
    return SampleReport(sum(r.rows for r in known), known[0].mode, sum(r.copies_drawn for r in known),
                        sum(r.copies_rejected for r in known), sum(r.copies_kept for r in known),
                        max(r.rounds for r in known), known[0].natural_rate)


def sample_in_chunks(lm: Any, n: int, *, seed: int, options: dict[str, Any] | None = None,
                     chunk_rows: int = CHUNK_ROWS, on_chunk: Callable[[int], None] | None = None) -> Sampled:
    """``n`` rows from ``lm`` in this process, chunk by chunk (``on_chunk(rows)`` after each).

    Example:
        >>> class Counter:  # any object with TabularLM.sample's signature
        ...     def sample(self, n, *, seed, **kw):
        ...         return pd.DataFrame({"seed": [seed] * n})
        >>> frame = sample_in_chunks(Counter(), 5, seed=1, chunk_rows=2).frame
        >>> len(frame), frame["seed"].nunique()
        (5, 3)
    """
    frames, reports = [], []
    for chunk in chunk_plan(n, seed=seed, chunk_rows=chunk_rows):
        frame, report = sample_chunk(lm, chunk, options or {})
        frames.append(frame)
        reports.append(report)
        if on_chunk is not None:
            on_chunk(chunk.rows)
    return Sampled(concat_chunks(frames), merge_reports(reports))


def concat_chunks(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Chunks' rows in chunk order, one RangeIndex."""
    return pd.concat(list(frames), ignore_index=True)


__all__ = ["CHUNK_ROWS", "Chunk", "Sampled", "merge_reports", "chunk_plan", "chunk_seed", "concat_chunks", "sample_chunk", "sample_in_chunks"]
