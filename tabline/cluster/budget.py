"""One LLM request budget for the whole cluster: a named Ray actor that every replica asks before each
request, so ``llm.concurrency`` (requests in flight) and a requests-per-minute cap hold for the cluster, not
per actor.

`RequestBudget` is the actor's body (asyncio: waiting callers cost nothing); `start_budget` starts it under
a name; `gate_of(name)` is what a replica installs with `tabline.agents.llm.calls.use_request_gate`: an
async context manager that holds one slot of the budget for the duration of one request.

Example (no Ray needed: the budget is plain asyncio):
    >>> import asyncio
    >>> budget = RequestBudget(concurrency=2)
    >>> async def one():
    ...     await budget.acquire(); await asyncio.sleep(0.01); await budget.release()
    >>> async def many():
    ...     await asyncio.gather(*[one() for _ in range(5)])
    >>> asyncio.run(many()); budget.stats()["peak"], budget.stats()["granted"]
    (2, 5)
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Callable


class RequestBudget:
    """At most ``concurrency`` requests at once and, with ``per_minute``, requests started at least
    60/per_minute seconds apart."""

    def __init__(self, concurrency: int, per_minute: float | None = None):
        self.concurrency, self.per_minute = int(concurrency), per_minute
        self._slots: asyncio.Semaphore | None = None  # made on the actor's own event loop
        self._spacing: asyncio.Lock | None = None
        self._next_start = 0.0
        self._in_use = self._peak = self._granted = 0

    async def acquire(self) -> None:
        """Wait for a slot (and for the rate), then hold it until `release`."""
        if self._slots is None:
            self._slots, self._spacing = asyncio.Semaphore(self.concurrency), asyncio.Lock()
        await self._slots.acquire()
        if self.per_minute:
            async with self._spacing:
                wait = self._next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                self._next_start = time.monotonic() + 60.0 / self.per_minute
        self._in_use += 1
        self._granted += 1
        self._peak = max(self._peak, self._in_use)

    async def release(self) -> None:
        self._in_use -= 1
        self._slots.release()

    def stats(self) -> dict[str, int]:
        """Requests in flight now, the most ever at once, and requests granted."""
        return {"in_use": self._in_use, "peak": self._peak, "granted": self._granted}


def start_budget(ray: Any, name: str, *, concurrency: int, per_minute: float | None = None) -> Any:
    """The budget actor, under ``name`` in namespace ``tabline`` (no CPU reserved: it only counts)."""
    actor = ray.remote(RequestBudget).options(name=name, namespace="tabline", num_cpus=0, max_concurrency=10_000,
                                              max_restarts=-1)
    return actor.remote(concurrency, per_minute)


def gate_of(name: str) -> Callable[[], Any]:
    """The async context manager factory that holds one slot of the budget named ``name``."""
    @contextlib.asynccontextmanager
    async def gate() -> AsyncIterator[None]:
        import ray

        budget = ray.get_actor(name, namespace="tabline")
        await budget.acquire.remote()
        try:
            yield
        finally:
            await budget.release.remote()

    return gate


__all__ = ["RequestBudget", "gate_of", "start_budget"]
