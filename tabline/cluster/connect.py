"""Joining a Ray cluster: `RayConfig` (what the user sets) and `connect` (the session that uses it).

``address`` is what ``--ray`` takes: ``auto`` (Ray's own default: ``RAY_ADDRESS``, else the cluster that
``ray start`` runs on this machine, else a new local Ray), ``HOST:PORT`` of a head node's GCS, or
``ray://HOST:PORT`` (Ray Client, needs ``ray[client]``). An explicit address is probed with a plain TCP
connect first, so an address nobody listens on is an error after ``connect_timeout_s``, not a hang.

Example:
    >>> RayConfig(address="auto", actors=2).actors
    2
    >>> RayConfig.from_value("ray://head:10001").address
    'ray://head:10001'
    >>> parse_host_port("ray://head:10001")
    ('head', 10001)
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tabline.errors import InvalidArgumentError, TablineError

INSTALL_HINT = 'pip install -e ".[ray]"  (or: pip install "ray>=2.9")'


class RayUnavailableError(TablineError):
    """Ray is not installed, or the cluster cannot be reached."""


class RayConfig(BaseModel):
    """Where and how the work runs on Ray. ``actors``: replicas of each model (one Ray actor each; None:
    one per CPU the cluster has, at least 1); ``cpus_per_actor``: the CPUs each actor reserves (its torch
    threads follow it); ``max_restarts`` / ``max_task_retries``: how often Ray restarts a dead actor and
    re-runs the call it was making; ``llm_requests_per_minute``: a cap on the LLM requests of the whole
    cluster (their concurrency is the team's ``llm.concurrency``, also for the whole cluster);
    ``forward_env``: environment variables of this process the replicas get (None: the LLM API-key
    variables and ``TABLINE_CACHE_DIR``, those that are set; [] for none, when the workers have their own).

    Example:
        >>> RayConfig(actors=2, cpus_per_actor=0.5).cpus_per_actor
        0.5
        >>> try:
        ...     RayConfig(actor=2)
        ... except ValueError as exc:
        ...     print(exc.errors()[0]["loc"], exc.errors()[0]["type"])
        ('actor',) extra_forbidden
    """

    model_config = ConfigDict(extra="forbid")

    address: str = "auto"
    actors: int | None = Field(None, ge=1, le=4096)
    cpus_per_actor: float = Field(1.0, gt=0)
    max_restarts: int = Field(4, ge=-1)
    max_task_retries: int = Field(4, ge=-1)
    connect_timeout_s: float = Field(10.0, gt=0)
    llm_requests_per_minute: float | None = Field(None, gt=0)
    forward_env: list[str] | None = None

    @field_validator("address")
    @classmethod
    def _known_address(cls, value: str) -> str:
        """'auto', HOST:PORT or ray://HOST:PORT: a malformed address is said when the config is made."""
        value = value.strip()
        if value != "auto":
            parse_host_port(value)
        return value

    @classmethod
    def from_value(cls, value: "str | RayConfig | dict[str, Any]") -> "RayConfig":
        """``"ray"`` / ``"auto"`` / an address, a dict of settings, or a RayConfig."""
        if isinstance(value, RayConfig):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError(f"executor {value!r}: give 'local', 'ray', 'auto', 'HOST:PORT' or 'ray://HOST:PORT'")
        text = value.strip()
        return cls(address="auto" if text in ("ray", "auto") else text)


def parse_host_port(address: str) -> tuple[str, int]:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; a clear error for anything else."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgumentError(f"--ray {address!r}: expected 'auto', HOST:PORT (a head node's GCS, e.g. "
                                   "10.0.0.5:6379) or ray://HOST:PORT (Ray Client)")
    return host.strip("[]"), int(port)


def require_ray() -> Any:
    """The ``ray`` module, or an error that says how to install it."""
    if importlib.util.find_spec("ray") is None:
        raise RayUnavailableError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}")
    import ray

    return ray


def _probe(host: str, port: int, timeout_s: float, address: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        why = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise RayUnavailableError(f"cannot reach the Ray cluster at {address!r}: {why} after at most "
                                  f"{timeout_s:g} s (is `ray start --head` running there, and the port open?)") from None


@contextlib.contextmanager
def connect(config: RayConfig) -> Iterator[Any]:
    """Use the cluster of ``config`` inside the block; yields the ``ray`` module. A Ray session this
    process already holds is reused (and left open); one started here is shut down at the end."""
    ray = require_ray()
    address = config.address
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address != "auto":
        host, port = parse_host_port(address)
        _probe(host, port, config.connect_timeout_s, address)
        kwargs["address"] = address
    else:
        kwargs["include_dashboard"] = False
    if ray.is_initialized():
        yield ray
        return
    # Ray's own wait for the GCS, after the probe: a port that answers but is not Ray's fails in seconds too.
    os.environ.setdefault("RAY_gcs_rpc_server_connect_timeout_s", str(int(max(1, config.connect_timeout_s))))
    try:
        ray.init(**kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        raise RayUnavailableError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def forwarded_env(config: RayConfig) -> dict[str, str]:
    """The variables of this process's environment that `RayConfig.forward_env` passes to the replicas."""
    if config.forward_env is None:
        from tabline.agents.llm.backends import KEY_ENV

        names = [*sorted(set(KEY_ENV.values())), "TABLINE_CACHE_DIR"]
    else:
        names = config.forward_env
    return {name: os.environ[name] for name in names if name in os.environ}


def cluster_cpus(ray: Any) -> int:
    """CPUs the cluster has in all (at least 1)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def within_reserved_cpus() -> None:
    """In a Ray replica: use at most the CPUs Ray reserved for it (which Ray says in ``OMP_NUM_THREADS``),
    fewer when other processes keep cores busy (`tabline.threads`)."""
    reserved = os.environ.pop("OMP_NUM_THREADS", "")
    if reserved.strip().isdigit() and "TABLINE_MAX_THREADS" not in os.environ:
        os.environ["TABLINE_MAX_THREADS"] = reserved.strip()


__all__ = ["INSTALL_HINT", "RayConfig", "RayUnavailableError", "cluster_cpus", "connect", "forwarded_env", "within_reserved_cpus", "parse_host_port",
           "require_ray"]
