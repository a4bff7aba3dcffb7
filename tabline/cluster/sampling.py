"""`sample_on_ray`: the chunks of `tabline.training.chunks`, sampled by Ray actors that each hold one replica
of the model.

The model goes to the object store once (``ray.put``); every actor loads that one copy when it starts, and
again when Ray restarts it. Each call carries only a chunk (rows, seed) and returns its rows as Arrow IPC
bytes, which the driver puts back in chunk order. At most two chunks per actor are in flight, so memory
stays bounded however many rows are asked for. A chunk's rows depend only on the model, its size and its
seed: the result equals `tabline.training.chunks.sample_in_chunks` in this process, for any actor count.

Example (needs Ray; see tests/ray/test_ray_sample.py):
    $ tabline sample model/ -n 200000 -o rows.parquet --ray auto --actors 2
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import pyarrow as pa

from tabline.cluster.connect import RayConfig, RayUnavailableError, cluster_cpus, within_reserved_cpus
from tabline.training.chunks import CHUNK_ROWS, Sampled, chunk_plan, concat_chunks, merge_reports, sample_chunk


def table_to_ipc(frame: pd.DataFrame) -> bytes:
    """A typed frame as Arrow IPC bytes (pandas dtypes kept in the schema's metadata).

    Example:
        >>> f = pd.DataFrame({"a": [1, 2], "b": pd.Categorical(["x", None])})
        >>> ipc_to_table(table_to_ipc(f)).equals(f)
        True
    """
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def ipc_to_table(blob: bytes) -> pd.DataFrame:
    """The frame `table_to_ipc` wrote."""
    return pa.ipc.open_stream(blob).read_all().to_pandas()


class SamplerReplica:
    """What one actor runs: a replica of the model and the chunk calls (plain Python, wrapped by Ray)."""

    def __init__(self, shipped: list):
        import ray

        within_reserved_cpus()
        self.lm = ray.get(shipped[0])  # a reference in a list: fetched here, owned (and kept) by the driver

    def sample(self, rows: int, seed: int, index: int, options: dict[str, Any]) -> tuple[int, bytes, Any]:
        from tabline.training.chunks import Chunk

        frame, report = sample_chunk(self.lm, Chunk(index, rows, seed), options)
        return index, table_to_ipc(frame), report

    def pid(self) -> int:
        import os

        return os.getpid()


def start_samplers(ray: Any, lm: Any, config: RayConfig) -> tuple[list[Any], Any]:
    """``config.actors`` sampler actors (default: one per cluster CPU), all loading one object-store copy,
    and the reference to that copy: hold it while the actors live, a restarted actor loads it again."""
    count = config.actors or max(1, int(cluster_cpus(ray) // config.cpus_per_actor))
    model = ray.put(lm)
    actor = ray.remote(SamplerReplica).options(num_cpus=config.cpus_per_actor, max_restarts=config.max_restarts,
                                               max_task_retries=config.max_task_retries)
    return [actor.remote([model]) for _ in range(count)], model


def sample_on_ray(ray: Any, lm: Any, n: int, *, seed: int, config: RayConfig, options: dict[str, Any] | None = None,
                  chunk_rows: int = CHUNK_ROWS, on_chunk: Callable[[int], None] | None = None) -> Sampled:
    """``n`` rows from ``lm`` on the actors of `start_samplers` (``on_chunk(rows)`` as each chunk arrives);
    the actors are ended before it returns."""
    plan = chunk_plan(n, seed=seed, chunk_rows=chunk_rows)
    actors, model = start_samplers(ray, lm, config)  # noqa: F841 (model: kept alive for restarts)
    options = dict(options or {})
    pending = list(reversed(plan))
    running: dict[Any, Any] = {}  # future -> actor
    done: dict[int, tuple[bytes, Any]] = {}
    try:
        def submit(actor: Any) -> None:
            chunk = pending.pop()
            running[actor.sample.remote(chunk.rows, chunk.seed, chunk.index, options)] = actor

        for _ in range(2):  # two per actor: the next chunk is queued while one decodes
            for actor in actors:
                if pending:
                    submit(actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(ready[0])
            try:
                index, blob, report = ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                raise RayUnavailableError(f"a sampler replica died more often than max_restarts={config.max_restarts} "
                                          f"allows: {str(exc).splitlines()[0]}; nothing was written") from None
            done[index] = (blob, report)
            if on_chunk is not None:
                on_chunk(plan[index].rows)
            if pending:
                submit(actor)
    finally:
        for actor in actors:
            ray.kill(actor)
    frame = concat_chunks(ipc_to_table(done[c.index][0]) for c in plan)
    return Sampled(frame, merge_reports([done[c.index][1] for c in plan]))


__all__ = ["SamplerReplica", "ipc_to_table", "sample_on_ray", "start_samplers", "table_to_ipc"]
