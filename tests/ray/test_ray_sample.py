"""`tabline sample --ray`: the same rows as the local command for the same seed, whatever the actor count;
clear errors when Ray is missing or the address answers nothing."""
from __future__ import annotations

import socket
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from tabline.cli import app

pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')
from tabline.cluster.connect import RayConfig
from tabline.cluster.sampling import sample_on_ray
from tabline.training.chunks import chunk_plan, sample_in_chunks

runner = CliRunner()


def test_ray_rows_equal_the_local_rows_for_any_actor_count(ray_cluster, tiny_lm):
    import ray

    # Setup: 3 chunks of 70, 70 and 10 rows
    options = {"copies": "natural"}
    local = sample_in_chunks(tiny_lm, 150, seed=5, options=options, chunk_rows=70)
    # Run: the same plan on one actor, then on two
    one = sample_on_ray(ray, tiny_lm, 150, seed=5, config=RayConfig(actors=1), options=options, chunk_rows=70)
    two = sample_on_ray(ray, tiny_lm, 150, seed=5, config=RayConfig(actors=2), options=options, chunk_rows=70)
    # Assert: identical rows, dtypes and order; the guard's report summed over the chunks
    pd.testing.assert_frame_equal(one.frame, local.frame)
    pd.testing.assert_frame_equal(two.frame, local.frame)
    assert len(local.frame) == 150 and local.report.rows == 150 and two.report == local.report
    assert not local.frame.iloc[:70].reset_index(drop=True).equals(local.frame.iloc[70:140].reset_index(drop=True))
    assert _cpus_freed(ray)  # the actors are gone


def _cpus_freed(ray, within_s: float = 15.0) -> bool:
    deadline = time.time() + within_s
    while time.time() < deadline:
        if ray.available_resources().get("CPU") == 2:
            return True
        time.sleep(0.2)
    return False


def test_cli_sample_with_ray_writes_the_local_rows(ray_cluster, small_model, tmp_path):
    # Run: the local command, then the same on Ray with two actors (8,500 rows: three chunks)
    base = ["sample", str(small_model), "-n", "8500", "--seed", "3", "-q"]
    r1 = runner.invoke(app, [*base, "-o", str(tmp_path / "local.parquet")])
    r2 = runner.invoke(app, [*base, "-o", str(tmp_path / "ray.parquet"), "--ray", ray_cluster, "--actors", "2"])
    # Assert
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    local, on_ray = pd.read_parquet(tmp_path / "local.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    assert len(chunk_plan(8500, seed=3)) == 3 and len(on_ray) == 8500
    pd.testing.assert_frame_equal(on_ray, local)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_address_is_a_clear_error_within_seconds(small_model, tmp_path):
    port = _closed_port()
    start = time.time()
    r = runner.invoke(app, ["sample", str(small_model), "-n", "10", "-o", str(tmp_path / "x.csv"),
                            "--ray", f"127.0.0.1:{port}", "-q"])
    assert r.exit_code == 2 and f"cannot reach the Ray cluster at '127.0.0.1:{port}'" in r.output
    assert time.time() - start < 10 and r.exception is None or isinstance(r.exception, SystemExit)
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("args, message", [
    pytest.param(["--ray", "head"], "expected 'auto', HOST:PORT", id="no-port"),
    pytest.param(["--actors", "2"], "--actors 2 needs --ray", id="actors-without-ray"),
])
def test_bad_ray_options_are_named(small_model, tmp_path, args, message):
    r = runner.invoke(app, ["sample", str(small_model), "-n", "10", "-o", str(tmp_path / "x.csv"), "-q", *args])
    assert r.exit_code == 2 and message in r.output
