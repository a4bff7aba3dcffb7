"""The issue-12 section of RESULTS.md, rendered only from the stored JSON (per-run results, extra measurements,
machine.json, and benchmarks/results/gpu/*.json when a GPU run exists). No model code runs here; every number in
the prose comes from the same values as the tables.

    python -m benchmarks.run --issue12 --report-only
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Callable

from benchmarks._common import BENCH_DIR, ROOT
from benchmarks.datasets import ALL_DATASETS
from benchmarks.peers import PEER_LABELS
from benchmarks.report import replace_section

# Issue 12's goals, checked on tabline's median over seeds (exactness goals: in every seed).
QUALITY_GAP = 0.01
C2ST_MAX = 0.60
TSTR_FRACTION = 0.97
DCR_RANGE = (0.45, 0.55)
FIT10K_MAX_S = 120.0
SAMPLING_VS_RTF = 5.0
METHOD_ORDER = ["tabline", "tabularargn", "gaussian_copula", "ctgan", "tvae", "realtabformer"]
GPU_RESULTS = BENCH_DIR / "results" / "gpu"


# ------------------------------------------------------------------ loading
def load(results: Path) -> dict[str, Any]:
    """Everything the section shows: runs by table, the extra measurements, the machine, GPU runs."""
    def read(p: Path) -> dict:
        return json.loads(p.read_text(encoding="utf-8"))

    runs = [read(p) for p in sorted(results.glob("*/*.json")) if p.parent.name != "extra"]
    return {
        "runs": [r for r in runs if r.get("benchmark") == "issue12"],
        "extra": {p.stem: read(p) for p in sorted((results / "extra").glob("*.json"))},
        "machine": read(results / "machine.json") if (results / "machine.json").exists() else {},
        "gpu": {p.name: read(p) for p in sorted(GPU_RESULTS.glob("*.json"))},
    }


# ------------------------------------------------------------------ formatting
def _vals(xs) -> list[float]:
    return [float(x) for x in xs if x is not None]


def med(xs) -> float | None:
    xs = _vals(xs)
    return statistics.median(xs) if xs else None


def mm(xs, fmt: str = ".3f", scale: float = 1.0) -> str:
    """'median [min–max]' over seeds; just the value when there is one (or all are equal)."""
    xs = [x * scale for x in _vals(xs)]
    if not xs:
        return "—"
    m, lo, hi = statistics.median(xs), min(xs), max(xs)
    return format(m, fmt) if lo == hi else f"{format(m, fmt)} [{format(lo, fmt)}–{format(hi, fmt)}]"


def f(x: float | None, fmt: str = ".3f") -> str:
    return "—" if x is None else format(x, fmt)


def fid(r: dict, key: str) -> Any:
    return (r.get("fidelity") or {}).get(key)


def ok(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r.get("status") == "ok" and r.get("fidelity")]


def verdict(passed: bool | str | None) -> str:
    """PASS / MISS, n/a when not measured, or a word of its own (a goal that is a statement, not a threshold)."""
    if isinstance(passed, str):
        return f"**{passed}**"
    return "n/a" if passed is None else ("**PASS**" if passed else "**MISS**")


# ------------------------------------------------------------------ targets
def table_targets(runs: list[dict]) -> list[tuple[str, bool | None, str]]:
    """(goal, passed, numbers) for tabline's runs on one table."""
    rs = ok(runs)
    m = {k: med(fid(r, k) for r in rs) for k in (
        "quality", "quality_ceiling", "c2st_auc", "c2st_vs_holdout", "tstr", "trtr", "dcr_share",
        "exact_copy_rate", "exact_copy_rate_ceiling")}
    out: list[tuple[str, bool | None, str]] = []

    def both(a: str, b: str) -> bool:
        return m[a] is not None and m[b] is not None

    out.append((f"quality ≥ ceiling − {QUALITY_GAP}", None if not both("quality", "quality_ceiling")
                else m["quality"] >= m["quality_ceiling"] - QUALITY_GAP, f"{f(m['quality'])} vs {f(m['quality_ceiling'])}"))
    for key, name in (("c2st_auc", "C2ST vs train"), ("c2st_vs_holdout", "C2ST vs holdout")):
        out.append((f"{name} ≤ {C2ST_MAX}", None if m[key] is None else m[key] <= C2ST_MAX, f(m[key])))
    if not both("tstr", "trtr") or m["trtr"] <= 0:
        out.append((f"TSTR ≥ {TSTR_FRACTION} × TRTR", None, "TRTR ≤ 0" if m["trtr"] is not None else "—"))
    else:
        out.append((f"TSTR ≥ {TSTR_FRACTION} × TRTR", m["tstr"] >= TSTR_FRACTION * m["trtr"],
                    f"ratio {m['tstr'] / m['trtr']:.3f}"))
    d = m["dcr_share"]
    out.append((f"DCR share {DCR_RANGE[0]}–{DCR_RANGE[1]}", None if d is None else DCR_RANGE[0] <= d <= DCR_RANGE[1], f(d)))
    out.append(("exact copies ≤ holdout's", None if not both("exact_copy_rate", "exact_copy_rate_ceiling")
                else m["exact_copy_rate"] <= m["exact_copy_rate_ceiling"],
                "—" if m["exact_copy_rate"] is None else
                f"{100 * m['exact_copy_rate']:.2f} % vs {100 * (m['exact_copy_rate_ceiling'] or 0):.2f} %"))
    cells = [fid(r, "invented_cells") for r in rs]
    out.append(("0 invented values (every seed)", None if not _vals(cells) else max(_vals(cells)) == 0,
                "—" if not _vals(cells) else f"{int(max(_vals(cells))):,} cells (worst seed)"))
    low = [fid(r, "lowcard") or {} for r in rs]
    has_cols = [x for x in low if x.get("lowcard_columns")]
    ceiling = next((fid(r, "lowcard_ceiling") for r in rs if fid(r, "lowcard_ceiling")), None)
    n_cols = len(has_cols[0]["lowcard_columns"]) if has_cols else 0
    out.append(("low-cardinality numeric value sets match (every seed)",
                None if not has_cols else all(x["lowcard_sets_match"] for x in has_cols),
                "no such columns" if not has_cols else
                f"{min(n_cols - len(x['mismatches']) for x in has_cols)}/{n_cols} columns match (worst seed)"
                + (f"; holdout {n_cols - len(ceiling['mismatches'])}/{n_cols}" if ceiling else "")))
    return out


