"""The ``device`` setting: resolved and checked before any training, absent from the checkpoint's fingerprint,
never in a saved model's way, and invisible on the CPU (the same weights and rows as before it existed).

These run without a GPU. The CUDA-only pieces are pure functions checked against hand-worked numbers here;
the CUDA paths themselves run in benchmarks/gpu.sh (see docs/tabular-lm.md, "GPU")."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from tabline.errors import InvalidArgumentError
from tabline.training import TabularLM, TabularLMConfig
from tabline.training.decoder import Decoder
from tabline.training.device import (autocast_dtype, device_for_loading, gpu_batch_rows, resolve_device,
                                     sampling_generator, training_autocast)

# Tests of what a machine *without* a GPU does; on a GPU machine they do not apply (benchmarks/gpu.sh does)
needs_no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a CUDA GPU does")


def _tiny(device: str, **settings) -> TabularLMConfig:
    return TabularLMConfig(n_layer=1, n_embd=16, max_epochs=2, batch_size=32, seed=0, threads=1, device=device,
                           **settings)


@pytest.fixture(scope="module")
def small(diamonds) -> pd.DataFrame:
    return diamonds.iloc[:300].reset_index(drop=True)


@pytest.fixture(scope="module")
def cpu_lm(small) -> TabularLM:
    return TabularLM(_tiny("cpu")).fit(small, progress=False)


# ------------------------------------------------------------------ resolution
@pytest.mark.parametrize("spec, gpus, expected", [
    pytest.param("auto", 0, "cpu", id="auto-without-gpu"),
    pytest.param("auto", 2, "cuda", id="auto-with-gpus"),
    pytest.param("cpu", 2, "cpu", id="cpu-even-with-gpus"),
    pytest.param("cuda", 1, "cuda", id="cuda"),
    pytest.param("cuda:1", 2, "cuda:1", id="cuda-index"),
])
def test_device_resolution(spec, gpus, expected):
    assert resolve_device(spec, cuda_devices=gpus) == torch.device(expected)


@pytest.mark.parametrize("spec, gpus, message", [
    pytest.param("cuda", 0, r"device 'cuda' was asked for, but torch sees no CUDA GPU here .*available: 'cpu'",
                 id="no-gpu"),
    pytest.param("cuda:2", 2, r"device 'cuda:2' was asked for, but this machine has 2 CUDA GPU\(s\): 'cuda:0', "
                 r"'cuda:1'", id="index-past-the-last-gpu"),
    pytest.param("gpu", 1, r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'.*got 'gpu'", id="malformed"),
])
def test_unavailable_or_malformed_device_is_a_clear_error(spec, gpus, message):
    with pytest.raises(InvalidArgumentError, match=message):
        resolve_device(spec, cuda_devices=gpus)


def test_this_machine_resolves_auto_to_what_torch_sees():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "CUDA", "cuda:", "cuda:x", "cpu:0", "", "mps"])
def test_config_rejects_a_malformed_device(spec):
    with pytest.raises(ValidationError, match="device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"):
        TabularLMConfig(device=spec)


def test_config_default_is_auto():
    assert TabularLMConfig().device == "auto"


@needs_no_gpu
def test_fit_on_an_absent_gpu_fails_before_training(small):
    # Setup: a machine without a CUDA GPU (this one)
    lm = TabularLM(_tiny("cuda"))
    # Run / Assert: the error names the value and what there is, and nothing was trained
    with pytest.raises(InvalidArgumentError, match="device 'cuda' was asked for.*available: 'cpu'"):
        lm.fit(small, progress=False)
    assert lm.model is None and lm.log.stopped_by == "not_trained"


# ------------------------------------------------------------------ the CPU path is what it was
@needs_no_gpu
def test_cpu_and_auto_give_the_same_weights_and_rows_here(cpu_lm, small):
    """Without a GPU "auto" is the CPU, and the CPU path is the one that existed before devices (the weights
    and rows of a fit on main were compared bit for bit when this came in): "cpu" and "auto" must train
    identical weights and sample identical rows, in both precisions."""
    # Setup / Run
    auto = TabularLM(_tiny("auto")).fit(small, progress=False)
    # Assert
    for (name, wa), wb in zip(cpu_lm.model.state_dict().items(), auto.model.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert cpu_lm.log.history == auto.log.history
    for precision in ("float32", "auto"):
        pd.testing.assert_frame_equal(cpu_lm.sample(400, seed=3, precision=precision),
                                      auto.sample(400, seed=3, precision=precision))
    assert all(p.device.type == "cpu" for p in auto.model.parameters())  # a fitted model rests on the CPU


def test_explicit_cpu_decoder_is_the_default_decoder(cpu_lm):
    lm = cpu_lm
    ids = torch.tensor([[1, lm.tokenizer.codes[0].marker]] * 4)
    a, b = Decoder(lm.model, "float32"), Decoder(lm.model, "float32", torch.device("cpu"))
    a.start(4, 8), b.start(4, 8)
    assert a.device == b.device == torch.device("cpu")
    assert torch.equal(a.logits(a.step(ids), 0, 10), b.logits(b.step(ids), 0, 10))


# ------------------------------------------------------------------ files
def test_a_cpu_model_saves_and_loads(cpu_lm, tmp_path):
    lm = cpu_lm
    lm.save(tmp_path / "m")
    again = TabularLM.load(tmp_path / "m")
    assert again.config.device == "cpu"
    pd.testing.assert_frame_equal(lm.sample(200, seed=1), again.sample(200, seed=1))


@needs_no_gpu
def test_a_model_trained_on_a_gpu_loads_and_samples_without_one(cpu_lm, tmp_path):
    # Setup: a saved model whose settings say it was trained on "cuda:1" (as one saved on a GPU machine does)
    lm = cpu_lm
    lm.save(tmp_path / "m")
    meta_file = tmp_path / "m" / "tabline.json"
    meta = json.loads(meta_file.read_text())
    meta["config"]["device"] = "cuda:1"
    meta_file.write_text(json.dumps(meta))
    # Run
    again = TabularLM.load(tmp_path / "m")
    # Assert: it runs where it is, on the CPU, and samples what the original does
    assert again.config.device == "auto"
    pd.testing.assert_frame_equal(lm.sample(200, seed=1), again.sample(200, seed=1))


def test_device_for_loading_keeps_what_exists_here():
    assert device_for_loading("cpu") == "cpu" and device_for_loading("auto") == "auto"
    assert device_for_loading("cuda:7") == ("cuda:7" if torch.cuda.device_count() > 7 else "auto")


def test_the_device_is_not_part_of_the_checkpoint_fingerprint(small, tmp_path):
    # Setup: a finished fit's checkpoint, trained with device="cpu"
    first = TabularLM(_tiny("cpu")).fit(small, progress=False, checkpoint=tmp_path / "ck")
    # Run: the same fit with device="auto" over the same checkpoint: another setting would be a ModelDirError
    again = TabularLM(_tiny("auto")).fit(small, progress=False, checkpoint=tmp_path / "ck")
    # Assert: it continued that fit (nothing left to train) and ends with its weights
    assert again.log.history == first.log.history
    for (name, wa), wb in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(wa, wb), name


# ------------------------------------------------------------------ the CUDA helpers, by hand
@pytest.mark.parametrize("device, bf16, expected", [
    pytest.param("cuda", True, torch.bfloat16, id="gpu-with-bf16"),
    pytest.param("cuda:1", True, torch.bfloat16, id="second-gpu"),
    pytest.param("cuda", False, None, id="gpu-without-bf16"),
    pytest.param("cpu", True, None, id="cpu-never"),
])
def test_autocast_dtype(device, bf16, expected):
    assert autocast_dtype(torch.device(device), bf16_supported=bf16) is expected


def test_training_autocast_on_the_cpu_changes_nothing():
    x = torch.randn(4, 4)
    with training_autocast(torch.device("cpu")):
        inside = x @ x
    assert inside.dtype == torch.float32 and torch.equal(inside, x @ x)


@pytest.mark.parametrize("free, per_row, expected", [
    # 0.5 x 1 GiB / 92,160 B (a 4 x 192 model's 30-token cache in bf16) = 5,825.4 -> 5,824 (a multiple of 64)
    pytest.param(2**30, 92_160, 5_824, id="one-free-gib"),
    pytest.param(100 * 2**30, 92_160, 65_536, id="an-idle-h200-hits-the-cap"),
    pytest.param(10_000, 92_160, 64, id="a-full-gpu-still-gets-the-floor"),
    pytest.param(2**20 * 64, 2**20, 64, id="below-the-floor"),  # 0.5 x 64 MiB / 1 MiB = 32 -> floor 64
    pytest.param(2**20 * 256, 2**20, 128, id="128-rows"),
])
def test_gpu_batch_rows_by_hand(free, per_row, expected):
    assert gpu_batch_rows(free, per_row) == expected


def test_cpu_batch_size_is_unchanged(cpu_lm):
    dec = Decoder(cpu_lm.model, "float32", torch.device("cpu"))
    per_row = 2 * 1 * 30 * 16 * 4  # layers x length x width x float32, keys and values
    assert dec.batch_for(30) == min(4096, 256 * 2**20 // per_row)


def test_sampling_generator_on_the_cpu_is_torchs_default_stream():
    g = sampling_generator(torch.device("cpu"), 7)
    assert g.device == torch.device("cpu")
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=torch.Generator().manual_seed(7)))
