"""The issue-12 fidelity benchmark: tabline at its defaults beside TabularARGN and SDV GaussianCopula on eight
tables, plus three extra measurements, each run's result and conditions in a small JSON, and a RESULTS.md
section rendered from those JSON files only.

Started from the fidelity runner, which owns the per-method child processes and the evaluation:

    python -m benchmarks.run --issue12                                   # everything, resumable (~85 min)
    python -m benchmarks.run --issue12 --steps matrix                    # the 8 tables only (~65-70 min)
    python -m benchmarks.run --issue12 --steps fit10k,memory100k,sampling_vs_rtf
    python -m benchmarks.run --issue12 --report-only                     # section from results/fidelity12/
    python -m benchmarks.run --issue12 --quick --datasets Benefits --max-train-rows 300   # smoke test

Steps: ``matrix`` (every table × method × seed: fit, sample len(holdout) rows, evaluate), ``fit10k`` (fit time and
training throughput on 10,000 rows of diamonds), ``memory100k`` (peak memory of a fit on, and of sampling,
100,000 rows), ``sampling_vs_rtf`` (sampling rows/s beside REaLTabFormer). The extras live in extras12.py, the
report in report12.py.

Full run: per-run JSON under benchmarks/results/fidelity12/ (committed), scratch files (splits, synthetic CSVs,
child logs, full eval reports) under benchmarks/out/fidelity12/. --quick writes both under
benchmarks/out/quick12/ (RESULTS.md too), so a trial never touches committed results.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_limits

from benchmarks._common import BENCH_DIR, ROOT, atomic_write_json, read_table
from benchmarks.datasets import ALL_DATASETS, PreparedSplit, prepare
from benchmarks.measures import (
    c2st_vs_holdout,
    invented_values,
    lowcard_numeric_sets,
    machine_load,
    matmul_gflops,
    training_tokens_per_s,
)
from benchmarks.peers import METHODS, PEER_LABELS
from tabline.threads import choose_threads

METHODS12 = ("tabline", "tabularargn", "gaussian_copula")
STEPS = ("matrix", "fit10k", "memory100k", "sampling_vs_rtf")
DEFAULT_MAX_TRAIN_ROWS = 4_000
OUT_DIR = BENCH_DIR / "out" / "fidelity12"
QUICK_OUT_DIR = BENCH_DIR / "out" / "quick12"
RESULTS_DIR = BENCH_DIR / "results" / "fidelity12"
BEGIN, END = "<!-- fidelity12:begin -->", "<!-- fidelity12:end -->"


@dataclass
class Paths:
    """Where one issue-12 run writes: scratch (out), committed per-run JSON (results), the report (results_md)."""
    out: Path
    results: Path
    results_md: Path

    def run_json(self, dataset: str, method: str, seed: int) -> Path:
        return self.results / dataset / f"{method}-s{seed}.json"

    def extra_json(self, name: str) -> Path:
        return self.results / "extra" / f"{name}.json"


def paths_for(args) -> Paths:
    out = args.out or (QUICK_OUT_DIR if args.quick else OUT_DIR)
    results = args.results_dir or (out / "results" if args.quick else RESULTS_DIR)
    results_md = args.results or (out / "RESULTS.md" if args.quick else BENCH_DIR / "RESULTS.md")
    return Paths(out, results, results_md)


def log(msg: str) -> None:
    print(f"[issue12 {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ conditions
def versions() -> dict[str, Any]:
    """Library versions of the runner's environment and the commit the code ran at (peers record their own)."""
    out: dict[str, Any] = {}
    for mod in ("tabline", "torch", "pandas", "numpy", "sklearn", "sdmetrics", "sdv"):
        try:
            out[mod] = getattr(__import__(mod), "__version__", "?")
        except Exception:
            out[mod] = None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10)
        out["git_commit"] = head.stdout.strip() or None
        out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        out["git_commit"] = None
    return out


