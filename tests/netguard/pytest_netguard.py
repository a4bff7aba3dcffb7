"""pytest plugin of the network guard (tabline_netguard.py): on in this process and in every child Python
a test starts, and a test fails when its code caught and hid a refused attempt.

Loaded by the repository's conftest.py; elsewhere ``python -m pytest -p pytest_netguard`` with this folder on
sys.path. A test that provokes refusals on purpose says so with ``@pytest.mark.network_attempts_expected``.
"""
from __future__ import annotations

import os

import pytest

import tabline_netguard as guard

GUARD_DIR = os.path.dirname(os.path.abspath(__file__))

# Children inherit os.environ: with this folder first on PYTHONPATH their `sitecustomize` is ours.
os.environ[guard.ENV] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    [GUARD_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != GUARD_DIR])
guard.install()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "network_attempts_expected: the test provokes refused network attempts "
                                       "on purpose (tests of the guard itself)")


def _watch(item: pytest.Item):
    start = len(guard.blocked)
    result = yield  # a phase that already failed re-raises here: its own error says enough
    new = guard.blocked[start:]
    if new and item.get_closest_marker("network_attempts_expected") is None:
        raise guard.NetworkBlockedError(
            f"the code under test tried to reach the network and swallowed the guard's error: {'; '.join(new)}")
    return result


# Fixtures run in setup/teardown, the test body in call: all three are watched.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from _watch(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _watch(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    return (yield from _watch(item))
