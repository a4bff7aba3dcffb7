"""Render benchmarks/RESULTS.md from the raw results (out/results.json). No model code runs here."""
from __future__ import annotations

import os
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._common import atomic_write_text
from benchmarks.peers import PEER_LABELS, RTF_DEFAULT_GPT2

METHOD_ORDER = ["tabline", "gaussian_copula", "ctgan", "tvae", "realtabformer", "tabularargn"]

# tabline targets (checked on the median over tabline's seeds)
QUALITY_GAP = 0.015
C2ST_MAX = 0.65
TSTR_FRACTION = 0.95
DCR_RANGE = (0.45, 0.55)
FIT_MAX_S = 300.0
SAMPLE_SPEED_VS_RTF = 3.0


# ------------------------------------------------------------- machine info
def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = cpu
    info["cores"] = os.cpu_count()
    try:
        info["cores_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["ram_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info["os"] = platform.platform()
    info["python"] = platform.python_version()
    for mod in ("torch", "pandas", "numpy", "sklearn", "sdmetrics", "sdv", "ctgan", "transformers", "tabline"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?")
        except Exception:
            info[mod] = None
    return info


# --------------------------------------------------------------- formatting
def fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, (int,)) and not isinstance(x, bool):
        return f"{x:,}"
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if x != x:  # NaN
        return "—"
    return f"{x:.{nd}f}"


def fmt_num(x: Any, kind: str) -> str:
    if x is None:
        return "—"
    if kind == "s":
        return f"{x:.1f}" if x < 100 else f"{x:.0f}"
    if kind == "rate":
        return f"{x:,.0f}"
    if kind == "mb":
        return f"{x:,.0f}"
    if kind == "params":
        return f"{x / 1e6:.2f}M" if x >= 1e5 else f"{int(x):,}"
    if kind == "pct":
        return f"{100 * x:.2f}%"
    return fmt(x)


def agg(values: list[float | None]) -> tuple[float | None, float | None, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def cell(values: list[float | None], kind: str = "") -> str:
    med, lo, hi = agg(values)
    if med is None:
        return "—"
    s = fmt_num(med, kind)
    if len([v for v in values if v is not None]) > 1 and lo != hi:
        s += f" [{fmt_num(lo, kind)} to {fmt_num(hi, kind)}]"
    return s


# ------------------------------------------------------------------ helpers
def _get(rec: dict, key: str) -> Any:
    """A metric from a run record: timing fields first, then the eval summary."""
    if key in rec:
        return rec[key]
    ev = rec.get("eval") or {}
    return (ev.get("summary") or {}).get(key)


def _runs_for(data: dict, dataset: str) -> dict[str, list[dict]]:
    by_method: dict[str, list[dict]] = {}
    for key, rec in sorted(data.get("runs", {}).items()):
        ds, method, _ = key.split("/")
        if ds == dataset:
            by_method.setdefault(method, []).append(rec)
    return by_method


def _ok(recs: list[dict]) -> list[dict]:
    return [r for r in recs if r.get("status") == "ok"]


def _evaluated(recs: list[dict]) -> list[dict]:
    return [r for r in _ok(recs) if (r.get("eval") or {}).get("status") == "ok"]


def _pair(recs: list[dict], key: str, kind: str = "") -> str:
    """'synthetic (ceiling)' with the synthetic value aggregated over seeds."""
    ev = _evaluated(recs)
    if not ev:
        return "—"
    syn = cell([_get(r, key) for r in ev], kind)
    ceil = agg([_get(r, f"{key}_ceiling") for r in ev])[0]
    return f"{syn} ({fmt_num(ceil, kind)})" if ceil is not None else syn


def _utility_metric(recs: list[dict]) -> str:
    for r in _evaluated(recs):
        m = (r.get("eval") or {}).get("utility_metric")
        if m:
            return m
    return ""


# ------------------------------------------------------------------ targets
def targets(data: dict, dataset: str) -> list[tuple[str, str, str]]:
    """(target, PASS/MISS/n/a, numbers) for tabline on one dataset."""
    runs = _runs_for(data, dataset)
    tl = runs.get("tabline", [])
    ev = _evaluated(tl)
    ok = _ok(tl)
    out: list[tuple[str, str, str]] = []

    def verdict(ok_: bool | None) -> str:
        return "n/a" if ok_ is None else ("PASS" if ok_ else "MISS")

    def med(key: str, recs: list[dict]) -> float | None:
        return agg([_get(r, key) for r in recs])[0]

    q, qc = med("quality", ev), med("quality_ceiling", ev)
    out.append((f"quality within {QUALITY_GAP} of holdout ceiling",
                verdict(None if q is None or qc is None else q >= qc - QUALITY_GAP),
                "—" if q is None or qc is None else f"{q:.4f} vs ceiling {qc:.4f} (gap {qc - q:+.4f})"))
    c = med("c2st_auc", ev)
    out.append((f"C2ST AUC ≤ {C2ST_MAX}", verdict(None if c is None else c <= C2ST_MAX),
                "—" if c is None else f"{c:.4f}"))
    t, tr = med("tstr", ev), med("trtr", ev)
    metric = _utility_metric(tl) or "metric"
    if t is None or tr is None:
        out.append((f"TSTR ≥ {TSTR_FRACTION} × TRTR", "n/a", "—"))
    elif tr <= 0:
        out.append((f"TSTR ≥ {TSTR_FRACTION} × TRTR", "n/a", f"TRTR {metric} {tr:.4f} ≤ 0"))
    else:
        out.append((f"TSTR ≥ {TSTR_FRACTION} × TRTR", verdict(t >= TSTR_FRACTION * tr),
                    f"{metric} {t:.4f} vs {tr:.4f} (ratio {t / tr:.3f})"))
    dcr = med("dcr_share", ev)
    out.append((f"DCR share in {DCR_RANGE[0]}–{DCR_RANGE[1]}",
                verdict(None if dcr is None else DCR_RANGE[0] <= dcr <= DCR_RANGE[1]),
                "—" if dcr is None else f"{dcr:.4f}"))
    ec, ecc = med("exact_copy_rate", ev), med("exact_copy_rate_ceiling", ev)
    out.append(("exact copies ≤ holdout's", verdict(None if ec is None or ecc is None else ec <= ecc),
                "—" if ec is None or ecc is None else f"{100 * ec:.2f}% vs holdout {100 * ecc:.2f}%"))
    fit_med, _, fit_max = agg([r.get("fit_s") for r in ok])
    out.append((f"fit ≤ {FIT_MAX_S:.0f} s", verdict(None if fit_med is None else fit_med <= FIT_MAX_S),
                "—" if fit_med is None else f"{fit_med:.1f} s (max over seeds {fit_max:.1f} s)"))
    rate = med("sample_rows_per_s", ok)
    rtf_rate = med("sample_rows_per_s", _ok(runs.get("realtabformer", [])))
    if rate is None or rtf_rate is None:
        out.append((f"sampling rows/s ≥ {SAMPLE_SPEED_VS_RTF:g}× REaLTabFormer's", "n/a",
                    "—" if rate is None else f"{rate:,.0f} rows/s; no REaLTabFormer run"))
    else:
        out.append((f"sampling rows/s ≥ {SAMPLE_SPEED_VS_RTF:g}× REaLTabFormer's",
                    verdict(rate >= SAMPLE_SPEED_VS_RTF * rtf_rate),
                    f"{rate:,.0f} vs {rtf_rate:,.0f} rows/s ({rate / rtf_rate:.1f}×)"))
    return out


# ------------------------------------------------------------------- render
def render(data: dict) -> str:
    m = data.get("machine") or machine_info()
    quick = data.get("quick", False)
    L: list[str] = []
    L.append("# Benchmark: tabline vs peer synthesizers" + (" (QUICK TRIAL — not real results)" if quick else ""))
    L.append("")
    L.append("Generated by `python -m benchmarks.run` (see benchmarks/README.md); raw numbers in "
             "`benchmarks/out/results.json`. Regenerate this file with `python -m benchmarks.run --report-only`.")
    L.append("")
    L.append("## Machine")
    L.append("")
    cores = f"{m.get('cores')}" + (f" ({m.get('cores_usable')} usable)" if m.get("cores_usable") not in (None, m.get("cores")) else "")
    L.append(f"- CPU: {m.get('cpu')} — {cores} cores, {m.get('ram_gib')} GiB RAM, no GPU used")
    L.append(f"- OS: {m.get('os')}")
    L.append(f"- Python {m.get('python')}, torch {m.get('torch')}, pandas {m.get('pandas')}, numpy {m.get('numpy')}, "
             f"scikit-learn {m.get('sklearn')}, sdmetrics {m.get('sdmetrics')}, transformers {m.get('transformers')}, "
             f"tabline {m.get('tabline')}")
    L.append(f"- Peers: sdv {m.get('sdv')} (ctgan {m.get('ctgan')}); REaLTabFormer: {_rtf_versions(data)}; "
             f"TabularARGN: {_argn_versions(data)}")
    L.append(f"- Threads per method process: {data.get('threads', '?')}; methods run one at a time")
    L.append(f"- Run date: {m.get('date')}; results updated {data.get('updated', '?')}")
    L.append("")
    notes = Path(__file__).with_name("run_notes.md")  # conditions of the run that the numbers cannot show
    if notes.exists() and not quick:
        L.append("## Conditions of this run")
        L.append("")
        L.append(notes.read_text(encoding="utf-8").strip())
        L.append("")
    L.append("## How to read")
    L.append("")
    L.append("- Every synthetic table has `len(holdout)` rows and is scored by `tabline.eval.evaluate(train, synthetic, "
             "holdout, target, seed=0)`. Values in parentheses after a metric are its **ceiling**: the same metric "
             "computed for the real holdout (data the generator never saw) — the best a generator can honestly reach.")
    L.append("- quality: SDMetrics quality score (higher is better). C2ST AUC: classifier telling train rows from the "
             "table's rows (0.5 = indistinguishable). TSTR / TRTR: a model trained on synthetic (TSTR) or on train "
             "(TRTR), tested on holdout. DCR share: share of rows nearer to train than to holdout (0.5 ideal; ≫0.5 "
             "means memorisation). exact copies: share of rows identical to a train row (holdout's rate in parentheses).")
    L.append("- fit s: wall time of the fit call. sample rows/s: `len(holdout)` rows in one timed call. peak RSS: "
             "`ru_maxrss` of the method's own process (imports + data + fit + sample). params: trainable parameters "
             "of the network that generates rows (see Settings).")
    L.append("- tabline rows: median over seeds with [min to max] in brackets; peers: one seed each.")
    L.append("")

    datasets = list(data.get("datasets", {}))
    if datasets:
        L.append("## Targets at a glance (tabline, median over seeds)")
        L.append("")
        rows = {ds: targets(data, ds) for ds in datasets}
        names = [t[0] for t in next(iter(rows.values()))]
        L.append("| target | " + " | ".join(datasets) + " |")
        L.append("|---|" + "---|" * len(datasets))
        for i, name in enumerate(names):
            L.append(f"| {name} | " + " | ".join(rows[ds][i][1] for ds in datasets) + " |")
        L.append("")

    for ds in datasets:
        meta = data["datasets"][ds]
        runs = _runs_for(data, ds)
        L.append(f"## {ds}")
        L.append("")
        L.append(f"{meta.get('package', '')} `{ds}`: {meta.get('n_total', '?')} rows → train {meta.get('n_train')}, "
                 f"holdout {meta.get('n_holdout')} (split seed {meta.get('split_seed')}); target `{meta.get('target')}` "
                 f"({meta.get('task')}) — {meta.get('target_why', '')}"
                 + (f" Dropped: {', '.join(meta['dropped_columns'])}." if meta.get("dropped_columns") else ""))
        L.append("")
        metric = next((_utility_metric(r) for r in runs.values() if _utility_metric(r)), "")
        L.append(f"| method | runs | quality (ceiling) | C2ST AUC (ceiling) | TSTR / TRTR{f' ({metric})' if metric else ''} "
                 "| DCR share (ceiling) | exact copies (holdout) | fit s | sample rows/s | peak RSS MB | params |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        problems: list[str] = []
        for method in METHOD_ORDER + sorted(set(runs) - set(METHOD_ORDER)):
            recs = runs.get(method)
            if not recs:
                continue
            ok, ev = _ok(recs), _evaluated(recs)
            label = PEER_LABELS.get(method, method)
            seeds = ",".join(str(r.get("seed")) for r in ok)
            n_runs = f"{len(ok)}/{len(recs)}" + (f" (s{seeds})" if method == "tabline" and seeds else "")
            if ev:
                tstr = cell([_get(r, "tstr") for r in ev])
                trtr = agg([_get(r, "trtr") for r in ev])[0]
                utility = f"{tstr} / {fmt(trtr)}"
            else:
                utility = "—"
            L.append("| " + " | ".join([
                label, n_runs,
                _pair(recs, "quality"), _pair(recs, "c2st_auc"), utility,
                _pair(recs, "dcr_share"), _pair(recs, "exact_copy_rate", "pct"),
                cell([r.get("fit_s") for r in ok], "s"),
                cell([r.get("sample_rows_per_s") for r in ok], "rate"),
                cell([r.get("peak_rss_mb") for r in ok], "mb"),
                cell([r.get("params") for r in ok], "params"),
            ]) + " |")
            for r in recs:
                if r.get("status") != "ok":
                    problems.append(f"{label} seed {r.get('seed')}: run failed — {r.get('error')}")
                elif (r.get("eval") or {}).get("status") == "error":
                    problems.append(f"{label} seed {r.get('seed')}: evaluation failed — {r['eval'].get('error')}")
                elif not r.get("eval"):
                    problems.append(f"{label} seed {r.get('seed')}: not evaluated yet")
        L.append("")
        if problems:
            L.append("Problems:")
            L.extend(f"- {p}" for p in problems)
            L.append("")
        L.append(f"### Targets ({ds}, tabline median over seeds)")
        L.append("")
        L.append("| target | result | value |")
        L.append("|---|---|---|")
        for name, verdict, numbers in targets(data, ds):
            L.append(f"| {name} | **{verdict}** | {numbers} |")
        L.append("")

    L.extend(_settings_section(data))
    return "\n".join(L) + "\n"


def _rtf_versions(data: dict) -> str:
    for rec in data.get("runs", {}).values():
        if rec.get("method") == "realtabformer" and rec.get("status") == "ok":
            e = rec.get("extra", {})
            return (f"realtabformer {e.get('realtabformer_version')}, transformers {e.get('transformers_version')}, "
                    f"torch {rec.get('torch')} (own venv benchmarks/.venv-rtf)")
    return "no successful run"


def _argn_versions(data: dict) -> str:
    for rec in data.get("runs", {}).values():
        if rec.get("method") == "tabularargn" and rec.get("status") == "ok":
            e = rec.get("extra", {})
            return (f"mostlyai-engine {e.get('mostlyai_engine_version')}, torch {rec.get('torch')} "
                    "(own venv benchmarks/.venv-argn)")
    return "no successful run"


def _settings_section(data: dict) -> list[str]:
    L = ["## Settings", ""]
    seen: dict[str, dict] = {}
    for rec in data.get("runs", {}).values():
        method = rec.get("method")
        if method and method not in seen and rec.get("status") == "ok":
            seen[method] = rec
    for method in METHOD_ORDER:
        rec = seen.get(method)
        if rec is None:
            continue
        L.append(f"- **{PEER_LABELS.get(method, method)}**: settings `{_json(rec.get('config'))}`"
                 + (f"; params: {rec.get('params_note')}" if rec.get("params_note") else ""))
        extra = rec.get("extra") or {}
        if method == "tabline" and extra.get("resolved_config"):
            L.append(f"  - resolved TabularLMConfig: `{_json(extra['resolved_config'])}`")
        if method in ("ctgan", "tvae", "gaussian_copula") and extra.get("resolved_config"):
            L.append(f"  - sdv parameters: `{_json(extra['resolved_config'])}`")
        if method == "realtabformer":
            d = RTF_DEFAULT_GPT2
            L.append(f"  - small GPT-2 ({rec['config'].get('n_layer')} layers, n_embd {rec['config'].get('n_embd')}, "
                     f"{rec['config'].get('n_head')} heads); REaLTabFormer's own default is GPT2Config(n_layer={d['n_layer']}) "
                     f"= n_embd {d['n_embd']}, {d['n_head']} heads, n_positions {d['n_positions']}: per dataset "
                     + ", ".join(f"{r.get('dataset')} {fmt_num(r.get('params'), 'params')} (default "
                                 f"{fmt_num((r.get('extra') or {}).get('default_model_params'), 'params')})"
                                 for r in data['runs'].values()
                                 if r.get('method') == 'realtabformer' and r.get('status') == 'ok'))
            L.append("  - epochs actually trained: " + ", ".join(
                f"{r.get('dataset')} {(r.get('extra') or {}).get('epochs_done', 0):.2f}"
                + (" (stopped by time budget)" if (r.get('extra') or {}).get('stopped_by_time_budget') else "")
                for r in data['runs'].values()
                if r.get('method') == 'realtabformer' and r.get('status') == 'ok'))
            L.append("  - trained with `fit(df, n_critic=0)`: plain training for `epochs` epochs (its default "
                     "n_critic=5 adds sensitivity-based early stopping with repeated sampling, far slower on CPU)")
        if method == "tabularargn":
            ok = [r for r in data["runs"].values() if r.get("method") == "tabularargn" and r.get("status") == "ok"]
            L.append(f"  - TabularARGN arguments (engine defaults unless set above): "
                     f"`{_json((rec.get('extra') or {}).get('engine_settings'))}`")
            L.append("  - trained: " + ", ".join(
                f"{r.get('dataset')} {(r.get('extra') or {}).get('epochs_done') or 0:.2f} epochs "
                f"({(r.get('extra') or {}).get('stopped_by', '?')})" for r in ok))
    L.append("")
    return L


def _json(x: Any) -> str:
    import json

    return json.dumps(x, sort_keys=True, default=str)


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put ``section`` between the ``begin``/``end`` markers of ``path`` (appended if the markers are absent)."""
    text = path.read_text() if path.exists() else ""
    block = f"{begin}\n{section}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(path, text)


def write_results_md(data: dict, path: Path | str) -> None:
    """Render the fidelity benchmark's part of RESULTS.md: the file up to its first marked section; the marked
    sections after it (speed, issue 12, ...) belong to other benchmarks and are kept as they are."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    tail = re.search(r"^<!-- [\w-]+:begin -->$", old, flags=re.M)
    atomic_write_text(path, render(data) + ("\n" + old[tail.start():] if tail else ""))