def conditions(args, load_start: dict[str, Any], started: str, **extra: Any) -> dict[str, Any]:
    """What a run's numbers depend on besides the code: rows, caps, settings, threads, load, time, what else ran."""
    return {
        "threads_requested": args.threads or "method default",
        "load_start": load_start,
        "load_end": {"loadavg": [round(x, 2) for x in os.getloadavg()]},
        "note": args.note,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        **extra,
    }


def threads_used(rec: dict[str, Any]) -> int | None:
    """Threads the method's fit ran with, where it says: tabline's fit log, TabularARGN's torch count."""
    extra = rec.get("extra") or {}
    return (extra.get("training_log") or {}).get("threads") or extra.get("torch_threads")


# ------------------------------------------------------------------ the matrix
def measure(split: PreparedSplit, rec: dict[str, Any], ev: dict[str, Any]) -> dict[str, Any]:
    """The evaluation summary plus what issue 12 adds: C2ST against the holdout, invented values, and whether
    low-cardinality numeric columns hold train's exact value set."""
    train = read_table(split.train_csv, split.spec)
    holdout = read_table(split.holdout_csv, split.spec)
    synth = read_table(split.dir / f"{rec['method']}-s{rec['seed']}.csv", split.spec)
    out = {**ev.get("summary", {}), "utility_metric": ev.get("utility_metric"), "utility_task": ev.get("utility_task"),
           "eval_seconds": ev.get("seconds")}
    out.update(c2st_vs_holdout(train, holdout, synth))
    out.update(invented_values(train, holdout, synth))
    out["lowcard"] = lowcard_numeric_sets(train, synth)
    # The same check for the holdout, as its ceiling: a value seen once in train is often absent from as many
    # real rows too, so a miss there is not the generator's alone.
    out["lowcard_ceiling"] = lowcard_numeric_sets(train, holdout)
    return out


def score(split: PreparedSplit, rec: dict[str, Any], args) -> tuple[dict[str, Any] | None, str | None]:
    """(fidelity, None), or (None, why not): tabline.eval plus `measure`, on the cores other programs leave free."""
    from benchmarks.run import evaluate_run

    # sklearn's OpenMP threads spin-wait on a shared machine: the detector took 54 s instead of 3 s on 600 rows
    # when it asked for every core while another process kept them busy.
    eval_threads = choose_threads()
    try:
        with threadpool_limits(limits=eval_threads):
            ev = evaluate_run(split, rec, args)
            if not ev or ev.get("status") != "ok":
                return None, (ev or {}).get("error")
            return {**measure(split, rec, ev), "eval_threads": eval_threads}, None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def run_record(split: PreparedSplit, rec: dict[str, Any], cond: dict[str, Any], fidelity: dict | None) -> dict:
    """One run's committed JSON: the child's timing record (minus its traceback), fidelity, conditions."""
    extra = rec.get("extra") or {}
    out = {
        "benchmark": "issue12", "format": 1, "dataset": split.name, "method": rec["method"],
        "label": PEER_LABELS.get(rec["method"], rec["method"]), "seed": rec["seed"], "status": rec.get("status"),
        "error": rec.get("error"), "config": rec.get("config"),
        "fit_s": rec.get("fit_s"), "sample_rows": rec.get("sample_rows"), "sample_s": rec.get("sample_s"),
        "sample_rows_per_s": rec.get("sample_rows_per_s"), "peak_rss_mb": rec.get("peak_rss_mb"),
        "params": rec.get("params"), "params_note": rec.get("params_note"),
        "training_tokens_per_s": training_tokens_per_s(extra, split.n_train, rec["fit_s"])
        if rec.get("status") == "ok" and rec["method"] == "tabline" else None,
        "extra": extra, "fidelity": fidelity,
        "conditions": {
            "n_train": split.n_train, "n_holdout": split.n_holdout, "n_columns": len(split.spec),
            "n_train_uncapped": split.meta.get("n_train_uncapped"),
            "n_holdout_uncapped": split.meta.get("n_holdout_uncapped"),
            "max_train_rows": split.meta.get("max_train_rows"), "target": split.target, "task": split.task,
            "threads_used": threads_used(rec), "child_wall_s": rec.get("child_wall_s"),
            "child_versions": {k: rec.get(k) for k in ("python", "torch", "pandas")}, **cond,
        },
    }
    return out


