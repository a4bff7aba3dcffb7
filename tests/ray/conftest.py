"""One real local Ray for the whole test session (2 CPUs, on 127.0.0.1 so child processes may join it
under the network guard), shut down at the end. Every test here skips when Ray is not installed."""
from __future__ import annotations

import os

import pytest

# Ray binds to the machine's own address unless told it is a one-machine cluster; the network guard lets
# child processes reach loopback only. Children (the CLI runs of the tests) inherit this.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

NO_RAY = 'Ray is an optional extra: pip install -e ".[ray]"'


def pytest_collection_modifyitems(items):
    """Under pytest-xdist, every Ray test on one worker: one local cluster for the session, not one per worker."""
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def ray_cluster():
    """The session's Ray; yields its GCS address (HOST:PORT), which `--ray` takes in a child process."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def small_model(tiny_lm, tmp_path_factory):
    """The session's tiny LM saved as a model directory (what `tabline fit` writes)."""
    path = tmp_path_factory.mktemp("model") / "m"
    tiny_lm.save(path)
    return path
