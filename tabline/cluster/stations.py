"""The line's heavy stations as Ray actors: `RayStations` puts the fitted LM and LLM workers and the judges
that need a model (classifier, labels, LLM) into the object store once, starts K replica actors that each
load them, and hands the line stand-ins with the same roles (`RemoteWorker`, `RemoteJudge`). The driver
keeps everything else: the LangGraph graph, the coordinator and bandit, QC, the run folder and checkpoint.

A call ships the batch as Arrow IPC bytes (`tabline.graphs.line_runtime.frame_to_arrow`, the encoding the
checkpoint holds) with its seed, and gets the worker's columns back the same way; a station's rows depend
only on (batch, seed, context), never on the replica, so the rows are those of a local run.

**Batches ahead.** With one arm, no evolvers and a station that starts from nothing, batch b+1's input is
known before batch b's QC: the same number of empty rows, with the seed of b+1. `RayStations.expect` starts
up to K such fills ahead on the idle replicas; the station takes the answer when the batch it is given is
exactly the one expected (same bytes, seed and context) and asks afresh otherwise — the last, smaller
batch of a run, say. Look-ahead changes when rows are made, never which.

**Faults.** Actors are started with ``max_restarts`` and ``max_task_retries``: a replica that dies (killed,
out of memory, its node gone) is restarted by Ray, loads the same object-store copy again, and the call it
was making is re-run with the same inputs — the same rows, none lost, none twice.

Example (needs Ray; see tests/ray/test_ray_line.py):
    $ tabline run data.csv -n 20000 -o runs/x --ray auto
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections import OrderedDict
from typing import Any, Iterator

import pandas as pd

from tabline.agents.judges import ClassifierJudge, LabelJudge
from tabline.agents.llm.judge import LLMJudge
from tabline.agents.llm.worker import LLMWorker
from tabline.agents.roles import FillContext, Filled, Judge, Judgement, Worker
from tabline.agents.workers import LMWorker
from tabline.cluster.connect import (RayConfig, RayUnavailableError, cluster_cpus, connect, forwarded_env,
                                    within_reserved_cpus)
from tabline.graphs.line_runtime import LineAgents, frame_from_arrow, frame_to_arrow

NAMESPACE = "tabline"
_HEAVY_WORKERS = (LMWorker, LLMWorker)  # a model or a remote service behind them: worth an actor
_HEAVY_JUDGES = (ClassifierJudge, LabelJudge, LLMJudge)


def runs_remotely(agent: Any) -> bool:
    """Whether `RayStations` places ``agent`` on the actors (expressions, samplers, rules and your own
    python agents stay on the driver: cheap, and your code need not be importable on the workers)."""
    return isinstance(agent, _HEAVY_WORKERS + _HEAVY_JUDGES)


class StationReplica:
    """What one actor runs: a replica of the heavy agents, by key (plain Python, wrapped by Ray)."""

    def __init__(self, shipped: list, budget: str | None = None):
        import ray

        # The agents come as a reference inside a list, fetched here: Ray then leaves the one object-store copy
        # to the driver, which holds it for as long as the replicas may be restarted.
        within_reserved_cpus()
        self.agents: dict[str, Any] = ray.get(shipped[0])
        if budget is not None:  # every LLM request of this replica waits for the cluster's budget
            from tabline.agents.llm.calls import use_request_gate
            from tabline.cluster.budget import gate_of

            use_request_gate(gate_of(budget))

    def fill(self, key: str, batch: bytes, seed: int, rule: str, negatives: list, arm_rows: Any
             ) -> tuple[bytes, dict, list, Any]:
        context = FillContext(rule=rule, arm_rows=arm_rows, negatives=negatives)
        filled = self.agents[key].fill(frame_from_arrow(batch), seed=seed, context=context)
        return frame_to_arrow(filled.frame), filled.failures, filled.calls, filled.usage

    def judge(self, key: str, batch: bytes) -> tuple[dict[str, list], dict, list, Any]:
        verdict = self.agents[key].judge(frame_from_arrow(batch))
        scores = {name: pd.Series(s).astype(float).tolist() for name, s in verdict.scores.items()}
        return scores, verdict.notes, verdict.calls, verdict.usage

    def pid(self) -> int:
        return os.getpid()


class RayStations:
    """K replica actors of a line's heavy agents, and the stand-ins the line calls instead of them."""

    def __init__(self, ray: Any, agents: LineAgents, config: RayConfig, *, run_id: str):
        self.ray, self.config, self.run_id = ray, config, run_id
        heavy = {f"worker:{name}": w for name, w in agents.workers.items() if runs_remotely(w)}
        heavy.update({f"judge:{i}": j for i, j in enumerate(agents.judges) if runs_remotely(j)})
        self.keys = sorted(heavy)
        count = config.actors or max(1, int(cluster_cpus(ray) // config.cpus_per_actor))
        self.budget = None
        if any(isinstance(a, (LLMWorker, LLMJudge)) for a in heavy.values()):
            from tabline.cluster.budget import start_budget

            _end_named(ray, f"tabline-llm-budget-{run_id}")
            self.budget = start_budget(ray, f"tabline-llm-budget-{run_id}", concurrency=agents.team.llm.concurrency,
                                       per_minute=config.llm_requests_per_minute)
        self._shipped = ray.put(heavy)  # one copy for every replica, and for every restart of one
        # Two lanes per replica, so a judge's call never waits behind a long fill queued ahead of it.
        actor = ray.remote(concurrency_groups={"fill": 1, "judge": 1})(StationReplica)
        options = {"num_cpus": config.cpus_per_actor, "max_restarts": config.max_restarts,
                   "max_task_retries": config.max_task_retries, "namespace": NAMESPACE}
        env = forwarded_env(config)
        if env:  # API keys are read from the environment, on the replica that makes the request
            options["runtime_env"] = {"env_vars": env}
        budget_name = f"tabline-llm-budget-{run_id}" if self.budget is not None else None
        for i in range(count):  # left by a killed driver of this run (the run folder's lock says it is gone)
            _end_named(ray, replica_name(run_id, i))
        self.actors = [actor.options(name=replica_name(run_id, i), **options).remote([self._shipped], budget_name)
                       for i in range(count)]
        self.depth = len(self.actors)  # batches expected ahead: one per replica keeps them all busy
        self._next = 0
        self._ahead: OrderedDict[tuple, Any] = OrderedDict()  # expected call -> its future
        self._arm_refs: dict[int, tuple[Any, Any]] = {}  # id(arm rows) -> (frame, its object-store copy)
        self.calls = {"fills": 0, "fills_ahead": 0, "fills_taken": 0, "judges": 0}

    # ------------------------------------------------------------------ the line's stand-ins
    def wrap(self, agents: LineAgents) -> LineAgents:
        """``agents`` with every heavy worker and judge replaced by its stand-in on the actors."""
        workers = {name: RemoteWorker(self, f"worker:{name}", w) if runs_remotely(w) else w
                   for name, w in agents.workers.items()}
        judges: list[Judge] = [RemoteJudge(self, f"judge:{i}", j) if runs_remotely(j) else j
                               for i, j in enumerate(agents.judges)]
        return dataclasses.replace(agents, workers=workers, judges=judges)

    def expect(self, component: str, batch: pd.DataFrame, seed: int, context: FillContext) -> None:
        """Start the fill of a batch the line is expected to ask for next (see the module docstring)."""
        key = f"worker:{component}"
        if key not in self.keys:
            return
        call = self._call(key, frame_to_arrow(batch), seed, context)
        if call[0] not in self._ahead:
            self._ahead[call[0]] = self._submit_fill(*call[1])
            self.calls["fills_ahead"] += 1
            while len(self._ahead) > 4 * len(self.actors):  # never taken (the run changed course): let go
                self._ahead.popitem(last=False)

    def fill(self, key: str, batch: pd.DataFrame, seed: int, context: FillContext | None) -> Filled:
        call = self._call(key, frame_to_arrow(batch), seed, context or FillContext())
        future = self._ahead.pop(call[0], None)
        if future is None:
            future = self._submit_fill(*call[1])
        else:
            self.calls["fills_taken"] += 1
        self.calls["fills"] += 1
        blob, failures, calls, usage = self._get(future)
        return Filled(frame_from_arrow(blob).set_axis(batch.index), failures, calls, usage)

    def judge(self, key: str, batch: pd.DataFrame) -> Judgement:
        self.calls["judges"] += 1
        future = self._actor().judge.options(concurrency_group="judge").remote(key, frame_to_arrow(batch))
        scores, notes, calls, usage = self._get(future)
        return Judgement({k: pd.Series(v, index=batch.index) for k, v in scores.items()}, notes, calls, usage)

    # ------------------------------------------------------------------ plumbing
    def _call(self, key: str, blob: bytes, seed: int, context: FillContext) -> tuple[tuple, tuple]:
        """(what identifies the call, the call's arguments)."""
        arm_rows = self._arm_ref(context.arm_rows)
        negatives = json.dumps(context.negatives, sort_keys=True, default=str)
        identity = (key, blob, int(seed), context.rule, negatives, id(context.arm_rows))
        return identity, (key, blob, int(seed), context.rule, context.negatives, arm_rows)

    def _arm_ref(self, rows: pd.DataFrame | None) -> Any:
        if rows is None:
            return None
        hit = self._arm_refs.get(id(rows))
        if hit is None or hit[0] is not rows:  # the frame is held with its copy, so its id is never reused
            hit = self._arm_refs[id(rows)] = (rows, self.ray.put(rows))
        return hit[1]

    def _actor(self) -> Any:
        actor = self.actors[self._next % len(self.actors)]
        self._next += 1
        return actor

    def _submit_fill(self, key: str, blob: bytes, seed: int, rule: str, negatives: list, arm_rows: Any) -> Any:
        return self._actor().fill.options(concurrency_group="fill").remote(key, blob, seed, rule, negatives, arm_rows)

    def _get(self, future: Any) -> Any:
        try:
            return self.ray.get(future)
        except self.ray.exceptions.RayActorError as exc:
            raise RayUnavailableError(f"a station replica died more often than max_restarts="
                                      f"{self.config.max_restarts} allows: {str(exc).splitlines()[0]}. Every "
                                      "finished batch is kept: `tabline run --resume RUN_DIR` continues") from None

    def budget_stats(self) -> dict[str, int] | None:
        """The LLM budget's counts (requests granted, the most in flight at once), None without LLM agents."""
        return None if self.budget is None else self.ray.get(self.budget.stats.remote())

    def close(self) -> None:
        """End the replicas (and the LLM budget); calls still running ahead are dropped."""
        for future in self._ahead.values():  # not needed any more: drop them before Ray would retry them
            self.ray.cancel(future)
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        if self.budget is not None:
            self.ray.kill(self.budget, no_restart=True)
        self.actors, self._ahead = [], OrderedDict()


@contextlib.contextmanager
def ray_stations(config: RayConfig, agents: LineAgents, *, run_id: str) -> Iterator[tuple[LineAgents, RayStations]]:
    """Join the cluster, start the replicas of ``agents``' heavy stations; yields the agents the line runs
    with (stand-ins in place) and the `RayStations` (the line's look-ahead). The replicas end with the block."""
    with connect(config) as ray:
        stations = RayStations(ray, agents, config, run_id=run_id)
        try:
            yield stations.wrap(agents), stations
        finally:
            stations.close()


def _end_named(ray: Any, name: str, wait_s: float = 30.0) -> None:
    """End the actor called ``name`` if there is one, and wait until its name is free again."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            stale = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:  # no actor of that name (the usual case), or no longer
            return
        ray.kill(stale, no_restart=True)
        time.sleep(0.2)


def replica_name(run_id: str, index: int) -> str:
    """The Ray name of replica ``index`` of run ``run_id`` (namespace ``tabline``): what `ray.get_actor`
    takes to find it.

    Example:
        >>> replica_name("3f2a", 0)
        'tabline-station-3f2a-0'
    """
    return f"tabline-station-{run_id}-{index}"


class RemoteWorker:
    """A `Worker` whose fills run on the replicas: same name and columns as the worker it stands for."""

    def __init__(self, stations: RayStations, key: str, worker: Worker):
        self.stations, self.key, self.name, self.columns = stations, key, worker.name, list(worker.columns)

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        return self.stations.fill(self.key, batch, seed, context)


class RemoteJudge:
    """A `Judge` whose scoring runs on the replicas: same name as the judge it stands for."""

    def __init__(self, stations: RayStations, key: str, judge: Judge):
        self.stations, self.key, self.name = stations, key, judge.name

    def judge(self, batch: pd.DataFrame) -> Judgement:
        return self.stations.judge(self.key, batch)


__all__ = ["NAMESPACE", "RayStations", "ray_stations", "RemoteJudge", "RemoteWorker", "StationReplica", "replica_name",
           "runs_remotely"]
