"""Benchmark runner: fit every method on every dataset (one subprocess each), evaluate, write RESULTS.md.

Run from the repository root:

    python -m benchmarks.run                       # everything (resumable)
    python -m benchmarks.run --quick --datasets Benefits --methods gaussian_copula,tvae,realtabformer
    python -m benchmarks.run --report-only         # re-render RESULTS.md from out/results.json
    python -m benchmarks.run --issue12             # the issue-12 benchmark (benchmarks/fidelity12.py)

Outputs (full run): benchmarks/out/<dataset>/{train,holdout}.csv, split.json,
<method>-s<seed>.csv (synthetic table), <method>-s<seed>.json (timings),
<method>-s<seed>.log (child's stderr), <method>-s<seed>.eval.json (tabline.eval report);
benchmarks/out/results.json (everything, for --report-only); benchmarks/RESULTS.md.
--quick writes under benchmarks/out/quick/ (its RESULTS.md too) so trials never mix
with full results.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: don't let benchmarks/datasets.py shadow HF `datasets`
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._common import (  # noqa: E402
    BENCH_DIR,
    CACHE_DIR,
    ROOT,
    PEER_VENVS,
    atomic_write_json,
    read_table,
    thread_env,
)
from benchmarks import fidelity12  # noqa: E402
from benchmarks.datasets import ALL_DATASETS, DATASETS, MORE_DATASETS, PreparedSplit, prepare  # noqa: E402
from benchmarks.peers import DEFAULT_CONFIGS, METHODS, QUICK_CONFIGS  # noqa: E402

DEFAULT_OUT = BENCH_DIR / "out"
DEFAULT_RESULTS_MD = BENCH_DIR / "RESULTS.md"
EVAL_SEED = 0


# ------------------------------------------------------------------- config
def parse_list(text: str, allowed: tuple[str, ...] | None = None) -> list[str]:
    if text.strip().lower() == "all":
        return list(allowed or ())
    items = [t.strip() for t in text.split(",") if t.strip()]
    if allowed is not None:
        lower = {a.lower(): a for a in allowed}
        bad = [i for i in items if i.lower() not in lower]
        if bad:
            raise SystemExit(f"unknown: {bad}; choose from {list(allowed)}")
        items = [lower[i.lower()] for i in items]
    return items


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``--set ctgan.epochs=50 --set realtabformer.n_embd=128`` -> {method: {key: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        method, _, field = key.partition(".")
        if method not in METHODS or not field or not _:
            raise SystemExit(f"--set expects METHOD.KEY=VALUE with METHOD in {METHODS}; got {pair!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(method, {})[field] = value
    return out


def method_config(method: str, quick: bool, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    base = QUICK_CONFIGS if quick else DEFAULT_CONFIGS
    return {**base[method], **overrides.get(method, {})}


# ---------------------------------------------------------------- results db
class Results:
    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, Any] = {"format": 1, "datasets": {}, "runs": {}}
        if path.exists():
            self.data = json.loads(path.read_text())
            self.data.setdefault("datasets", {})
            self.data.setdefault("runs", {})

    def save(self) -> None:
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(self.path, self.data)


def run_key(dataset: str, method: str, seed: int) -> str:
    return f"{dataset}/{method}/s{seed}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------- running
def child_python(method: str) -> Path | None:
    if method in PEER_VENVS:
        py = PEER_VENVS[method][0] / "bin" / "python"
        return py if py.exists() else None
    return Path(sys.executable)


def child_env(method: str, threads: int) -> dict[str, str]:
    """Environment of a method's child process: thread counts (0: the method's own choice), the repository
    on PYTHONPATH, and no hub access for the peers built on transformers."""
    env = thread_env(threads)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if method == "realtabformer":
        env.update({"HF_HOME": str(CACHE_DIR / "hf"), "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true",
                    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"})
    if method == "tabularargn":  # no hub access; the adapter keeps the datasets cache in its temp dir
        env.update({"HF_HOME": str(CACHE_DIR / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"})
    return env


def run_method(split: PreparedSplit, method: str, seed: int, cfg: dict[str, Any], args,
               results: Results | None, n: int | None = None) -> dict[str, Any]:
    """Fit + sample one (dataset, method, seed) in a child process; its timing record (``n`` rows sampled,
    default len(holdout))."""
    d = split.dir
    stem = f"{method}-s{seed}"
    csv_path, json_path, log_path = d / f"{stem}.csv", d / f"{stem}.json", d / f"{stem}.log"
    key = run_key(split.name, method, seed)

    if not args.force and csv_path.exists() and json_path.exists():
        rec = json.loads(json_path.read_text())
        if rec.get("status") == "ok" and rec.get("config") == cfg:
            log(f"{key}: outputs exist, skipping (use --force to rerun)")
            return rec
        why = "last run failed" if rec.get("status") != "ok" else "config changed"
        log(f"{key}: rerunning ({why})")

    py = child_python(method)
    if py is None:
        venv, setup = PEER_VENVS[method]
        rec = {"method": method, "dataset": split.name, "seed": seed, "config": cfg, "status": "error",
               "error": f"{venv}/bin/python not found: run `bash {setup}` first"}
        log(f"{key}: FAILED: {rec['error']}")
        return rec

    cmd = [str(py), "-m", "benchmarks.peers", "--method", method, "--split-dir", str(d),
           "--seed", str(seed), "--out-csv", str(csv_path), "--out-json", str(json_path),
           "--config", json.dumps(cfg), "--threads", str(args.threads)] + (["--n", str(n)] if n else [])
    env = child_env(method, args.threads)
    for p in (csv_path, json_path):
        if p.exists():
            p.unlink()
    log(f"{key}: running ({py.name} -m benchmarks.peers, {args.threads} thread(s), config {json.dumps(cfg)})")
    t0 = time.perf_counter()
    try:
        with open(log_path, "w") as lf:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=lf, stderr=subprocess.STDOUT,
                                  timeout=args.timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = time.perf_counter() - t0
    if json_path.exists():
        rec = json.loads(json_path.read_text())
    else:
        rec = {"method": method, "dataset": split.name, "seed": seed, "config": cfg, "status": "error",
               "error": f"child produced no JSON (exit {rc}); see {log_path}"}
        if rc == "timeout":
            rec["error"] = f"timed out after {args.timeout} s; see {log_path}"
    rec["child_wall_s"] = wall
    rec["child_exit"] = rc
    atomic_write_json(json_path, rec)
    if rec.get("status") == "ok":
        log(f"{key}: ok, fit {rec['fit_s']:.1f} s, sample {rec['sample_rows_per_s']:.0f} rows/s, "
            f"peak RSS {rec['peak_rss_mb']:.0f} MB, params {rec.get('params')}")
    else:
        log(f"{key}: FAILED: {rec.get('error')}")
    return rec


# ---------------------------------------------------------------- evaluation
def _file_sig(p: Path) -> list:
    st = p.stat()
    return [st.st_size, int(st.st_mtime_ns)]


def evaluate_run(split: PreparedSplit, rec: dict[str, Any], args) -> dict[str, Any] | None:
    """tabline.eval.evaluate on (train, synthetic, holdout, target); cached per CSV signature."""
    csv_path = split.dir / f"{rec['method']}-s{rec['seed']}.csv"
    eval_path = split.dir / f"{rec['method']}-s{rec['seed']}.eval.json"
    sig = _file_sig(csv_path)
    old = rec.get("eval")
    if old and old.get("csv_sig") == sig and old.get("status") == "ok" and not args.force_eval:
        return {**old, "cached": True}
    try:
        from tabline.eval import evaluate  # noqa: PLC0415
    except Exception as exc:
        return {"status": "error", "csv_sig": sig,
                "error": f"tabline.eval.evaluate is not importable yet ({type(exc).__name__}: {exc})"}
    try:
        train = read_table(split.train_csv, split.spec)
        holdout = read_table(split.holdout_csv, split.spec)
        synth = read_table(csv_path, split.spec)
        t0 = time.perf_counter()
        report = evaluate(train, synth, holdout, target=split.target, seed=EVAL_SEED)
        secs = time.perf_counter() - t0
        summary = dict(report.summary())
        util = getattr(report, "utility", None)
        out = {
            "status": "ok", "csv_sig": sig, "seconds": secs, "summary": summary,
            "utility_metric": getattr(util, "metric", None), "utility_task": getattr(util, "task", None),
            "notes": list(getattr(report, "notes", []) or []),
        }
        try:
            report.to_json(eval_path)
        except Exception:
            pass
        return out
    except Exception as exc:
        return {"status": "error", "csv_sig": sig, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc()[-3000:]}


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="tabline vs peer synthesizers",
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--datasets", default=None, help=f"comma list or 'all' ({','.join(DATASETS)}; with --issue12 "
                                                    f"also {','.join(MORE_DATASETS)})")
    ap.add_argument("--methods", default=None, help=f"comma list or 'all' ({','.join(METHODS)})")
    ap.add_argument("--seeds", default="0,1,2", help="tabline seeds (default 0,1,2)")
    ap.add_argument("--peer-seeds", default="0", help="seeds for the peer methods (default 0)")
    ap.add_argument("--quick", action="store_true", help="500+500 rows, 1 epoch, tiny models; writes under out/quick/")
    ap.add_argument("--force", action="store_true", help="rerun methods whose outputs exist (and re-evaluate)")
    ap.add_argument("--force-eval", action="store_true", help="re-evaluate even if cached")
    ap.add_argument("--no-eval", action="store_true", help="only run the methods")
    ap.add_argument("--report-only", action="store_true", help="only re-render RESULTS.md from results.json")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads per method process (default 2; with --issue12 0 = each method's own choice)")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds before a method process is killed")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="METHOD.KEY=VALUE",
                    help="override a method setting, e.g. --set ctgan.epochs=50 (repeatable)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default benchmarks/out[/quick])")
    ap.add_argument("--results", type=Path, default=None,
                    help="RESULTS.md path (default benchmarks/RESULTS.md; <out>/RESULTS.md with --quick)")
    fidelity12.add_arguments(ap)
    args = ap.parse_args(argv)
    if args.force:
        args.force_eval = True
    if args.issue12:
        return fidelity12.main(args)
    args.threads = 2 if args.threads is None else args.threads

    out = args.out or (DEFAULT_OUT / "quick" if args.quick else DEFAULT_OUT)
    results_md = args.results or (out / "RESULTS.md" if args.quick else DEFAULT_RESULTS_MD)
    results = Results(out / "results.json")
    results.data["quick"] = args.quick

    from benchmarks.report import machine_info, write_results_md  # noqa: PLC0415

    if args.report_only:
        write_results_md(results.data, results_md)
        log(f"wrote {results_md}")
        return 0

    datasets = list(DATASETS) if args.datasets in (None, "all") else parse_list(args.datasets, tuple(ALL_DATASETS))
    methods = parse_list(args.methods or "all", METHODS)
    tab_seeds = [int(s) for s in parse_list(args.seeds)]
    peer_seeds = [int(s) for s in parse_list(args.peer_seeds)]
    overrides = parse_overrides(args.overrides)
    results.data["threads"] = args.threads
    results.data["machine"] = machine_info()

    n_fail = 0
    for ds in datasets:
        split = prepare(ds, out, quick=args.quick, max_rows=args.max_train_rows or None)
        results.data["datasets"][ds] = {k: v for k, v in split.meta.items() if k != "spec"}
        results.save()
        log(f"== {ds}: train {split.n_train}, holdout {split.n_holdout}, target {split.target} ({split.task})")
        for method in methods:
            cfg = method_config(method, args.quick, overrides)
            for seed in (tab_seeds if method == "tabline" else peer_seeds):
                key = run_key(ds, method, seed)
                prev_eval = results.data["runs"].get(key, {}).get("eval")
                rec = run_method(split, method, seed, cfg, args, results)
                if prev_eval and "eval" not in rec:
                    rec["eval"] = prev_eval
                if rec.get("status") == "ok" and not args.no_eval:
                    ev = evaluate_run(split, rec, args)
                    cached = bool(ev and ev.pop("cached", False))
                    rec["eval"] = ev
                    if cached:
                        log(f"{key}: evaluation cached")
                    elif ev and ev.get("status") == "ok":
                        s = ev["summary"]
                        log(f"{key}: eval in {ev['seconds']:.0f} s: quality {s.get('quality')}, "
                            f"c2st {s.get('c2st_auc')}, tstr {s.get('tstr')}/{s.get('trtr')}, "
                            f"dcr {s.get('dcr_share')}")
                    elif ev:
                        log(f"{key}: eval FAILED: {ev.get('error')}")
                        n_fail += 1
                elif rec.get("status") != "ok":
                    n_fail += 1
                results.data["runs"][key] = rec
                results.save()
                write_results_md(results.data, results_md)
    write_results_md(results.data, results_md)
    log(f"wrote {results_md} and {results.path}" + (f" ({n_fail} failure(s), see above)" if n_fail else ""))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
