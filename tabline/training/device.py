"""Where the embedded TabularLM computes: the ``device`` setting, bf16 autocast on CUDA, GPU batch sizes.

``TabularLMConfig(device=...)`` takes ``"auto"`` (CUDA when torch sees a GPU, else the CPU), ``"cpu"``,
``"cuda"`` or ``"cuda:N"``. A device asked for but absent is an `InvalidArgumentError` raised before any
training starts, naming the value and what this machine has.

What the device changes, and why each piece lives here rather than in `tabline.training.lm`:
- training moves the model and its batches to the device and, on a GPU that multiplies bfloat16 natively,
  runs the forward pass under ``torch.autocast("cuda", dtype=torch.bfloat16)`` (weights, gradients and
  AdamW's moments stay float32: autocast only lowers the matmuls' inputs). On the CPU nothing changes:
  bf16 training measured slower than float32 there (docs/tabular-lm.md), so the CPU path gets no context;
- sampling copies the weights to the device (`Decoder`), draws with a generator living there, and sizes
  its batch from the GPU's free memory (`gpu_batch_rows`) instead of the CPU's 256 MB cache budget.

A fitted model rests on the CPU (saving, `logprob` and TabGRAA read it there); the device is a setting of
the machine at hand, not of the model, so it is left out of a fit's checkpoint fingerprint and a model
trained on a GPU loads and samples on a CPU-only machine (`device_for_loading`).

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto", cuda_devices=0)
    device(type='cpu')
    >>> resolve_device("cuda:1", cuda_devices=2)
    device(type='cuda', index=1)
    >>> autocast_dtype(torch.device("cuda"), bf16_supported=True)
    torch.bfloat16
    >>> gpu_batch_rows(free_bytes=8 * 2**30, per_row_bytes=2**20)
    4096
"""
from __future__ import annotations

import contextlib
import re
from typing import Annotated, ContextManager

import torch
from pydantic import AfterValidator

from tabline.errors import InvalidArgumentError

_SPEC = re.compile(r"auto|cpu|cuda(:\d+)?")
GPU_MOST_ROWS = 65_536  # beyond this the decoding steps are long enough that more rows buy nothing


def check_device_spec(spec: str) -> str:
    """The ``device`` setting's format, checked when the config is built (pydantic turns the ValueError into
    a validation error naming the field).

    Example:
        >>> check_device_spec("cuda:0")
        'cuda:0'
        >>> check_device_spec("gpu")
        Traceback (most recent call last):
        ...
        ValueError: device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU number), got 'gpu'
    """
    if not isinstance(spec, str) or not _SPEC.fullmatch(spec):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU number), got {spec!r}")
    return spec


DeviceSpec = Annotated[str, AfterValidator(check_device_spec)]


def _cuda_devices() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(spec: str, *, cuda_devices: int | None = None) -> torch.device:
    """The torch device for a ``device`` setting on this machine; ``cuda_devices`` (how many GPUs torch sees)
    is measured when not given, and given only by tests.

    Example:
        >>> resolve_device("cuda", cuda_devices=0)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        tabline.errors.InvalidArgumentError: device 'cuda' was asked for, but torch sees no CUDA GPU here ...
    """
    try:
        check_device_spec(spec)
    except ValueError as exc:
        raise InvalidArgumentError(str(exc)) from None
    n = _cuda_devices() if cuda_devices is None else cuda_devices
    if spec == "auto":
        return torch.device("cuda" if n else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if n == 0:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise InvalidArgumentError(
            f"device {spec!r} was asked for, but torch sees no CUDA GPU here (torch {torch.__version__}, {build}); "
            "available: 'cpu' (or 'auto', which picks it)")
    if index >= n:
        have = ", ".join(f"'cuda:{i}'" for i in range(n))
        raise InvalidArgumentError(f"device {spec!r} was asked for, but this machine has {n} CUDA GPU(s): "
                                   f"{have}; also 'cpu' and 'auto'")
    return torch.device(spec)


def device_for_loading(saved: str) -> str:
    """The ``device`` a loaded model keeps: its saved setting where this machine has that device, else "auto".

    A model trained with ``device="cuda"`` must still load and sample where there is no GPU: the saved
    setting said where it was trained, not where it must run.

    Example:
        >>> device_for_loading("cpu")
        'cpu'
    """
    try:
        resolve_device(saved)
    except InvalidArgumentError:
        return "auto"
    return saved


def autocast_dtype(device: torch.device, *, bf16_supported: bool | None = None) -> torch.dtype | None:
    """The dtype training's forward pass autocasts to on ``device``: bfloat16 on a CUDA GPU that supports it,
    None (plain float32) otherwise. ``bf16_supported`` is asked of torch when not given.

    bfloat16 rather than float16: it keeps float32's exponent range, so no loss scaling is needed.
    Not on the CPU: there bf16 training measured slower than float32 at these widths (docs/tabular-lm.md).

    Example:
        >>> autocast_dtype(torch.device("cpu"), bf16_supported=True) is None
        True
        >>> autocast_dtype(torch.device("cuda"), bf16_supported=False) is None
        True
    """
    if device.type != "cuda":
        return None
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if bf16_supported else None


def training_autocast(device: torch.device) -> ContextManager:
    """The context for a forward pass on ``device``: bf16 autocast on a CUDA GPU that supports it, else
    nothing at all (the CPU computes exactly as it did before devices existed).

    Example:
        >>> with training_autocast(torch.device("cpu")):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.float32
    """
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def gpu_batch_rows(free_bytes: int, per_row_bytes: int, *, share: float = 0.5, most: int = GPU_MOST_ROWS,
                   least: int = 64) -> int:
    """Rows decoded together on a GPU: as many as fit ``share`` of its free memory at ``per_row_bytes`` each
    (the key/value cache; the per-step activations are a few positions per row against the cache's whole
    row), between ``least`` and ``most``, rounded down to a multiple of 64.

    Example:
        >>> gpu_batch_rows(free_bytes=100 * 2**30, per_row_bytes=92_160)  # an idle H200, a 4 x 192 model
        65536
        >>> gpu_batch_rows(free_bytes=2**30, per_row_bytes=92_160)
        5824
        >>> gpu_batch_rows(free_bytes=0, per_row_bytes=92_160)
        64
    """
    rows = int(free_bytes * share) // max(1, per_row_bytes)
    return max(least, min(most, rows // 64 * 64))


def sampling_generator(device: torch.device, seed: int) -> torch.Generator:
    """A torch generator on ``device`` seeded with ``seed``: sampling draws where its probabilities are.

    The same seed gives the same rows on the same kind of device; a GPU's stream differs from the CPU's.

    Example:
        >>> g = sampling_generator(torch.device("cpu"), 3)
        >>> bool(torch.equal(torch.rand(2, generator=g), torch.rand(2, generator=torch.Generator().manual_seed(3))))
        True
    """
    return torch.Generator(device=device).manual_seed(seed)
