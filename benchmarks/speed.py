"""Speed side by side: tabline's TabularLM vs TabularARGN (mostlyai-engine) and SDV's GaussianCopula, CTGAN and
TVAE, each at its own defaults (CTGAN and TVAE with the epochs of benchmarks/README.md).

Per table and seed, in one run on one machine: fit seconds, sample rows/s (``--sample-rows`` rows in one
timed call), fidelity of the first len(holdout) sampled rows (C2ST against train and against the holdout,
SDMetrics quality, TSTR / TRTR), the same fit and sample again with one other CPU-bound process running,
and the CPU's measured matmul rate, from which tabline's training and sampling FLOP shares follow.

    python -m benchmarks.speed                      # everything; resumable (finished runs are kept)
    python -m benchmarks.speed --tables Benefits --seeds 0 --methods tabline
    python -m benchmarks.speed --report-only        # RESULTS.md section from results/speed/*.json
    python -m benchmarks.speed --host bf16          # a second machine: results/speed-bf16/, its own section

Each method runs in its own process (`benchmarks.peers`; TabularARGN under benchmarks/.venv-argn, the SDV
methods in tabline's environment, which needs `pip install "sdv>=2,<3"`: benchmarks/README.md) with no
thread settings passed: each picks its own. Every run's JSON (benchmarks/results/speed/) stores its
conditions: rows, seed, load, threads seen, machine.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: don't let benchmarks/datasets.py shadow HF `datasets`
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from benchmarks._common import (  # noqa: E402
    ARGN_VENV, BENCH_DIR, ROOT, atomic_write_csv, atomic_write_json, dtype_spec, read_table,
)
from benchmarks.datasets import ALL_DATASETS, SPLIT_SEED, split  # noqa: E402
from benchmarks.measures import (  # noqa: E402
    SAMPLE_FLOPS_PER_PARAM_TOKEN, TRAIN_FLOPS_PER_PARAM_TOKEN, c2st_vs_holdout, flop_share, invented_values,
    matmul_gflops, training_tokens_per_s,
)
from benchmarks.report import machine_info, replace_section  # noqa: E402

TABLES = ["Benefits", "Computers", "diamonds", "HI", "DoctorContacts", "Car", "baseball", "MedExp"]
METHODS = ["tabline", "tabularargn", "gaussian_copula", "ctgan", "tvae", "tabline_matched", "tabline_markers"]
SDV_METHODS = ("gaussian_copula", "ctgan", "tvae")  # sdv in tabline's environment (benchmarks/README.md, Setup)
# tabline_matched: tabline with its training time budget set to TabularARGN's median fit seconds on the table
# (from that table's finished TabularARGN runs) — the fidelity tabline reaches in the peer's fit time
# tabline_markers: tabline with every column marker a position of its own (fold_markers=False, the layout before
# issue 18's folding), to measure what folding did to speed and fidelity side by side
LABELS = {"tabline": "tabline TabularLM", "tabularargn": "TabularARGN", "gaussian_copula": "SDV GaussianCopula",
          "ctgan": "SDV CTGAN", "tvae": "SDV TVAE",
          "tabline_matched": "tabline, TabularARGN's fit time", "tabline_markers": "tabline, markers unfolded"}
OUT = BENCH_DIR / "out" / "speed"
RESULTS = BENCH_DIR / "results" / "speed"
TRAIN_CAP = 4_000
HOGS = 1


def log(msg: str) -> None:
    print(f"[speed {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ data
def prepare(name: str) -> Path:
    """<OUT>/<name>/{train,holdout}.csv + split.json: the benchmarks' seeded split, each side capped."""
    d = OUT / name
    if (d / "split.json").exists():
        return d
    train, holdout = split(name)
    train, holdout = train.iloc[:TRAIN_CAP].reset_index(drop=True), holdout.iloc[:TRAIN_CAP].reset_index(drop=True)
    spec = ALL_DATASETS[name]
    d.mkdir(parents=True, exist_ok=True)
    atomic_write_csv(d / "train.csv", train)
    atomic_write_csv(d / "holdout.csv", holdout)
    atomic_write_json(d / "split.json", {
        "dataset": name, "package": spec.package, "target": spec.target, "task": spec.task, "why": spec.why,
        "split_seed": SPLIT_SEED, "quick": False, "n_train": len(train), "n_holdout": len(holdout),
        "n_columns": train.shape[1], "dtypes": dtype_spec(train),
    })
    return d


