"""One LLM request budget for the cluster: requests from several actors never exceed the team's concurrency
together, and a requests-per-minute cap spaces them out."""
from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')

from tabline.cluster.budget import gate_of, start_budget


def caller_actor(ray):
    """An actor making LLM-like requests through the cluster's gate, as a station replica does (defined in a
    function so that Ray ships the class itself: the workers cannot import this test module)."""

    class Caller:
        def __init__(self, name: str):
            from tabline.agents.llm.calls import use_request_gate

            use_request_gate(gate_of(name))

        async def requests(self, n: int, hold_s: float) -> int:
            from tabline.agents.llm import calls

            async def one() -> None:
                async with calls._request_gate():
                    await asyncio.sleep(hold_s)

            await asyncio.gather(*[one() for _ in range(n)])
            return n

    return ray.remote(num_cpus=0)(Caller)


@pytest.fixture
def budget(ray_cluster, request):
    import ray

    name = f"tabline-llm-budget-test-{request.node.name}"
    actor = start_budget(ray, name, **request.param)
    yield ray, name, actor
    ray.kill(actor, no_restart=True)


@pytest.mark.parametrize("budget", [pytest.param({"concurrency": 3}, id="three-at-once")], indirect=True)
def test_concurrency_holds_across_actors(budget):
    ray, name, actor = budget
    callers = [caller_actor(ray).remote(name) for _ in range(3)]
    # Run: 3 actors x 6 concurrent requests of 0.2 s; each actor alone would run all six at once
    start = time.time()
    assert ray.get([c.requests.remote(6, 0.2) for c in callers]) == [6, 6, 6]
    seconds = time.time() - start
    stats = ray.get(actor.stats.remote())
    # Assert: never more than 3 in flight in the whole cluster, all 18 served, so at least 6 rounds of 0.2 s
    assert stats == {"in_use": 0, "peak": 3, "granted": 18}
    assert seconds >= 6 * 0.2 - 0.05
    for c in callers:
        ray.kill(c)


@pytest.mark.parametrize("budget", [pytest.param({"concurrency": 50, "per_minute": 600}, id="ten-per-second")],
                         indirect=True)
def test_requests_per_minute_spaces_requests(budget):
    ray, name, actor = budget
    callers = [caller_actor(ray).remote(name) for _ in range(2)]
    start = time.time()
    ray.get([c.requests.remote(5, 0.0) for c in callers])
    # Assert: 10 requests at 600 per minute take at least 9 gaps of 0.1 s
    assert time.time() - start >= 0.85
    assert ray.get(actor.stats.remote())["granted"] == 10
    for c in callers:
        ray.kill(c)