def global_targets(extra: dict[str, dict]) -> list[tuple[str, bool | str | None, str]]:
    """The goals measured once: fit time of 10k rows, sampling speed against REaLTabFormer, memory at 100k rows."""
    fits = [e for k, e in extra.items() if k.startswith("fit10k-") and e.get("status") == "ok"]
    out: list[tuple[str, bool | str | None, str]] = []
    if fits:
        fit_s = med(e["fit_s"] for e in fits)
        out.append((f"fit ≤ {FIT10K_MAX_S:.0f} s, {fits[0]['n_train']:,} rows × {fits[0]['n_columns']} columns",
                    fit_s <= FIT10K_MAX_S, f"{mm([e['fit_s'] for e in fits], '.1f')} s over {len(fits)} seed(s); "
                    f"{mm([e['training_tokens_per_s'] for e in fits], ',.0f')} training tokens/s = "
                    f"{mm([e['flop_share_float32'] for e in fits], '.0f', 100)} % of the float32 matmul rate"))
    else:
        out.append((f"fit ≤ {FIT10K_MAX_S:.0f} s for 10k rows", None, "not measured"))
    s = extra.get("sampling_vs_rtf") or {}
    if s.get("status") == "ok":
        a, b = s["runs"]["tabline"]["sample_rows_per_s"], s["runs"]["realtabformer"]["sample_rows_per_s"]
        out.append((f"sampling ≥ {SAMPLING_VS_RTF:g}× REaLTabFormer's rows/s", a >= SAMPLING_VS_RTF * b,
                    f"{s['table']}, {s['rows_sampled']:,} rows: {a:,.0f} vs {b:,.1f} rows/s ({a / b:.1f}×)"))
    else:
        out.append((f"sampling ≥ {SAMPLING_VS_RTF:g}× REaLTabFormer's rows/s", None, s.get("error") or "not measured"))
    mem = extra.get("memory100k") or {}
    if mem.get("status") == "ok":
        out.append((f"peak memory stated for {mem['n_rows']:,} rows", "stated",
                    f"fit {mem['fit']['peak_rss_mb']:,.0f} MB ({mem['epochs_trained']} epoch(s)), "
                    f"sampling {mem['n_rows']:,} rows {mem['sample']['peak_rss_mb']:,.0f} MB"))
    else:
        out.append(("peak memory stated for 100k rows", None, mem.get("error") or "not measured"))
    return out


