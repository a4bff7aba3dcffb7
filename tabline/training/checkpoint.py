"""The training state of `TabularLM.fit`, saved after every epoch so that a killed fit resumes where it was.

A checkpoint is a directory written atomically (all or nothing) holding nothing that can execute code:

    state.json            epoch, step, learning-rate scale, early-stopping counters, the training log, the
                          seconds spent so far, the NumPy generator's state and a fingerprint of data + settings
    weights.safetensors   the model's current weights
    best.safetensors      the weights of the best epoch so far (early stopping restores them)
    optimizer.safetensors AdamW's moments and step counts, plus torch's RNG state

Resuming replays `fit`'s deterministic set-up (tokenizer, split, initialisation) and then loads this state,
so the epochs after a resume compute exactly what an uninterrupted fit would have computed.

Example:
    >>> import tempfile, torch
    >>> model = torch.nn.Linear(2, 1)
    >>> opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    >>> model(torch.ones(1, 2)).sum().backward(); opt.step()
    >>> state = TrainState(epoch=1, step=1, fingerprint="abc")
    >>> d = tempfile.mkdtemp() + "/ckpt"
    >>> save_checkpoint(d, state, model, opt, best=None, rng=np.random.default_rng(0))
    >>> again = torch.nn.Linear(2, 1); opt2 = torch.optim.AdamW(again.parameters(), lr=0.1)
    >>> loaded = load_checkpoint(d, again, opt2, fingerprint="abc")
    >>> loaded.state.epoch, bool(torch.equal(again.weight, model.weight))
    (1, True)
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tabline.errors import ModelDirError
from tabline.io import atomic_directory

FORMAT = 1


class TrainState(BaseModel):
    """Counters of the training loop after a finished epoch (``stopped_by`` set: training is over)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")  # best loss starts at inf

    format: int = FORMAT
    fingerprint: str
    epoch: int = 0
    step: int = 0
    lr_scale: float = 1.0
    bad_epochs: int = 0
    seconds: float = 0.0
    threads: int | None = None  # the fit's thread count: a resume reuses it, so it computes as the fit did
    anneal_start: int | None = None  # optimizer step where the learning-rate anneal begins
    anneal_steps: int = 0
    last_epoch: int | None = None  # set when early stopping moved the end (to anneal first)
    cause: str | None = None  # why training is ending: early_stopping, overfit_guard or time_budget
    log: dict[str, Any] = {}
    rng: dict[str, Any] = {}


@dataclass
class Loaded:
    state: TrainState
    best: dict[str, torch.Tensor] | None
    rng: np.random.Generator


def fingerprint(df: pd.DataFrame, *parts: str) -> str:
    """A digest of the table's values and any settings text: a checkpoint only resumes the same fit.

    Example:
        >>> a = fingerprint(pd.DataFrame({"x": [1, 2]}), "cfg")
        >>> a == fingerprint(pd.DataFrame({"x": [1, 2]}), "cfg"), a == fingerprint(pd.DataFrame({"x": [1, 3]}), "cfg")
        (True, False)
    """
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    for p in parts:
        h.update(p.encode())
    return h.hexdigest()[:32]


def _plain(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (GPT-2 ties its input and output embeddings): copy each,
    # onto the CPU, so a fit trained on a GPU resumes (and its weights load) on a machine without one.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_checkpoint(directory: str | os.PathLike, state: TrainState, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, *, best: dict[str, torch.Tensor] | None,
                    rng: np.random.Generator) -> None:
    """Write the whole training state to ``directory`` atomically (a kill leaves the previous one intact)."""
    state = state.model_copy(update={"rng": _jsonable(rng.bit_generator.state)})
    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"torch_rng": torch.get_rng_state()}
    for i, slots in opt["state"].items():
        for name, value in slots.items():
            tensors[f"state.{i}.{name}"] = value if torch.is_tensor(value) else torch.tensor(value)
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    with atomic_directory(directory) as tmp:
        save_file(_plain(model.state_dict()), str(tmp / "weights.safetensors"))
        if best is not None:
            save_file(_plain(best), str(tmp / "best.safetensors"))
        save_file(_plain(tensors), str(tmp / "optimizer.safetensors"), metadata={"param_groups": json.dumps(groups)})
        (tmp / "state.json").write_text(state.model_dump_json(indent=1), encoding="utf-8")


def load_checkpoint(directory: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                    fingerprint: str) -> Loaded | None:
    """Restore ``model`` and ``optimizer`` from ``directory``; None when there is no checkpoint yet.

    A checkpoint made for other data or settings is an error, not silently ignored: resuming it would
    continue a different fit."""
    d = Path(directory)
    if not (d / "state.json").exists():
        return None
    try:
        state = TrainState.model_validate_json((d / "state.json").read_text(encoding="utf-8"))
        if state.format != FORMAT:
            raise ModelDirError(f"{d} holds a training checkpoint of format {state.format}; this tabline reads {FORMAT}")
        if state.fingerprint != fingerprint:
            raise ModelDirError(f"the training checkpoint in {d} was made for other data or settings; "
                                f"delete {d} to start the fit over")
        model.load_state_dict(load_file(str(d / "weights.safetensors")))
        tensors = load_file(str(d / "optimizer.safetensors"))
        with safe_open(str(d / "optimizer.safetensors"), "pt") as fh:
            groups = json.loads(fh.metadata()["param_groups"])
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("state."):
                _, i, name = key.split(".", 2)
                slots.setdefault(int(i), {})[name] = value
        optimizer.load_state_dict({"state": slots, "param_groups": groups})
        torch.set_rng_state(tensors["torch_rng"])
        best = load_file(str(d / "best.safetensors")) if (d / "best.safetensors").exists() else None
    except ModelDirError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelDirError(f"the training checkpoint in {d} is damaged ({exc}); delete it to start the fit over") from None
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng
    return Loaded(state, best, rng)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return int(value) if isinstance(value, np.integer) else value
