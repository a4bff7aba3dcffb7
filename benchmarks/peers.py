"""One synthesizer run in its own process: fit on train.csv, sample, write CSV + timing JSON.

The runner (benchmarks/run.py) starts this module once per (dataset, method, seed) so
peak RSS is that of one method only:

    python -m benchmarks.peers --method tvae --split-dir benchmarks/out/Benefits \
        --seed 0 --out-csv .../tvae-s0.csv --out-json .../tvae-s0.json --config '{"epochs": 1}'

REaLTabFormer runs the same module under ``benchmarks/.venv-rtf/bin/python`` and
TabularARGN (mostlyai-engine) under ``benchmarks/.venv-argn/bin/python``; so
this file imports only the standard library, numpy and pandas at module level and each
method imports its own library lazily.

Timing JSON fields: fit_s (wall time of the fit call, incl. the library's own
preprocessing), sample_s / sample_rows / sample_rows_per_s (one timed call producing
``n = len(holdout)`` rows), peak_rss_mb (``ru_maxrss`` of this process at the end:
imports + data + fit + sample), params (trainable parameters of the network that
generates rows; see ``params_note``), config (every setting used), versions.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from benchmarks.peer_realtabformer import RTF_DEFAULT_GPT2, run_realtabformer  # noqa: F401 - re-exported
from benchmarks.peer_tabularargn import run_tabularargn
from benchmarks._common import (
    FitResult,
    atomic_write_csv,
    atomic_write_json,
    current_rss_mb,
    peak_rss_mb,
    read_table,
    seed_everything,
)

# ----------------------------------------------------------------- settings
# Full-run settings, chosen so each fit stays within ~5 min on 10k rows with 2 CPU cores
# (see benchmarks/README.md for the measurements behind them).  The runner records the
# exact config used in every timing JSON and in RESULTS.md.
DEFAULT_CONFIGS: dict[str, dict[str, Any]] = {
    "tabline": {},  # TabularLMConfig defaults: tabline sizes its own time budget from the table
    "gaussian_copula": {},  # sdv defaults
    # Calibrated on DoctorContacts (10k rows, 15 columns), 1 thread on a shared 2-core box:
    # CTGAN ~37 s preprocessing + ~2.5 s/epoch, TVAE ~37 s + ~0.8 s/epoch.
    "ctgan": {"epochs": 100, "batch_size": 500},   # sdv default 300
    "tvae": {"epochs": 250, "batch_size": 500},    # sdv default 300
    "realtabformer": {
        # Small GPT-2, the size tabline picks for 10k rows (4 layers x 128): ~0.8-0.9M params.
        # RTF tokenizes numbers digit by digit (DoctorContacts: 62 tokens/row), so it is
        # compute-bound on CPU: ~130 s/epoch at n_embd 128 on 1 thread (290 s at n_embd 192).
        "n_layer": 4, "n_embd": 128, "n_head": 4,
        # ~1 s/step (batch 64) on 1 thread of a busy 2-core box -> ~155 s/epoch; 2 threads on
        # an idle box are faster.  4 epochs, with a hard stop of the training loop at 270 s.
        "epochs": 4, "batch_size": 64, "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3,  # HF default 5e-5 is meant for long runs; we get a few epochs
        "train_time_budget_s": 270,  # stop the training loop after this long (fit <= ~5 min)
        "n_critic": 0,  # plain training for `epochs` (no sensitivity-based early stopping)
        "gen_batch": 512,
        "numeric_nparts": 1, "numeric_precision": 4, "numeric_max_len": 10,
    },
    # mostlyai-engine's TabularARGN with its defaults: model MOSTLY_AI/Medium, max_epochs 100,
    # max_training_time 14400 min, early stopping on the validation loss, its own batch size.
    # Any TabularARGN(...) argument can be set, e.g. --set tabularargn.max_training_time=4.5 (minutes).
    "tabularargn": {},
}

# --quick: trial settings (tiny, seconds).
QUICK_CONFIGS: dict[str, dict[str, Any]] = {
    "tabline": {"__quick__": True},
    "gaussian_copula": {},
    "ctgan": {"epochs": 1, "batch_size": 100},
    "tvae": {"epochs": 1, "batch_size": 100},
    "realtabformer": {
        "n_layer": 2, "n_embd": 64, "n_head": 2,
        "epochs": 1, "batch_size": 32, "gradient_accumulation_steps": 1,
        "learning_rate": 1e-3, "train_time_budget_s": 60, "n_critic": 0, "gen_batch": 256,
        "numeric_nparts": 1, "numeric_precision": 4, "numeric_max_len": 10,
    },
    "tabularargn": {"max_epochs": 1},
}

# Epochs of a tabline fit log kept in a run's JSON (3 numbers each); longer histories are only counted.
MAX_HISTORY_KEPT = 100

# REaLTabFormer's own default for tabular data: GPT2Config(n_layer=6), i.e. a
# DistilGPT-2-shaped model (n_embd 768, n_head 12, n_positions 1024).

METHODS = tuple(DEFAULT_CONFIGS)
PEER_LABELS = {
    "tabline": "tabline TabularLM",
    "gaussian_copula": "SDV GaussianCopula",
    "ctgan": "SDV CTGAN",
    "tvae": "SDV TVAE",
    "realtabformer": "REaLTabFormer (small GPT-2)",
    "tabularargn": "TabularARGN (mostlyai-engine)",
}


# ------------------------------------------------------------------ methods
def _count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def run_tabline(train: pd.DataFrame, seed: int, cfg: dict[str, Any], meta: dict) -> FitResult:
    try:
        from tabline.training import TabularLM, TabularLMConfig  # noqa: PLC0415
    except Exception as exc:  # not written yet, or broken
        raise RuntimeError(
            f"tabline.training.TabularLM is not importable yet ({type(exc).__name__}: {exc})"
        ) from exc
    cfg = dict(cfg)
    quick = cfg.pop("__quick__", False)
    fields = _config_fields(TabularLMConfig)
    if quick:
        cfg = {**_tabline_quick_overrides(fields), **cfg}
    unknown = [k for k in cfg if fields and k not in fields]
    if unknown:
        raise RuntimeError(f"TabularLMConfig has no field(s) {unknown}; fields: {sorted(fields)}")
    if "threads" in fields and "threads" not in cfg and meta["_threads"]:
        cfg["threads"] = meta["_threads"]
    config = TabularLMConfig(seed=seed, **cfg)
    res = FitResult()
    lm = TabularLM(config)
    try:
        fit_kw = {"progress": False} if "progress" in inspect.signature(lm.fit).parameters else {}
    except (TypeError, ValueError):
        fit_kw = {}
    t0 = time.perf_counter()
    lm = lm.fit(train, **fit_kw)
    res.extra["fit_s"] = time.perf_counter() - t0
    log = getattr(lm, "log", None)
    if log is not None and hasattr(log, "model_dump"):
        # Every field the log has (it grows: tokens/s, budget, anneal, ...); the per-epoch history only while it
        # is short, so that a run's JSON stays small enough to commit.
        dumped = log.model_dump()
        history = dumped.pop("history", None) or []
        res.extra["training_log"] = dumped
        if len(history) <= MAX_HISTORY_KEPT:
            res.extra["training_log"]["history"] = history
        else:
            res.extra["training_log"]["history_len"] = len(history)
    try:
        res.params = int(lm.num_parameters())
    except Exception as exc:  # pragma: no cover
        res.params_note = f"num_parameters() failed: {exc}"
    res.params_note = res.params_note or "whole model (TabularLM.num_parameters())"
    res.extra["resolved_config"] = _dump_config(config)
    try:  # what the speed benchmark needs for tokens/s and the share of the CPU's matmul rate
        res.extra["row_length"] = int(lm.tokenizer.row_length())
        # positions the model runs per row: fewer than the tokens when markers are folded (TabularGPT)
        res.extra["model_positions"] = int(lm.model.folded_length(res.extra["row_length"]))
        res.extra["non_embedding_params"] = int(sum(
            p.numel() for n, p in lm.model.named_parameters() if "wte" not in n and "wpe" not in n))
        res.extra["n_layer"], res.extra["n_embd"] = int(lm.model.config.n_layer), int(lm.model.config.n_embd)
    except AttributeError:
        pass
    def _sample(n: int, s: int) -> pd.DataFrame:
        frame = lm.sample(n, seed=s)
        report = getattr(lm, "last_sample", None)  # the copy guard's counts (issue 12), where tabline has one
        if report is not None:
            res.extra["copy_guard"] = dataclasses.asdict(report)
        return frame

    res.sample = _sample
    res.model = lm
    return res


def _config_fields(cls) -> set[str]:
    if hasattr(cls, "model_fields"):
        return set(cls.model_fields)
    if hasattr(cls, "__dataclass_fields__"):
        return set(cls.__dataclass_fields__)
    return set()


def _tabline_quick_overrides(fields: set[str]) -> dict[str, Any]:
    """Tiny settings for --quick, using whichever knob names TabularLMConfig has."""
    wanted = {
        "epochs": 1, "max_epochs": 1, "n_epochs": 1, "num_epochs": 1,
        "max_steps": 50, "time_budget_s": 30, "max_time_s": 30,
    }
    return {k: v for k, v in wanted.items() if k in fields}


def _dump_config(config) -> Any:
    for attr in ("model_dump", "dict"):
        if hasattr(config, attr):
            try:
                return json.loads(json.dumps(getattr(config, attr)(), default=str))
            except Exception:
                pass
    if hasattr(config, "__dataclass_fields__"):
        import dataclasses

        return json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return str(config)


def _sdv_metadata(train: pd.DataFrame, dtypes: dict[str, str]):
    """Explicit single-table metadata from our dtype spec (no name-based PII guessing)."""
    from sdv.metadata import Metadata  # noqa: PLC0415

    cols = {}
    for col, kind in dtypes.items():
        if kind == "int":
            cols[col] = {"sdtype": "numerical", "computer_representation": "Int64"}
        elif kind == "float":
            cols[col] = {"sdtype": "numerical", "computer_representation": "Float"}
        elif kind == "bool":
            cols[col] = {"sdtype": "boolean"}
        else:
            cols[col] = {"sdtype": "categorical"}
    md = Metadata.load_from_dict(
        {"METADATA_SPEC_VERSION": "V1", "tables": {"table": {"columns": cols}}}
    )
    md.validate()
    md.validate_table(train, "table")
    return md


def run_sdv(method: str, train: pd.DataFrame, seed: int, cfg: dict[str, Any], meta: dict) -> FitResult:
    import warnings

    import sdv  # noqa: PLC0415
    from sdv.single_table import (  # noqa: PLC0415
        CTGANSynthesizer,
        GaussianCopulaSynthesizer,
        TVAESynthesizer,
    )

    warnings.filterwarnings("ignore", category=FutureWarning)
    md = _sdv_metadata(train, meta["dtypes"])
    cls = {"gaussian_copula": GaussianCopulaSynthesizer, "ctgan": CTGANSynthesizer,
           "tvae": TVAESynthesizer}[method]
    kwargs = dict(cfg)
    if method in ("ctgan", "tvae"):
        kwargs["enable_gpu"] = False
    synth = cls(md, **kwargs)
    res = FitResult()
    t0 = time.perf_counter()
    # sdv 2.x: fit() takes {table_name: DataFrame}; 1.x took the DataFrame itself.
    sdv_major = int(sdv.__version__.split(".")[0])
    synth.fit({"table": train} if sdv_major >= 2 else train)
    res.extra["fit_s"] = time.perf_counter() - t0
    model = getattr(synth, "_model", None)
    if method == "ctgan" and model is not None and getattr(model, "_generator", None) is not None:
        res.params = _count(model._generator)
        res.params_note = "generator only (the discriminator is discarded after fit)"
    elif method == "tvae" and model is not None and getattr(model, "decoder", None) is not None:
        res.params = _count(model.decoder)
        res.params_note = "decoder only (the encoder is discarded after fit)"
    else:
        res.params_note = "not a neural model"
    res.extra["sdv_version"] = sdv.__version__
    res.extra["resolved_config"] = {k: v for k, v in synth.get_parameters().items()
                                    if k != "metadata"}

    def _sample(n: int, s: int) -> pd.DataFrame:
        synth.reset_sampling()
        synth._set_random_state(s)  # private, but the only seed hook sdv 2.x offers
        out = synth.sample(num_rows=n)
        if isinstance(out, dict):  # sdv 2.x returns {table_name: DataFrame}
            out = next(iter(out.values()))
        return out

    res.sample = _sample
    return res


RUNNERS: dict[str, Callable[..., FitResult]] = {
    "tabline": run_tabline,
    "gaussian_copula": lambda *a: run_sdv("gaussian_copula", *a),
    "ctgan": lambda *a: run_sdv("ctgan", *a),
    "tvae": lambda *a: run_sdv("tvae", *a),
    "realtabformer": run_realtabformer,
    "tabularargn": run_tabularargn,
}


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", required=True, choices=METHODS)
    ap.add_argument("--split-dir", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-csv", required=True, type=Path)
    ap.add_argument("--out-json", required=True, type=Path)
    ap.add_argument("--config", default="{}", help="JSON settings for the method")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads; 0 = the method's own default")
    ap.add_argument("--n", type=int, default=None, help="rows to sample (default: len(holdout))")
    args = ap.parse_args(argv)

    cfg = json.loads(args.config)
    meta = json.loads((args.split_dir / "split.json").read_text())
    meta["_threads"] = args.threads
    record: dict[str, Any] = {
        "method": args.method,
        "dataset": meta["dataset"],
        "seed": args.seed,
        "quick": meta.get("quick", False),
        "config": cfg,
        "threads": args.threads,
        "n_train": meta["n_train"],
        "python": platform.python_version(),
        "executable": sys.executable,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    try:
        try:
            import torch

            if args.threads:
                torch.set_num_threads(args.threads)
            record["torch"] = torch.__version__
        except ImportError:
            pass
        record["pandas"] = pd.__version__
        train = read_table(args.split_dir / "train.csv", meta["dtypes"])
        n = int(args.n or meta["n_holdout"])
        seed_everything(args.seed)
        record["rss_before_fit_mb"] = current_rss_mb()
        res = RUNNERS[args.method](train, args.seed, cfg, meta)
        record["fit_s"] = res.extra.pop("fit_s")
        record["params"] = res.params
        record["params_note"] = res.params_note
        record["extra"] = res.extra
        t0 = time.perf_counter()
        synth = res.sample(n, args.seed)
        sample_s = time.perf_counter() - t0
        if not isinstance(synth, pd.DataFrame):
            raise TypeError(f"sample() returned {type(synth).__name__}, not a DataFrame")
        record.update({
            "sample_s": sample_s,
            "sample_rows": int(len(synth)),
            "sample_rows_per_s": len(synth) / sample_s if sample_s > 0 else None,
            "columns_match": list(synth.columns) == list(train.columns),
        })
        synth = synth[[c for c in train.columns if c in synth.columns]]
        atomic_write_csv(args.out_csv, synth)
        record["peak_rss_mb"] = peak_rss_mb()
        record["status"] = "ok"
        rc = 0
    except Exception as exc:
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        record["peak_rss_mb"] = peak_rss_mb()
        print(record["traceback"], file=sys.stderr)
        rc = 1
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(args.out_json, record)
    return rc


if __name__ == "__main__":
    sys.exit(main())