def _complete(path: Path, cfg: dict, cap: int | None, quick: bool) -> bool:
    if not path.exists():
        return False
    r = json.loads(path.read_text())
    return (r.get("status") == "ok" and r.get("fidelity") is not None and r.get("config") == cfg
            and (r.get("conditions") or {}).get("max_train_rows") == cap
            and (r.get("conditions") or {}).get("quick") == quick)


def run_matrix(args, paths: Paths, datasets: list[str], methods: list[str], tab_seeds: list[int],
               peer_seeds: list[int], overrides: dict, version_info: dict) -> int:
    """Every (table, method, seed): fit + sample in a child, evaluate, measure, write the run's JSON."""
    from benchmarks.run import method_config, run_method

    n_fail = 0
    forced = argparse.Namespace(**{**vars(args), "force": True})  # a child always runs, so its load is measured
    for ds in datasets:
        split = prepare(ds, paths.out, quick=args.quick, max_rows=args.max_train_rows)
        log(f"== {ds}: train {split.n_train}, holdout {split.n_holdout}, {len(split.spec)} columns, "
            f"target {split.target} ({split.task})")
        for method in methods:
            cfg = method_config(method, args.quick, overrides)
            for seed in (tab_seeds if method == "tabline" else peer_seeds):
                path = paths.run_json(ds, method, seed)
                if not args.force and _complete(path, cfg, args.max_train_rows, args.quick):
                    log(f"{ds}/{method}/s{seed}: result exists, kept (--force reruns)")
                    continue
                load, started = machine_load(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
                rec = run_method(split, method, seed, cfg, forced, None)
                cond = conditions(args, load, started, versions=version_info)
                fid = None
                if rec.get("status") == "ok":
                    fid, error = score(split, rec, forced)
                    if fid is None:
                        rec = {**rec, "status": "error", "error": f"evaluation failed: {error}"}
                        log(f"{ds}/{method}/s{seed}: {rec['error']}")
                    else:
                        log(f"{ds}/{method}/s{seed}: quality {fid['quality']:.3f} [{fid['quality_ceiling']:.3f}], "
                            f"c2st train {fid['c2st_auc']:.3f} holdout {fid['c2st_vs_holdout']:.3f}, "
                            f"dcr {fid['dcr_share']:.3f}, invented cells {fid['invented_cells']}")
                if rec.get("status") != "ok":
                    n_fail += 1
                atomic_write_json(path, run_record(split, rec, cond, fid))
    return n_fail


# ------------------------------------------------------------------ entry point
def run_issue12(args, datasets: list[str], methods: list[str], tab_seeds: list[int], peer_seeds: list[int],
                overrides: dict, steps: list[str]) -> int:
    """Run the chosen steps, then render the RESULTS.md section from every stored JSON."""
    from benchmarks.extras12 import fit10k, memory100k, sampling_vs_rtf
    from benchmarks.report import machine_info
    from benchmarks.report12 import write_section

    paths = paths_for(args)
    if args.report_only:
        write_section(paths)
        log(f"wrote the issue-12 section of {paths.results_md} from {paths.results}")
        return 0
    unknown = [d for d in datasets if d not in ALL_DATASETS]
    if unknown:
        raise SystemExit(f"unknown tables {unknown}; choose from {list(ALL_DATASETS)}")
    paths.results.mkdir(parents=True, exist_ok=True)
    version_info = versions()
    # The machine as the matrix ran on it: written by an invocation that runs the matrix (or the first one), so
    # that a later call for one extra step does not replace it. Its matmul rate is measured before any fit, with
    # the load at that moment beside it (the rate halves when another process keeps the cores busy).
    machine_path = paths.results / "machine.json"
    if "matrix" in steps or not machine_path.exists():
        load = machine_load()
        machine = {**machine_info(), "matmul_gflops": matmul_gflops(), "load_at_matmul": load,
                   "note": args.note, "versions": version_info}
        atomic_write_json(machine_path, machine)
    else:
        machine = {**json.loads(machine_path.read_text()), "versions": version_info}
    n_fail = 0
    if "matrix" in steps:
        n_fail += run_matrix(args, paths, datasets, methods, tab_seeds, peer_seeds, overrides, version_info)
    extras = {"fit10k": fit10k, "memory100k": memory100k, "sampling_vs_rtf": sampling_vs_rtf}
    for step in steps:
        if step in extras:
            n_fail += extras[step](args, paths, machine, overrides)
    write_section(paths)
    log(f"wrote the issue-12 section of {paths.results_md}" + (f" ({n_fail} failure(s), see above)" if n_fail else ""))
    return 1 if n_fail else 0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The fidelity runner's options for issue 12 (the shared ones, --datasets, --seeds, --set, ..., are its own)."""
    g = ap.add_argument_group("issue 12 (with --issue12)")
    g.add_argument("--issue12", action="store_true",
                   help="run the issue-12 benchmark: 8 tables x (tabline seeds 0,1,2 + tabularargn + "
                        "gaussian_copula), the extra measurements, and its RESULTS.md section")
    g.add_argument("--steps", default=",".join(STEPS), help=f"comma list of {','.join(STEPS)} (default all)")
    g.add_argument("--max-train-rows", type=int, default=None,
                   help=f"cap train and holdout at this many rows (--issue12 default {DEFAULT_MAX_TRAIN_ROWS:,}; "
                        "0 = no cap; without --issue12 no cap)")
    g.add_argument("--note", default="", help="free text stored in every run's JSON: what else ran on the machine")
    g.add_argument("--results-dir", type=Path, default=None,
                   help="per-run JSON folder (default benchmarks/results/fidelity12; <out>/results with --quick)")
    g.add_argument("--fit10k-seeds", default="0,1,2", help="seeds of the 10k-row fit-time measurement")
    g.add_argument("--memory-rows", type=int, default=100_000, help="rows of the memory measurement's table")
    g.add_argument("--memory-epochs", type=int, default=1,
                   help="max_epochs of the memory measurement's fit (0 = tabline's own schedule)")
    g.add_argument("--rtf-table", default="Benefits", help="table of the sampling comparison with REaLTabFormer")
    g.add_argument("--rtf-rows", type=int, default=2_000, help="rows each method samples in that comparison")


def main(args) -> int:
    """``python -m benchmarks.run --issue12 ...``: resolve the issue-12 defaults, then run."""
    from benchmarks.run import parse_list, parse_overrides

    args.threads = 0 if args.threads is None else args.threads
    args.max_train_rows = DEFAULT_MAX_TRAIN_ROWS if args.max_train_rows is None else (args.max_train_rows or None)
    datasets = list(ALL_DATASETS) if args.datasets in (None, "all") else parse_list(args.datasets, tuple(ALL_DATASETS))
    # "all" is issue 12's three methods; the other peers can still be named.
    methods = list(METHODS12) if args.methods in (None, "all") else parse_list(args.methods, METHODS)
    steps = parse_list(args.steps, STEPS)
    tab_seeds = [int(s) for s in parse_list(args.seeds)]
    peer_seeds = [int(s) for s in parse_list(args.peer_seeds)]
    return run_issue12(args, datasets, methods, tab_seeds, peer_seeds, parse_overrides(args.overrides), steps)