# ------------------------------------------------------------------ sections
def _tables(data: dict) -> list[str]:
    names = {r["dataset"] for r in data["runs"]}
    return [t for t in ALL_DATASETS if t in names] + sorted(names - set(ALL_DATASETS))


def _by(data: dict, table: str, method: str) -> list[dict]:
    return sorted((r for r in data["runs"] if r["dataset"] == table and r["method"] == method), key=lambda r: r["seed"])


def _epochs(rs: list[dict]) -> str:
    ep = [(r.get("extra") or {}).get("training_log", {}).get("epochs") or (r.get("extra") or {}).get("epochs_done")
          for r in rs]
    why = [(r.get("extra") or {}).get("training_log", {}).get("stopped_by") or (r.get("extra") or {}).get("stopped_by")
           for r in rs]
    why = [w for w in why if w]
    counts = ", ".join(f"{w} ×{why.count(w)}" if why.count(w) > 1 else w for w in dict.fromkeys(why))
    return f"{mm(ep, '.0f')}" + (f" ({counts})" if counts else "") if _vals(ep) else "—"


def method_table(data: dict, table: str) -> list[str]:
    metric = next((fid(r, "utility_metric") for r in ok(data["runs"]) if r["dataset"] == table), None) or "metric"
    L = [f"| method | seeds | quality (ceiling) | C2ST vs train (ceiling) | C2ST vs holdout (ceiling) | TSTR / TRTR "
         f"({metric}) | DCR share (ceiling) | exact copies % (holdout) | invented cells | low-card sets match "
         "| fit s | epochs (stopped by) | sample rows/s | peak RSS MB |", "|" + "---|" * 14]
    problems = []
    for method in [m for m in METHOD_ORDER if _by(data, table, m)]:
        rs = _by(data, table, method)
        g = ok(rs)
        problems += [f"{PEER_LABELS.get(method, method)} seed {r['seed']}: {r.get('error')}" for r in rs if r not in g]

        def col(key: str, fmt: str = ".3f", scale: float = 1.0, ceiling: bool = True) -> str:
            c = med(fid(r, f"{key}_ceiling") for r in g) if ceiling else None
            return mm([fid(r, key) for r in g], fmt, scale) + ("" if c is None else f" ({c * scale:{fmt}})")

        low = [fid(r, "lowcard") or {} for r in g]
        low_txt = "—" if not low or not low[0].get("lowcard_columns") else \
            f"{sum(x['lowcard_sets_match'] for x in low)}/{len(low)} seeds"
        tstr = mm([fid(r, "tstr") for r in g]) + f" / {f(med(fid(r, 'trtr') for r in g))}"
        L.append("| " + " | ".join([
            PEER_LABELS.get(method, method), ",".join(str(r["seed"]) for r in g) or "—",
            col("quality"), col("c2st_auc"), col("c2st_vs_holdout"), tstr, col("dcr_share"),
            col("exact_copy_rate", ".2f", 100), mm([fid(r, "invented_cells") for r in g], ",.0f"), low_txt,
            mm([r.get("fit_s") for r in g], ".1f"), _epochs(g), mm([r.get("sample_rows_per_s") for r in g], ",.0f"),
            mm([r.get("peak_rss_mb") for r in g], ",.0f")]) + " |")
    L.append("")
    if problems:
        L += ["Failed runs:", *[f"- {p}" for p in problems], ""]
    mism = {c: v for r in ok(_by(data, table, "tabline")) for c, v in (fid(r, "lowcard") or {}).get("mismatches", {}).items()}
    inv = sorted({c for r in ok(_by(data, table, "tabline")) for c in fid(r, "columns_with_invented_values") or []})
    if inv or mism:
        L.append("tabline: " + "; ".join(
            ([f"invented values in {', '.join(inv)}"] if inv else [])
            + [f"`{c}` value set differs (missing {v['missing']}, extra {v['extra']})" for c, v in mism.items()]) + ".")
        L.append("")
    return L


