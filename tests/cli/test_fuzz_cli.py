"""Fuzz (end to end): random tables through `tabline fit` and `tabline sample`, as a user would run them.

Each case either stops at fit or sample with exit code 2 and a single ``error: ...`` line (notes aside, no
traceback), or writes a synthetic table that, read back, satisfies the model's schema: no value outside it,
every constant held. Derandomized and small (≤ 60 rows, one epoch), so it runs the same cases in about a minute.
"""
from __future__ import annotations

import collections
import tempfile
from pathlib import Path

from fuzz_tables import csv_texts
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from tabline.cli import app
from tabline.io import read_table
from tabline.schema import Schema

runner = CliRunner()


def _outcome(result, step: str) -> str | None:
    """None when the step worked; otherwise check that it failed the way a user mistake must."""
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        return None
    assert result.exit_code == 2, (step, result.exit_code, result.output, result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and all(line.startswith(("error: ", "note: ")) for line in lines), result.output
    return f"{step}-error"


def test_fuzzed_tables_fit_and_sample_or_stop_with_one_clear_error(record_property):
    outcomes: collections.Counter = collections.Counter()

    @settings(derandomize=True, deadline=None, database=None, max_examples=50, suppress_health_check=list(HealthCheck))
    @given(csv_texts(min_rows=8, max_rows=60))
    def one(text):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            data = root / "data.csv"
            data.write_text(text, encoding="utf-8", newline="")
            fitted = runner.invoke(app, ["fit", str(data), "-o", str(root / "model"), "--epochs", "1", "-q"])
            if (failed := _outcome(fitted, "fit")) is not None:
                outcomes[failed] += 1
                return
            sampled = runner.invoke(app, ["sample", str(root / "model"), "-n", "20", "-o", str(root / "out.csv"), "-q"])
            if (failed := _outcome(sampled, "sample")) is not None:
                outcomes[failed] += 1
                return
            schema = Schema.load(root / "model" / "schema.json")
            out = read_table(root / "out.csv", notes=[])
            assert len(out) == 20
            schema.validate_table(out, data_label="the sampled rows")
            outcomes["sampled"] += 1

    one()
    print(f"fuzz fit+sample: {sum(outcomes.values())} cases {dict(outcomes)}")
    record_property("fuzz_cases", dict(outcomes))
    assert outcomes["sampled"] >= 10 and outcomes["fit-error"] >= 5, outcomes
