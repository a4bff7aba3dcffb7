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
import pandas as pd
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


# A case the fuzzer found: a date column with one value and blanks. Sampling died in pandas' date conversion
# ("overflow encountered in multiply", raised under pandas' own np.errstate) on an all-blank redraw, with torch
# on one thread; decode_column now converts only the dates that exist.
ONE_DATE_AND_BLANKS = 'c0,c1,c2\n,,0.0\n,,654510.0469288907\n2020-01-31,,618303.2660926683\n,,0.0\n,,555541.7337280803\n,7,999999.0\n,,2.0\n2020-01-31,,0.0\n,,5.0\n,,4.57014095374948e-235\n,,271893.53422413743\n,,0.0\n,,0.0\n,,0.0\n,7,6.847417674603074e-99\n,,0.0\n,,2.2250738585e-313\n,7,428393.79068131605\n,,647054.2758142238\n,,788923.2753730156\n2020-01-31,7,0.0\n,,0.0\n,7,0.0\n,,909140.2894179125\n,7,0.0\n2020-01-31,,1.1801248461807538e-63\n2020-01-31,,-777089.9278268106\n,7,386545.498084564\n2020-01-31,,-5.098196481118351e-294\n,,-537282.2711222293\n,7,0.0\n,,5e-324\n2020-01-31,,0.0\n,,0.0\n,,0.0\n,,0.0\n2020-01-31,7,0.0\n2020-01-31,7,0.0\n,7,-1.401298464324817e-45\n,,70388.52915266622\n,,-407768.0482073579\n2020-01-31,7,0.0\n,,0.0\n,,274293.5773387309\n,,337465.0110709362\n,7,-104865.2137787831\n2020-01-31,7,0.0\n,7,0.0\n2020-01-31,,0.3\n,,-30443.627038321923\n2020-01-31,,0.6\n,,62686.957038703375\n,,0.0\n,,0.0\n'


def test_a_date_column_with_one_value_and_blanks_samples(tmp_path):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = tmp_path / "data.csv"
        data.write_text(ONE_DATE_AND_BLANKS, encoding="utf-8", newline="")
        fitted = runner.invoke(app, ["fit", str(data), "-o", str(tmp_path / "model"), "--epochs", "1", "-q"])
        results = [runner.invoke(app, ["sample", str(tmp_path / "model"), "-n", "20", "-o", str(tmp_path / f"{s}.csv"),
                                       "-q", "--seed", str(s)]) for s in range(4)]
    finally:
        torch.set_num_threads(threads)
    assert fitted.exit_code == 0, fitted.output
    assert [r.exit_code for r in results] == [0] * 4, [repr(r.exception) for r in results]
    dates = pd.concat([read_table(tmp_path / f"{s}.csv", notes=[])["c0"] for s in range(4)])
    assert set(dates.dropna().astype(str)) == {"2020-01-31"} and dates.isna().any()