def conditions_section(data: dict) -> list[str]:
    m, runs = data["machine"], data["runs"]
    conds = [r["conditions"] for r in runs] + [e.get("conditions") or {} for e in data["extra"].values()]
    for e in data["extra"].values():
        conds += [r.get("conditions") or {} for r in (e.get("runs") or {}).values()]
    conds = [c for c in conds if c]
    la = [c["load_start"]["loadavg"][0] for c in conds if c.get("load_start")]
    busy = [c["load_start"].get("others_busy_cores") for c in conds if c.get("load_start")]
    caps = sorted({str(r["conditions"].get("max_train_rows")) for r in runs})
    threads = sorted({str(r["conditions"].get("threads_used")) for r in runs if r["method"] == "tabline"})
    notes = sorted({c.get("note") for c in conds if c.get("note")})
    dates = sorted(c.get("started") for c in conds if c.get("started"))
    v, rate = m.get("versions") or {}, m.get("matmul_gflops") or {}
    argn = next(((r.get("extra") or {}).get("mostlyai_engine_version") for r in runs if r["method"] == "tabularargn"), None)
    rtf = ((data["extra"].get("sampling_vs_rtf") or {}).get("runs") or {}).get("realtabformer", {}).get("versions", {})
    busy_runs = sum(1 for b in busy if b is not None and b >= 0.5)
    return [
        f"- Machine: {m.get('cpu')}, {m.get('cores_usable', m.get('cores'))} cores, {m.get('ram_gib')} GiB RAM, "
        f"{m.get('os')}; matmul rate before the matrix ran {rate.get('float32', '—')} GFLOP/s float32, "
        f"{rate.get('bfloat16', '—')} GFLOP/s bfloat16 ((4096×128)·(128×512), {rate.get('threads', '?')} threads; "
        f"load average then {((m.get('load_at_matmul') or {}).get('loadavg') or ['—'])[0]}).",
        f"- Versions: Python {m.get('python')}, torch {v.get('torch')}, pandas {v.get('pandas')}, numpy {v.get('numpy')}, "
        f"scikit-learn {v.get('sklearn')}, sdmetrics {v.get('sdmetrics')}, sdv {v.get('sdv')}, tabline {v.get('tabline')} "
        f"(commit {str(v.get('git_commit'))[:10]}{', uncommitted changes' if v.get('git_dirty') else ''}); "
        f"mostlyai-engine {argn or '—'} and REaLTabFormer {rtf.get('realtabformer') or '—'} "
        f"(transformers {rtf.get('transformers') or '—'}) in their own venvs.",
        f"- Rows: each table's seeded split with train and holdout capped at {', '.join(caps) or '—'} rows; every method "
        "samples len(holdout) rows, scored by `tabline.eval.evaluate(train, synthetic, holdout, target, seed=0)`; "
        "C2ST vs holdout is the same detector trained on holdout vs synthetic (ceiling: holdout vs train).",
        f"- Settings: every method at its defaults unless `--set` says otherwise (see Settings); threads: "
        f"{', '.join(sorted({str(r['conditions'].get('threads_requested')) for r in runs})) or '—'} requested, tabline's "
        f"fits used {', '.join(threads) or '—'}; one method process at a time.",
        f"- Load when each run started: 1-min load average {mm(la, '.2f')}; cores kept busy by other processes "
        f"{mm(busy, '.2f')}; {busy_runs} of {len(busy)} runs started with ≥ 0.5 cores busy elsewhere.",
        f"- What else ran: {'; '.join(notes) if notes else 'nothing stated (no --note given)'}.",
        f"- Dates: {dates[0] if dates else '—'} to {dates[-1] if dates else '—'}.",
        "- GPU: " + (f"{len(data['gpu'])} result file(s) in benchmarks/results/gpu/ (see below)." if data["gpu"]
                     else "not run (no GPU machine was available)."),
    ]


