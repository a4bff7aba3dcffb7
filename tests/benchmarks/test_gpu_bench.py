"""benchmarks/gpu.sh and benchmarks/gpu.py, as far as a machine without a GPU can take them: the Python part
end to end on the CPU (``--device cpu --quick``), its deadline and its no-GPU error, and the shell script's
refusal to start without a GPU. The GPU run itself is what the script is for (docs/tabular-lm.md, "GPU")."""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import torch

from benchmarks import gpu

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU does")


def _only_json(folder: Path) -> dict:
    files = list(folder.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_quick_cpu_run_measures_every_phase(tmp_path, monkeypatch):
    # Setup: a remote runner's $OUT beside the results folder
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    # Run
    code = gpu.main(["--device", "cpu", "--quick", "--out", str(tmp_path / "results")])
    # Assert: the same JSON in both places, every phase measured, every sampled row valid
    assert code == 0
    result = _only_json(tmp_path / "results")
    assert result == json.loads(next((tmp_path / "out").glob("gpu-*.json")).read_text())
    assert result["status"] == "complete" and result["device"] == "cpu" and result["quick"] is True
    assert result["phases_done"] == ["loaded", "device_fit", "device_sample", "cpu_fit", "complete"]
    for phase in ("device_fit", "cpu_fit"):
        assert result[phase]["epochs"] == 1 and result[phase]["training_tokens_per_s"] > 0
    for phase in ("device_sample", "cpu_sample"):
        assert result[phase]["rows_per_s"] > 0 and result[phase]["valid_share"] == 1.0
    assert result["device_sample"]["rows"] == result["table"]["rows"] == gpu.QUICK["rows"]
    assert set(result["speedup"]) == {"training", "sampling"}
    assert {"torch", "cuda", "gpu", "machine"} <= set(result)


@needs_no_gpu
def test_no_gpu_is_a_clear_error(tmp_path, capsys):
    code = gpu.main(["--device", "cuda", "--out", str(tmp_path)])
    assert code == 2
    assert "device 'cuda' was asked for, but torch sees no CUDA GPU here" in capsys.readouterr().err
    result = _only_json(tmp_path)
    assert result["status"] == "error" and "'cuda'" in result["error"]


def test_the_deadline_stops_the_run_and_keeps_what_was_measured(tmp_path, monkeypatch):
    # Setup: a run whose second phase outlasts the deadline
    def slow(args, result, save):
        result["table"] = {"rows": 1}
        save("loaded")
        time.sleep(5)

    monkeypatch.setattr(gpu, "run", slow)
    # Run
    started = time.perf_counter()
    code = gpu.main(["--device", "cpu", "--quick", "--deadline-s", "1", "--out", str(tmp_path)])
    # Assert
    assert code == 3 and time.perf_counter() - started < 4
    result = _only_json(tmp_path)
    assert result["status"].startswith("deadline") and result["phases_done"] == ["loaded", "deadline"]
    assert result["table"] == {"rows": 1}


def _script(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)


def test_script_refuses_to_start_without_a_gpu():
    done = _script({"NVIDIA_SMI": "tabline-no-such-nvidia-smi"})
    assert done.returncode == 1
    assert "no NVIDIA GPU here" in done.stderr and "this benchmark needs one" in done.stderr


@needs_no_gpu
def test_script_says_when_torch_sees_no_gpu(tmp_path):
    # Setup: a driver that lists a GPU, and this machine's torch, which sees none
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
    smi.chmod(0o755)
    # Run
    done = _script({"NVIDIA_SMI": str(smi)})
    # Assert: it stops before installing or running anything, and says how to get a CUDA build
    assert done.returncode == 1
    assert "sees no GPU" in done.stderr and "--index-url https://download.pytorch.org/whl/cu" in done.stderr
