"""MOSTLY AI's open engine (mostlyai-engine, model "TabularARGN") as a benchmark peer.

Runs inside its own venv, benchmarks/.venv-argn (``bash benchmarks/setup_tabularargn.sh``):
the engine pins its own transformers/accelerate/opacus stack. Called by `benchmarks.peers`
with ``--method tabularargn``.

The engine's sklearn-like class is used with its defaults (model ``MOSTLY_AI/Medium``,
``max_epochs=100``, ``max_training_time=14400`` minutes, batch size from its own heuristic,
early stopping on the validation loss, value protection on); ``cfg`` may override any
``TabularARGN(...)`` argument (e.g. ``--set tabularargn.max_training_time=4.5``, minutes).
Its workspace (split, stats, encoded data, checkpoints, generated parquet) and the
``datasets`` cache it fills live in one temp dir that is removed once the result is
dropped or the process exits.
"""
from __future__ import annotations

import inspect
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import FitResult

# TabularARGN(...) arguments that are not settings (data, paths, logging).
_NOT_SETTINGS = {"ctx_data", "workspace_dir", "verbose", "random_state"}


def run_tabularargn(train: pd.DataFrame, seed: int, cfg: dict[str, Any], meta: dict) -> FitResult:
    cfg = dict(cfg)
    workdir = Path(tempfile.mkdtemp(prefix="argn-"))
    # `datasets` (used by the engine's training loop) caches arrow files under HF_HOME;
    # keep them with the workspace.  Must be set before `datasets` is first imported.
    os.environ["HF_DATASETS_CACHE"] = str(workdir / "hf-datasets")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    res = FitResult()
    cleanup = weakref.finalize(res, shutil.rmtree, str(workdir), True)  # also runs at exit
    try:
        _fit(train, seed, cfg, workdir, res)
    except BaseException:
        cleanup()
        raise
    return res


def _fit(train: pd.DataFrame, seed: int, cfg: dict[str, Any], workdir: Path, res: FitResult) -> None:
    import importlib.metadata as md  # noqa: PLC0415

    import torch  # noqa: PLC0415
    from mostlyai import engine  # noqa: PLC0415

    if not hasattr(engine, "TabularARGN"):
        raise RuntimeError(f"mostlyai-engine {md.version('mostlyai-engine')} has no TabularARGN class; "
                           "run `bash benchmarks/setup_tabularargn.sh` (installs 2.7.x)")
    cls = engine.TabularARGN
    sig = inspect.signature(cls.__init__).parameters
    unknown = sorted(k for k in cfg if k not in sig or k in _NOT_SETTINGS)
    if unknown:
        raise RuntimeError(f"TabularARGN has no setting(s) {unknown}; settings: "
                           f"{sorted(k for k in sig if k not in _NOT_SETTINGS | {'self'})}")
    ws = workdir / "workspace"
    model = cls(**cfg, random_state=seed, workspace_dir=str(ws), verbose=0)

    t0 = time.perf_counter()
    model.fit(train)
    res.extra["fit_s"] = time.perf_counter() - t0

    settings = {k: v for k, v in model.get_params(deep=False).items() if k not in _NOT_SETTINGS}
    res.extra.update({
        "mostlyai_engine_version": md.version("mostlyai-engine"),
        "engine_api": "mostlyai.engine.TabularARGN (fit / sample)",
        "engine_settings": settings,  # every TabularARGN argument, defaults included
        "cfg_overrides": cfg,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
    })
    res.extra.update(_training_record(ws, settings))
    weights = ws / "ModelStore" / "model-data" / "model-weights.pt"
    if weights.exists():
        state = torch.load(weights, map_location="cpu", weights_only=True)
        res.params = int(sum(t.numel() for t in state.values() if hasattr(t, "numel")))
        res.params_note = "whole TabularARGN (tensors in its saved model-weights.pt)"
    else:
        res.params_note = "no model-weights.pt in the engine's workspace"

    def _sample(n: int, s: int) -> pd.DataFrame:
        engine.set_random_state(s)
        out = model.sample(n_samples=n)
        out = out[[c for c in train.columns if c in out.columns]
                  + [c for c in out.columns if c not in train.columns]]
        return _match_dtypes(out, train)

    res.sample = _sample


def _match_dtypes(out: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """The engine returns nullable dtypes (Int64, string); cast to the training table's where lossless."""
    out = out.copy()
    for col in out.columns.intersection(train.columns):
        want = train[col].dtype
        if out[col].dtype == want or (out[col].isna().any() and want.kind in "iub"):
            continue
        try:
            out[col] = out[col].astype(want)
        except (TypeError, ValueError):
            pass
    return out


def _training_record(ws: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """What the engine's ModelStore says about the run: model units, epochs, losses, why it stopped."""
    import json  # noqa: PLC0415

    out: dict[str, Any] = {}
    mdir = ws / "ModelStore" / "model-data"
    cfg_path = mdir / "model-configs.json"
    if cfg_path.exists():
        mc = json.loads(cfg_path.read_text())
        out["model_id"] = mc.get("model_id")
        out["enable_flexible_generation"] = mc.get("enable_flexible_generation")
    prog_path = mdir / "progress-messages.csv"
    if prog_path.exists():
        prog = pd.read_csv(prog_path)
        if len(prog):
            last = prog.iloc[-1]
            epochs = float(last.get("epoch", float("nan")))
            train_s = float(last.get("total_time", float("nan")))
            out.update({
                "epochs_done": epochs,
                "train_steps": int(last.get("steps", 0)),
                "train_loop_s": train_s,
                "last_trn_loss": _num(last.get("trn_loss")),
                "last_val_loss": _num(last.get("val_loss")),
                "best_val_loss": _num(prog["val_loss"].min()) if "val_loss" in prog else None,
            })
            max_epochs = settings.get("max_epochs") or 100.0
            max_minutes = settings.get("max_training_time") or 14400.0
            if epochs >= max_epochs - 1e-9:
                out["stopped_by"] = "max_epochs"
            elif train_s >= 60.0 * max_minutes:
                out["stopped_by"] = "max_training_time"
            else:
                out["stopped_by"] = "early_stopping"
    return out


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f
