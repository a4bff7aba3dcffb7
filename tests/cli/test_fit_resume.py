"""`tabline fit` killed mid-training: the same command continues from the last epoch and writes the model
an uninterrupted fit writes."""
from __future__ import annotations

import subprocess
import sys

from safetensors.torch import load_file

from killing import env, kill_after_epoch


def fit(data, out, *extra):
    return [sys.executable, "-m", "tabline.cli", "fit", str(data), "-o", str(out), "--epochs", "4", *extra]


def test_a_killed_fit_continues_and_ends_as_an_uninterrupted_one(diamonds, tmp_path):
    data = tmp_path / "data.csv"
    diamonds.head(400).to_csv(data, index=False)
    whole = subprocess.run(fit(data, tmp_path / "whole", "-q"), env=env(), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    # Run: kill -9 once the second epoch is saved, then the same command again
    out = tmp_path / "model"
    proc = subprocess.Popen(fit(data, out, "-q"), env=env(), stderr=subprocess.DEVNULL)
    kill_after_epoch(proc, tmp_path / ".model.fit-checkpoint", 2)
    assert not out.exists()
    again = subprocess.run(fit(data, out), env=env(), capture_output=True, text=True)
    # Assert: it said it continued, and the weights equal the uninterrupted fit's
    assert again.returncode == 0, again.stderr
    assert "continuing the fit that was interrupted" in again.stdout
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert not (tmp_path / ".model.fit-checkpoint").exists()