# ------------------------------------------------------------------ runs
def run_one(name: str, method: str, seed: int, load: str, sample_rows: int, timeout: int) -> dict[str, Any] | None:
    """One fit + sample in a child process; with ``load="busy"`` while HOGS busy-loop processes run."""
    d = prepare(name)
    stem = f"{method}-s{seed}" + ("-busy" if load == "busy" else "")
    result_path = RESULTS / name / f"{stem}.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    py = str(ARGN_VENV / "bin" / "python") if method == "tabularargn" else sys.executable
    if method == "tabularargn" and not Path(py).exists():
        log("TabularARGN venv missing: run `bash benchmarks/setup_tabularargn.sh`")
        return None
    if method in SDV_METHODS and importlib.util.find_spec("sdv") is None:
        log(f"{method}: sdv is not installed in this environment (benchmarks/README.md, Setup)")
        return None
    config, settings, child = "{}", "defaults (no thread or size settings passed)", method
    if method in SDV_METHODS:
        from benchmarks.peers import DEFAULT_CONFIGS  # noqa: PLC0415

        settings = f"benchmarks.peers settings {DEFAULT_CONFIGS[method] or '{}'}, sdv defaults otherwise"
    if method == "tabline_matched":
        peer = [json.loads(p.read_text())["fit_s"] for p in sorted((RESULTS / name).glob("tabularargn-s[0-9].json"))]
        if not peer:
            log(f"{name}: no TabularARGN run to match the fit time of; run tabularargn first")
            return None
        budget = round(statistics.median(peer), 1)
        config, child = json.dumps({"time_budget_s": budget}), "tabline"
        settings = f"time_budget_s {budget} (TabularARGN's median fit s on this table), otherwise defaults"
    if method == "tabline_markers":
        config, child = json.dumps({"fold_markers": False}), "tabline"
        settings = "fold_markers False (every marker a position of its own), otherwise defaults"
    csv, js = d / f"{stem}.csv", d / f"{stem}.run.json"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TABLINE_THREADS")}
    env.update({"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "HF_HOME": str(BENCH_DIR / ".cache" / "hf"), "TOKENIZERS_PARALLELISM": "false"})
    cmd = [py, "-m", "benchmarks.peers", "--method", child, "--split-dir", str(d), "--seed", str(seed),
           "--out-csv", str(csv), "--out-json", str(js), "--config", config, "--threads", "0", "--n", str(sample_rows)]
    # the host's speed drifts between invocations (a shared VM: 161 then 92 GFLOP/s float32 on one day), so each
    # run keeps the rate measured just before it, and the FLOP shares divide by the run's own rate
    from tabline.training.decoder import cpu_has_fast_bf16  # noqa: PLC0415

    rate = matmul_gflops(dtypes=("float32", "bfloat16") if cpu_has_fast_bf16() else ("float32",))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS if load == "busy" else 0)]
    try:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        wall = time.perf_counter() - t0
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    if proc.returncode != 0 or not js.exists():
        log(f"{name} {method} s{seed} {load}: failed (rc {proc.returncode}): {proc.stderr[-2000:]}")
        return None
    rec = json.loads(js.read_text())
    meta = json.loads((d / "split.json").read_text())
    out = {
        "table": name, "method": method, "seed": seed, "load": load, "busy_processes": len(hogs),
        "n_train": meta["n_train"], "n_holdout": meta["n_holdout"], "n_columns": meta["n_columns"],
        "sample_rows": rec["sample_rows"], "fit_s": rec["fit_s"], "sample_s": rec["sample_s"],
        "sample_rows_per_s": rec["sample_rows_per_s"], "child_wall_s": wall, "params": rec.get("params"),
        "peak_rss_mb": rec.get("peak_rss_mb"), "versions": {k: rec.get(k) for k in ("torch", "pandas", "python")},
        "settings": settings, "matmul_gflops_before": rate,
        "extra": {k: v for k, v in rec.get("extra", {}).items() if k != "resolved_config"},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if load == "idle":
        out["fidelity"] = fidelity(d, csv, meta)
    atomic_write_json(result_path, out)
    return out


def _invented(d: Path, csv: Path, meta: dict) -> dict[str, Any]:
    """benchmarks.measures.invented_values on a stored run (the first len(holdout) sampled rows)."""
    train = read_table(d / "train.csv", meta["dtypes"])
    holdout = read_table(d / "holdout.csv", meta["dtypes"])
    synth = read_table(csv, meta["dtypes"]).iloc[: len(holdout)]
    return invented_values(train, holdout, synth)


def fidelity(d: Path, csv: Path, meta: dict) -> dict[str, Any]:
    """tabline.eval on the first len(holdout) sampled rows, plus C2ST of holdout vs synthetic."""
    from tabline.eval import evaluate

    train = read_table(d / "train.csv", meta["dtypes"])
    holdout = read_table(d / "holdout.csv", meta["dtypes"])
    synth = read_table(csv, meta["dtypes"]).iloc[: len(holdout)].reset_index(drop=True)
    report = evaluate(train, synth, holdout, target=meta["target"], seed=0)
    summary = report.summary()
    summary.update(c2st_vs_holdout(train, holdout, synth))
    summary.update(invented_values(train, holdout, synth))
    return summary


# ------------------------------------------------------------------ report
def _backfill_positions() -> None:
    """Positions per row for tabline runs recorded before the field existed (markers folded: every tabline run
    in this folder but tabline_markers, which records its own)."""
    from tabline.training.gpt import folded_length  # noqa: PLC0415
    from tabline.training.tokenizer import TableTokenizer  # noqa: PLC0415

    for p in sorted(RESULTS.glob("*/tabline*.json")):
        r = json.loads(p.read_text())
        if "model_positions" in r["extra"] or not r["extra"].get("row_length") or r["method"] == "tabline_markers":
            continue
        meta = json.loads((OUT / r["table"] / "split.json").read_text())
        tok = TableTokenizer.fit(read_table(OUT / r["table"] / "train.csv", meta["dtypes"]))
        assert tok.row_length() == r["extra"]["row_length"], (p, tok.row_length())
        r["extra"]["model_positions"] = folded_length(tok.row_length(), len(tok.codes))
        atomic_write_json(p, r)


def _load_all() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*/*.json"))]


def _med(xs: list[float], fmt: str) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    m = statistics.median(xs)
    if len(xs) == 1:
        return format(m, fmt)
    return f"{format(m, fmt)} ({format(min(xs), fmt)}–{format(max(xs), fmt)})"


def _ceiling(fids: list[dict], key: str) -> str:
    """The real-holdout ceiling: one number, since every seed scores the same real split."""
    xs = [x.get(key) for x in fids if x.get(key) is not None]
    return format(statistics.median(xs), ".3f") if xs else "–"


def _pick(runs, table, method, load="idle"):
    return [r for r in runs if r["table"] == table and r["method"] == method and r["load"] == load]


def report(runs: list[dict[str, Any]], machine: dict[str, Any], host: str = "") -> str:
    title = "## Speed: tabline vs TabularARGN and the SDV peers (issue 18)"
    if host:
        title += f", host '{host}'"
    lines = [title, ""]
    tables = [t for t in TABLES if any(r["table"] == t for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    lines += [
        f"Generated by `python -m benchmarks.speed{' --host ' + host if host else ''}` from "
        f"benchmarks/results/{RESULTS.name}/*.json ({len(runs)} runs, {machine.get('date', '?')[:10]}). "
        f"Machine: {machine.get('cpu')}, {machine.get('cores_usable', machine.get('cores'))} cores, "
        f"{machine.get('ram_gib')} GiB; torch {machine.get('torch')}. Seeds {seeds}; cells are median "
        f"(min–max). Train rows: the benchmarks' seeded split capped at {TRAIN_CAP:,} (holdout likewise); "
        f"rows/s: {runs[0]['sample_rows']:,} rows in one call. tabline, TabularARGN and GaussianCopula at their "
        "own defaults (CTGAN and TVAE, where shown, with the epochs of benchmarks/README.md's settings table), one "
        "process each, nothing else running unless stated. "
        + ("'tabline, TabularARGN's fit time' is tabline with its training time budget set to TabularARGN's median "
           "fit seconds on that table (measured in a later run on the same machine). "
           if any(r["method"] == "tabline_matched" for r in runs) else "")
        + ("'tabline, markers unfolded' is tabline with `fold_markers=False`: every column marker a position of its "
           "own, the layout before issue 18 (run in the same invocation as the other rows, minutes after them). "
           if any(r["method"] == "tabline_markers" for r in runs) else "")
        + "Fidelity on len(holdout) sampled rows. Invented values: share "
        "of the output's cells in columns with at most 50 distinct training values that hold a value neither "
        "train nor holdout holds. "
        + "; ".join(f"{t}: seeds {sorted({r['seed'] for r in runs if r['table'] == t})} only" for t in tables
                    if len({r['seed'] for r in runs if r['table'] == t}) < len(seeds))
        + "".join(f" {LABELS[m]}: seeds {s} only." for m in METHODS
                  for s in [sorted({r['seed'] for r in runs if r['method'] == m})] if s and len(s) < len(seeds)),
        "",
        "| table | rows × cols | method | fit s | sample rows/s | C2ST vs holdout [ceiling] | C2ST vs train "
        "| quality [ceiling] | TSTR/TRTR | invented values |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    wins = {"fit": [], "sample": []}
    for t in tables:
        for m in METHODS:
            rs = _pick(runs, t, m)
            if not rs:
                continue
            f = [r.get("fidelity") or {} for r in rs]
            lines.append(
                f"| {t} | {rs[0]['n_train']:,} × {rs[0]['n_columns']} | {LABELS[m]} | {_med([r['fit_s'] for r in rs], '.1f')} "
                f"| {_med([r['sample_rows_per_s'] for r in rs], ',.0f')} "
                f"| {_med([x.get('c2st_vs_holdout') for x in f], '.3f')} [{_ceiling(f, 'c2st_vs_holdout_ceiling')}] "
                f"| {_med([x.get('c2st_auc') for x in f], '.3f')} "
                f"| {_med([x.get('quality') for x in f], '.3f')} [{_ceiling(f, 'quality_ceiling')}] "
                f"| {_med([x.get('tstr_trtr_ratio') for x in f], '.3f')} "
                f"| {_med([100 * x['invented_value_share'] if x.get('invented_value_share') is not None else None for x in f], '.1f')} % |")
        # ratios within a seed (the two runs of one invocation, minutes apart), then their median over seeds
        pairs = [(a, b) for a in _pick(runs, t, "tabline") for b in _pick(runs, t, "tabularargn") if a["seed"] == b["seed"]]
        if pairs:
            wins["fit"].append((t, [b["fit_s"] / a["fit_s"] for a, b in pairs]))
            wins["sample"].append((t, [a["sample_rows_per_s"] / b["sample_rows_per_s"] for a, b in pairs]))
    lines.append("")
    if wins["fit"]:
        fmt = lambda ws: ", ".join(f"{t} {_med(x, '.2f')}×" for t, x in ws)  # noqa: E731
        ahead = lambda ws: sum(statistics.median(x) >= 1 for _, x in ws)  # noqa: E731
        lines += [
            "- **Sampling speed, tabline ÷ TabularARGN** (rows/s, ratio within each seed's pair of runs, median (min–max) "
            f"over seeds; > 1 means tabline is faster): {fmt(wins['sample'])}; ahead on {ahead(wins['sample'])} of "
            f"{len(wins['sample'])} tables.",
            f"- **Fit speed, TabularARGN fit s ÷ tabline fit s** (same pairing; > 1 means tabline fits faster): "
            f"{fmt(wins['fit'])}; ahead on {ahead(wins['fit'])} of {len(wins['fit'])} tables.",
        ]
    for m in SDV_METHODS:
        pairs = [(t, _pick(runs, t, "tabline"), _pick(runs, t, m)) for t in tables]
        pairs = [(t, a, b) for t, a, b in pairs if a and b]
        if not pairs:
            continue
        med = lambda rs, k: statistics.median(r[k] for r in rs)  # noqa: E731
        c2 = lambda rs: statistics.median((r.get("fidelity") or {}).get("c2st_vs_holdout", 1.0) for r in rs)  # noqa: E731
        samp = [med(a, "sample_rows_per_s") / med(b, "sample_rows_per_s") for _, a, b in pairs]  # of medians: the
        fit = [med(b, "fit_s") / med(a, "fit_s") for _, a, b in pairs]  # SDV peers may have run fewer seeds
        lines.append(
            f"- **Beside {LABELS[m]}**, sampling tabline ÷ peer: "
            + ", ".join(f"{t} {x:.2f}×" for (t, _, _), x in zip(pairs, samp))
            + f" (ahead on {sum(x >= 1 for x in samp)} of {len(pairs)}); fit, peer s ÷ tabline s: "
            + ", ".join(f"{t} {x:.2f}×" for (t, _, _), x in zip(pairs, fit))
            + f" (ahead on {sum(x >= 1 for x in fit)} of {len(pairs)}); tabline's C2ST vs holdout lower on "
            f"{sum(c2(a) < c2(b) for _, a, b in pairs)} of {len(pairs)}.")
    folding = []
    for t in tables:
        pairs = [(a, b) for a in _pick(runs, t, "tabline") for b in _pick(runs, t, "tabline_markers") if a["seed"] == b["seed"]]
        if pairs:
            c2 = lambda r: (r.get("fidelity") or {}).get("c2st_vs_holdout", 1.0)  # noqa: E731
            folding.append((t, [a["sample_rows_per_s"] / b["sample_rows_per_s"] for a, b in pairs],
                            [b["fit_s"] / a["fit_s"] for a, b in pairs], [c2(a) for a, _ in pairs],
                            [c2(b) for _, b in pairs], sorted(a["seed"] for a, _ in pairs)))
    if folding:
        lines.append(
            "- **Folding the column markers** (tabline ÷ 'markers unfolded', same seed; the unfolded runs came right after "
            "that seed's tabline run, on the same host): sampling rows/s, fit s unfolded ÷ folded, C2ST vs holdout "
            "folded / unfolded: " + ", ".join(f"{t} (seeds {s}) {_med(x, '.2f')}×, {_med(y, '.2f')}×, "
                                              f"{_med(c, '.3f')} / {_med(u, '.3f')}" for t, x, y, c, u, s in folding) + ".")
    if wins["sample"] and any(statistics.median(x) < 1 for _, x in wins["sample"]):
        lines.append("- **Where tabline is behind on speed**, why, and what was tried to close it (kept and dropped): "
                     "docs/tabular-lm.md §3, 'Folding the markers' and the paragraphs after it.")
    matched = []
    for t in tables:
        a, b = _pick(runs, t, "tabline_matched"), _pick(runs, t, "tabularargn")
        if a and b:
            c2 = lambda rs: statistics.median((r.get("fidelity") or {}).get("c2st_vs_holdout", 1.0) for r in rs)  # noqa: E731
            matched.append((t, statistics.median(r["fit_s"] for r in a) / statistics.median(r["fit_s"] for r in b),
                            c2(a), c2(b)))
    if matched:
        lines.append(
            "- **At TabularARGN's fit time** (tabline's time budget set to the peer's median fit seconds): fit s ratio "
            "tabline ÷ TabularARGN and C2ST vs holdout tabline / TabularARGN (lower is better): "
            + ", ".join(f"{t} {r:.2f}× {c:.3f} / {p:.3f}" for t, r, c, p in matched)
            + f"; tabline's C2ST lower on {sum(c < p for _, _, c, p in matched)} of {len(matched)} tables, its fit "
            f"within 1.1× of the peer's on {sum(r <= 1.1 for _, r, _, _ in matched)}.")
    busy = [r for r in runs if r["load"] == "busy"]
    if busy:
        lines += ["", f"**Under load** (one other process busy-looping on one of the cores during fit and sample; "
                      "ratio = busy ÷ idle time, same table and seed; target ≤ 2.5):", "",
                  "| table | method | fit s idle → busy | fit ratio | sample s idle → busy | sample ratio |", "|---|---|---|---|---|---|"]
        for t in tables:
            for m in METHODS:
                pairs = [(i, b) for b in _pick(runs, t, m, "busy") for i in _pick(runs, t, m) if i["seed"] == b["seed"]]
                if not pairs:
                    continue
                lines.append(
                    f"| {t} | {LABELS[m]} | {_med([i['fit_s'] for i, _ in pairs], '.1f')} → {_med([b['fit_s'] for _, b in pairs], '.1f')} "
                    f"| {_med([b['fit_s'] / i['fit_s'] for i, b in pairs], '.2f')} "
                    f"| {_med([i['sample_s'] for i, _ in pairs], '.2f')} → {_med([b['sample_s'] for _, b in pairs], '.2f')} "
                    f"| {_med([b['sample_s'] / i['sample_s'] for i, b in pairs], '.2f')} |")
    rate = machine.get("matmul_gflops")
    tl = [r for r in runs if r["method"] == "tabline" and r["load"] == "idle" and r["extra"].get("row_length")]
    sample_dtype = "bfloat16" if machine.get("fast_bf16", True) else "float32"  # what tabline's sampler ran in
    if rate and tl:
        f32 = [(r.get("matmul_gflops_before") or rate)["float32"] for r in tl]
        lines += ["", "**Throughput against the hardware.** Each run's shares divide by the float32 matmul rate "
                      "((4096×128)·(128×512), 2 cores) measured just before that run, since this shared host's speed "
                      f"drifts: {_med(f32, '.0f')} GFLOP/s over tabline's runs (the last invocation's bfloat16 rate: "
                      f"{rate['bfloat16']:.0f} GFLOP/s); this CPU "
                      + ("multiplies bfloat16 in hardware, so sampling runs in it. " if sample_dtype == "bfloat16" else
                         "has no bfloat16 hardware, so sampling runs in float32. ")
                      + "Tokens are the positions the model runs (markers folded: see docs/tabular-lm.md §1). "
                      "Training FLOPs ≈ 6 × non-embedding parameters × tokens (forward + backward, float32); sampling "
                      "FLOPs ≈ 2 × non-embedding parameters × tokens fed.", "",
                  "| table | model (layers × width) | positions per row | training tokens/s | share of float32 matmul rate "
                  f"| sampling tokens/s | share of {sample_dtype} matmul rate |",
                  "|---|---|---|---|---|---|---|"]
        for t in tables:
            rs = [r for r in tl if r["table"] == t]
            if not rs:
                continue
            e = rs[0]["extra"]
            train_tok = [training_tokens_per_s(r["extra"], r["n_train"], r["fit_s"]) for r in rs]
            positions = [r["extra"].get("model_positions") or r["extra"]["row_length"] for r in rs]
            samp_tok = [n * r["sample_rows_per_s"] for n, r in zip(positions, rs)]
            own = [r.get("matmul_gflops_before") or rate for r in rs]
            tshare = [flop_share(r["extra"]["non_embedding_params"], x, g["float32"], TRAIN_FLOPS_PER_PARAM_TOKEN)
                      for r, x, g in zip(rs, train_tok, own)]
            sshare = [flop_share(r["extra"]["non_embedding_params"], x, g[sample_dtype], SAMPLE_FLOPS_PER_PARAM_TOKEN)
                      for r, x, g in zip(rs, samp_tok, own)]
            lines.append(f"| {t} | {e['n_layer']} × {e['n_embd']} | {e['row_length']} → {positions[0]} "
                         f"| {_med(train_tok, ',.0f')} | {_med([100 * x for x in tshare], '.0f')} % "
                         f"| {_med(samp_tok, ',.0f')} | {_med([100 * x for x in sshare], '.0f')} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", default=",".join(TABLES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--busy-tables", default="Computers,MedExp", help="tables also run under load")
    ap.add_argument("--busy-methods", default="tabline,tabularargn", help="methods also run under load")
    ap.add_argument("--sample-rows", type=int, default=20_000)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--host", default="", help="name of a second machine: its runs go to results/speed-HOST/ and "
                                               "its own RESULTS.md section, never mixed with the first machine's")
    args = ap.parse_args(argv)
    global RESULTS
    if args.host:
        RESULTS = BENCH_DIR / "results" / f"speed-{args.host}"
    machine_path = RESULTS / "machine.json"
    if not args.report_only:
        RESULTS.mkdir(parents=True, exist_ok=True)
        from tabline.training.decoder import cpu_has_fast_bf16  # noqa: PLC0415

        machine = {**machine_info(), "matmul_gflops": matmul_gflops(), "fast_bf16": cpu_has_fast_bf16()}
        machine["other_load"] = f"nothing else by design; load average at start {os.getloadavg()[0]:.2f}"
        atomic_write_json(machine_path, machine)
        seeds = [int(s) for s in args.seeds.split(",")]
        busy_tables = [t for t in args.busy_tables.split(",") if t]
        for t in args.tables.split(","):
            for seed in seeds:
                for m in args.methods.split(","):
                    busy = t in busy_tables and m in args.busy_methods.split(",")
                    for load in ["idle"] + (["busy"] if busy else []):
                        t0 = time.perf_counter()
                        r = run_one(t, m, seed, load, args.sample_rows, args.timeout)
                        if r:
                            fid = r.get("fidelity") or {}
                            log(f"{t} {m} s{seed} {load}: fit {r['fit_s']:.1f}s, {r['sample_rows_per_s']:,.0f} rows/s, "
                                f"c2st(holdout) {fid.get('c2st_vs_holdout')}, quality {fid.get('quality')} "
                                f"[{time.perf_counter() - t0:.0f}s]")
    for p in sorted(RESULTS.glob("*/*.json")):  # runs scored before a fidelity column was added
        r = json.loads(p.read_text())
        if r["load"] == "idle" and "invented_value_share" not in r.get("fidelity", {"invented_value_share": 0}):
            d = OUT / r["table"]
            r["fidelity"].update(_invented(d, d / f"{r['method']}-s{r['seed']}.csv",
                                           json.loads((d / "split.json").read_text())))
            atomic_write_json(p, r)
    _backfill_positions()
    machine = json.loads(machine_path.read_text())
    text = report(_load_all(), machine, args.host)
    tag = f"speed-{args.host}" if args.host else "speed"
    replace_section(BENCH_DIR / "RESULTS.md", f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
