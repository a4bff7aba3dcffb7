"""`--device` on `tabline fit` and `tabline sample`: a device this machine lacks, or a malformed one, is a
one-line error (exit 2), never a traceback."""
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from tabline.cli import app

runner = CliRunner()
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without a GPU gives")


def run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture(scope="module")
def data(tmp_path_factory, diamonds):
    path = tmp_path_factory.mktemp("device") / "train.csv"
    diamonds.iloc[:200].to_csv(path, index=False)
    return path


def test_fit_and_sample_on_the_cpu(data, tmp_path):
    result = run("fit", data, "-o", tmp_path / "m", "--epochs", "1", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    result = run("sample", tmp_path / "m", "-n", "50", "-o", tmp_path / "s.csv", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(tmp_path / "s.csv")) == 50


@needs_no_gpu
def test_fit_on_an_absent_gpu_is_a_clear_error(data, tmp_path):
    result = run("fit", data, "-o", tmp_path / "m", "--epochs", "1", "--device", "cuda", "-q")
    assert result.exit_code == 2
    assert "device 'cuda' was asked for, but torch sees no CUDA GPU here" in result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("command", ["fit", "sample"])
def test_a_malformed_device_is_a_clear_error(command, data, tmp_path):
    if command == "fit":
        result = run("fit", data, "-o", tmp_path / "m", "--device", "gpu", "-q")
    else:
        assert run("fit", data, "-o", tmp_path / "m", "--epochs", "1", "--device", "cpu", "-q").exit_code == 0
        result = run("sample", tmp_path / "m", "-n", "5", "-o", tmp_path / "s.csv", "--device", "gpu")
    assert result.exit_code == 2
    assert "invalid settings: device" in result.output and "got 'gpu'" in result.output
