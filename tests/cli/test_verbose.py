"""Quiet by default: library warnings and log messages stay off the terminal unless `tabline --verbose`.

The commands run in a child Python, as a user runs them, so what is checked is the real stderr under Python's
own warning filters (pytest records warnings instead of printing them). The child's `TabularLM.fit` first does
what transformers, trl or torch do now and then — warn from their own modules, log a notice — so the quiet run
has library noise to hide and the verbose run has some to show.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tabline.cli import app

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import json, logging, sys, warnings
    from tabline.cli import app
    from tabline.training.lm import TabularLM

    real_fit = TabularLM.fit

    def fit_amid_library_noise(self, *args, **kwargs):
        warnings.warn_explicit("`old_name` is deprecated, use `new_name`", FutureWarning, "transformers/x.py", 1,
                               module="transformers.x")
        warnings.warn_explicit("`old_api` will go", DeprecationWarning, "trl/x.py", 1, module="trl.x")
        warnings.warn_explicit("a library remark", UserWarning, "torch/x.py", 1, module="torch.x")
        logging.getLogger("sdmetrics.x").warning("a library log notice")
        return real_fit(self, *args, **kwargs)

    TabularLM.fit = fit_amid_library_noise
    for args in json.loads(sys.argv[1]):
        app(args, standalone_mode=False)
""")

NOISE = ["`old_name` is deprecated", "`old_api` will go", "a library remark", "a library log notice"]


def _tabline(tmp_path: Path, *commands: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(commands)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture()
def table(tmp_path, diamonds) -> Path:
    diamonds.iloc[:60].to_csv(tmp_path / "data.csv", index=False)
    return tmp_path / "data.csv"


def test_fit_and_sample_print_no_library_warnings(tmp_path, table):
    # Run: a tiny fit and sample, as a user types them
    proc = _tabline(tmp_path, ["fit", "data.csv", "-o", "model", "--epochs", "1", "-q"],
                    ["sample", "model", "-n", "20", "-o", "synthetic.csv", "-q"])
    # Assert: both did their job, and stderr is empty: no library noise, and no transformers deprecation either
    assert proc.returncode == 0, proc.stderr
    assert "wrote 20 rows" in proc.stdout and (tmp_path / "synthetic.csv").exists()
    assert proc.stderr == ""


def test_verbose_shows_library_warnings_and_log_messages(tmp_path, table):
    # Run: the same fit with the global option
    proc = _tabline(tmp_path, ["--verbose", "fit", "data.csv", "-o", "model", "--epochs", "1", "-q"])
    # Assert: every kind of noise reaches stderr, DeprecationWarning included (Python hides libraries' own)
    assert proc.returncode == 0, proc.stderr
    for text in NOISE:
        assert text in proc.stderr, proc.stderr
    assert "FutureWarning" in proc.stderr and "DeprecationWarning" in proc.stderr


def test_a_command_leaves_the_callers_warning_and_logging_settings_alone(tmp_path, table):
    # Setup: an in-process caller (a notebook, a test) with its own settings
    before = (list(warnings.filters), logging.root.manager.disable)
    # Run: a quiet and a verbose command
    for args in (["schema", str(table)], ["--verbose", "schema", str(table)]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        # Assert: both are undone when the command ends
        assert (list(warnings.filters), logging.root.manager.disable) == before