def extras_section(extra: dict[str, dict]) -> list[str]:
    L = []
    fits = [e for k, e in sorted(extra.items()) if k.startswith("fit10k-")]
    if fits:
        L += ["**Fit time, 10k rows** (tabline defaults; training tokens/s from the fit log where it reports them, "
              "else estimated; FLOP share = 6 × non-embedding parameters × tokens/s ÷ the float32 matmul rate "
              f"measured in the same invocation: {fits[0]['matmul_gflops'].get('float32')} GFLOP/s, load average then "
              f"{fits[0]['load_at_matmul']['loadavg'][0]}):", "",
              "| seed | rows × cols | fit s | epochs (stopped by) | threads | model | training tokens/s | share of float32 "
              "matmul rate | load avg at start |", "|---|---|---|---|---|---|---|---|---|"]
        for e in fits:
            lg, mo = e.get("training_log") or {}, e.get("model") or {}
            L.append(f"| {e['seed']} | {e['n_train']:,} × {e['n_columns']} | {f(e.get('fit_s'), '.1f')} | "
                     f"{lg.get('epochs', '—')} ({lg.get('stopped_by', '—')}) | {e['conditions'].get('threads_used')} | "
                     f"{mo.get('n_layer')} × {mo.get('n_embd')}, {f(mo.get('params'), ',.0f')} params | "
                     f"{f(e.get('training_tokens_per_s'), ',.0f')} | "
                     f"{f(100 * e['flop_share_float32'] if e.get('flop_share_float32') else None, '.0f')} % | "
                     f"{e['conditions']['load_start']['loadavg'][0]:.2f} |" if e.get("status") == "ok"
                     else f"| {e['seed']} | failed: {e.get('error')} | | | | | | | |")
        L.append("")
    mem = extra.get("memory100k")
    if mem:
        if mem.get("status") == "ok":
            fi, sa = mem["fit"], mem["sample"]
            L += [f"**Peak memory, {mem['n_rows']:,} rows** ({mem['table']}; {mem['what']}): fit "
                  f"{fi['peak_rss_mb']:,.0f} MB peak RSS (peak after imports {fi['peak_rss_after_imports_mb']:,.0f} MB, with the "
                  f"table read {fi['peak_rss_after_data_mb']:,.0f} MB; fit {fi['fit_s']:.0f} s); sampling {sa['sample_rows']:,} "
                  f"rows in a fresh process {sa['peak_rss_mb']:,.0f} MB peak (peak with the model loaded "
                  f"{sa['peak_rss_after_load_mb']:,.0f} MB; {sa['sample_rows_per_s']:,.0f} rows/s).", ""]
        else:
            L += [f"**Peak memory**: failed — {mem.get('error')}", ""]
    s = extra.get("sampling_vs_rtf")
    if s:
        L += [f"**Sampling speed beside REaLTabFormer** ({s['table']}, {s['n_train']:,} training rows, "
              f"{s['rows_sampled']:,} rows sampled in one call by each; both fitted briefly, since the time to "
              "sample a row depends on the model's size and the row's length, not on how long it trained — "
              "REaLTabFormer's sampler also rejects invalid rows, which an undertrained model makes more of; "
              "REaLTabFormer runs the small GPT-2 of the main benchmark, its own default model is ~50× larger "
              "and slower):", "", "| method | params | epochs | fit s | sample rows/s | peak RSS MB |", "|---|---|---|---|---|---|"]
        for method, r in s["runs"].items():
            L.append(f"| {PEER_LABELS.get(method, method)} | {f(r.get('params'), ',.0f')} | "
                     f"{f(r.get('epochs_trained'), '.2f')} | {f(r.get('fit_s'), '.1f')} | "
                     f"{f(r.get('sample_rows_per_s'), ',.1f')} | {f(r.get('peak_rss_mb'), ',.0f')} |")
        L.append("")
    return L


def summary(data: dict, per_table: dict[str, list], glob: list) -> list[str]:
    """A few sentences, every number taken from the target rows and runs above."""
    names = [g for g, _, _ in next(iter(per_table.values()))] if per_table else []
    n = len(per_table)
    lines = []
    if per_table:
        hits = [(name, sum(1 for t in per_table.values() if t[i][1]), sum(1 for t in per_table.values() if t[i][1] is not None))
                for i, name in enumerate(names)]
        all_ok = [t for t, rows in per_table.items() if all(p is not False for _, p, _ in rows)]
        lines.append(f"- On {n} table(s), tabline (median of its seeds) met: "
                     + "; ".join(f"{name} on {k}/{m}" for name, k, m in hits) + ". "
                     + (f"Every goal held on {', '.join(all_ok)}." if all_ok else "No table met every goal."))
        gaps = {t: med(fid(r, "quality_ceiling") for r in ok(_by(data, t, "tabline")))
                - med(fid(r, "quality") for r in ok(_by(data, t, "tabline"))) for t in per_table
                if ok(_by(data, t, "tabline"))}
        if gaps:
            worst = max(gaps, key=gaps.get)
            lines.append(f"- Quality gap to the holdout ceiling: median over tables {statistics.median(gaps.values()):.3f}, "
                         f"largest on {worst} ({gaps[worst]:.3f}).")
        for peer in ("tabularargn", "gaussian_copula"):
            both = [t for t in per_table if ok(_by(data, t, peer)) and ok(_by(data, t, "tabline"))]
            if both:
                better_q = sum(med(fid(r, "quality") for r in ok(_by(data, t, "tabline")))
                               > med(fid(r, "quality") for r in ok(_by(data, t, peer))) for t in both)
                better_c = sum(med(fid(r, "c2st_vs_holdout") for r in ok(_by(data, t, "tabline")))
                               < med(fid(r, "c2st_vs_holdout") for r in ok(_by(data, t, peer))) for t in both)
                lines.append(f"- Beside {PEER_LABELS[peer]}: tabline's quality is higher on {better_q} of {len(both)} "
                             f"tables and its C2ST vs holdout lower (better) on {better_c} of {len(both)}.")
    for name, passed, numbers in glob:
        lines.append(f"- {name}: " + (f"{verdict(passed).strip('*')} — {numbers}." if passed is not None else f"{numbers}."))
    return lines


