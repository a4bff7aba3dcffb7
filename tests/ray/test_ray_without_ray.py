"""Without Ray installed, `--ray` says how to install it (runs whether or not Ray is installed here)."""
from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", [
    pytest.param(["sample", "{model}", "-n", "10", "-o", "{out}/x.csv", "--ray", "auto"], id="sample"),
    pytest.param(["run", "{data}", "-n", "10", "-o", "{out}/run", "--ray", "auto"], id="run"),
])
def test_the_flag_says_how_to_install_ray(small_model, diamonds, tmp_path, command):
    # Setup: a child Python in which `import ray` finds nothing
    diamonds.head(50).to_csv(tmp_path / "data.csv", index=False)
    args = [a.format(model=small_model, out=tmp_path, data=tmp_path / "data.csv") for a in command]
    code = "import sys; sys.modules['ray'] = None; from tabline.cli import app; app(sys.argv[1:])"
    # Run
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    # Assert: one line, exit 2, nothing written (the check comes before any fit or sampling)
    assert r.returncode == 2, r.stderr
    assert 'pip install -e ".[ray]"' in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("executor, message", [
    pytest.param("bogus", "--ray 'bogus': expected 'auto', HOST:PORT", id="no-port"),
    pytest.param("head:99999", "--ray 'head:99999'", id="bad-port"),
    pytest.param({"address": "auto", "actor": 2}, "actor", id="misspelt-setting"),
])
def test_a_bad_executor_is_named_when_the_line_is_made(executor, message):
    from pydantic import ValidationError

    from tabline.errors import TablineError
    from tabline.line.assembly import AssemblyLine

    with pytest.raises((TablineError, ValidationError), match=message.replace("(", r"\(").replace(".", r"\.")):
        AssemblyLine(executor=executor)