def gpu_section(gpu: dict[str, dict]) -> list[str]:
    """GPU runs (benchmarks/gpu.sh), shown generically: their top-level numbers."""
    if not gpu:
        return []  # the conditions already say it has not run
    L = ["### GPU", ""]
    for name, g in gpu.items():
        nums = {k: v for k, v in g.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        L.append(f"- `{name}`: " + ", ".join(f"{k} {_num(v)}" for k, v in list(nums.items())[:16]))
    return L + [""]


def _num(v: Any) -> str:
    if isinstance(v, str):
        return v
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def settings_section(data: dict) -> list[str]:
    first: Callable[[str], dict] = lambda m: next((r for r in data["runs"] if r["method"] == m and r["status"] == "ok"), {})  # noqa: E731
    L = ["### Settings", ""]
    for method in METHOD_ORDER:
        r = first(method)
        if not r:
            continue
        e = r.get("extra") or {}
        shown = e.get("resolved_config") or e.get("engine_settings") or r.get("config")
        L.append(f"- **{PEER_LABELS.get(method, method)}**: overrides `{json.dumps(r.get('config'))}`; resolved "
                 f"`{json.dumps(shown, sort_keys=True, default=str)}`")
    return L + [""]


def render(data: dict, source: str = "benchmarks/results/fidelity12") -> str:
    quick = any(r["conditions"].get("quick") for r in data["runs"]) or any(e.get("quick") for e in data["extra"].values())
    tables = _tables(data)
    per_table = {t: table_targets(_by(data, t, "tabline")) for t in tables}
    glob = global_targets(data["extra"])
    L = ["## Fidelity at the ceiling: tabline beside TabularARGN and GaussianCopula (issue 12)"
         + (" — QUICK TRIAL, not real results" if quick else ""), "",
         f"Generated by `python -m benchmarks.run --issue12` from the per-run JSON in {source}/ "
         f"({len(data['runs'])} runs, {len(data['extra'])} extra measurements); regenerate with "
         "`python -m benchmarks.run --issue12 --report-only`. Cells are median [min–max] over seeds; numbers in "
         "parentheses are the real-holdout ceiling (the same metric for the holdout, data no generator saw).", "",
         "### Summary", "", *summary(data, per_table, glob), "",
         "### Conditions", "", *conditions_section(data), ""]
    if per_table:
        names = [g for g, _, _ in next(iter(per_table.values()))]
        L += ["### Targets (tabline, median over seeds; exactness goals in every seed)", "",
              "| table | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for t, rows in per_table.items():
            L.append(f"| {t} | " + " | ".join(f"{verdict(p)} {num}" for _, p, num in rows) + " |")
        L.append("")
    L += ["| goal | result | numbers |", "|---|---|---|"]
    L += [f"| {name} | {verdict(p)} | {num} |" for name, p, num in glob]
    L.append("")
    for t in tables:
        c = next(r["conditions"] for r in data["runs"] if r["dataset"] == t)
        L += [f"### {t}", "", f"{c['n_train']:,} train / {c['n_holdout']:,} holdout rows (of "
              f"{c.get('n_train_uncapped') or c['n_train']:,} / {c.get('n_holdout_uncapped') or c['n_holdout']:,}), "
              f"{c['n_columns']} columns; target `{c['target']}` ({c['task']}). "
              f"{ALL_DATASETS[t].why if t in ALL_DATASETS else ''}", "", *method_table(data, t)]
    if data["extra"]:
        L += ["### Extra measurements", "", *extras_section(data["extra"])]
    L += gpu_section(data["gpu"]) + settings_section(data)
    return "\n".join(L).rstrip() + "\n"


def write_section(paths) -> None:
    """Render from ``paths.results`` into ``paths.results_md`` between the fidelity12 markers."""
    from benchmarks.fidelity12 import BEGIN, END

    try:
        source = str(paths.results.resolve().relative_to(ROOT))
    except ValueError:
        source = str(paths.results)
    replace_section(paths.results_md, BEGIN, END, render(load(paths.results), source))
