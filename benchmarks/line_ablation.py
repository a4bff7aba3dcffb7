"""Assembly-line ablations (issue 3): line vs plain TabularLM sampling, arm policies, rebalancing, overhead.

    python -m benchmarks.line_ablation [--datasets diamonds HI Benefits] [--seeds 0 1 2] [--rows 5000]
                                       [--fit-budget 60] [--report-only]

One TabularLM per (dataset, seed), shared by every variant of that pair so the variants differ only in the
line. Each variant's metrics go to benchmarks/results/line/<dataset>-<seed>-<variant>.json (resumable:
finished ones are skipped); the summary table is written into RESULTS.md between markers.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.datasets import DATASETS, split

OUT = Path(__file__).parent / "results" / "line"
RESULTS = Path(__file__).parent / "RESULTS.md"
BEGIN, END = "<!-- line-ablation:begin -->", "<!-- line-ablation:end -->"


def variants(target: str, minority) -> dict[str, dict]:
    return {
        "line": {},
        "line_t2_score": {"judges": [{"kind": "classifier", "mode": "score", "threshold": 0.4},
                                     {"kind": "rules", "threshold": 1.0}]},
        "arms_ucb1": {"coordinator": {"partitions": "auto"}, "bandit": {"policy": "ucb1"}},
        "arms_uniform": {"coordinator": {"partitions": "auto"}, "bandit": {"policy": "uniform"}},
        "arms_greedy": {"coordinator": {"partitions": "auto"}, "bandit": {"policy": "greedy"}},
        "rebalance_50": {"evolvers": [{"kind": "rebalance", "column": target, "value": minority, "ratio": 0.5}]},
    }


def minority_recall(train_syn: pd.DataFrame, holdout: pd.DataFrame, target: str, minority, schema) -> float:
    from tabline.agents.judges import RowEncoder
    from tabline.eval.models import boosted_model

    enc = RowEncoder(schema, exclude=(target,)).fit(pd.concat([train_syn, holdout]))
    y = (train_syn[target].astype(str) == str(minority)).astype(int).to_numpy()
    model = boosted_model("classification", y, enc.categorical, seed=0).fit(enc.transform(train_syn), y)
    truth = (holdout[target].astype(str) == str(minority)).to_numpy()
    pred = model.predict(enc.transform(holdout)).astype(bool)
    return float((pred & truth).sum() / max(1, truth.sum()))


def run_pair(name: str, seed: int, rows: int, fit_budget: float) -> None:
    from tabline.agents.team import Team
    from tabline.eval import evaluate
    from tabline.line.assembly import AssemblyLine
    from tabline.training import TabularLM, TabularLMConfig

    spec = DATASETS[name]
    train, holdout = split(name)
    todo = ["plain", *variants(spec.target, None)]
    if all((OUT / f"{name}-{seed}-{v}.json").exists() for v in todo):
        return
    lm = TabularLM(TabularLMConfig(seed=seed, time_budget_s=fit_budget)).fit(train, progress=False)
    schema = lm.schema
    minority = train[spec.target].value_counts().idxmin()
    target = spec.target if spec.task == "classification" else None

    def record(variant: str, syn: pd.DataFrame, extra: dict) -> None:
        rep = evaluate(train, syn, holdout, target=spec.target, schema=schema, seed=seed).summary()
        out = {"dataset": name, "seed": seed, "variant": variant, **{k: rep.get(k) for k in (
            "quality", "c2st_auc", "tstr_trtr_ratio", "dcr_share", "exact_copy_rate")}, **extra}
        if target:
            out["minority_share"] = float((syn[target].astype(str) == str(minority)).mean())
            out["minority_recall"] = minority_recall(syn, holdout, target, minority, schema)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{name}-{seed}-{variant}.json").write_text(json.dumps(out, indent=1, default=float))
        print(name, seed, variant, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}, flush=True)

    t = time.perf_counter()
    plain = lm.sample(rows, seed=seed + 100)
    record("plain", plain, {"seconds": time.perf_counter() - t, "yield": 1.0})
    for variant, settings in variants(spec.target, minority).items():
        if variant == "rebalance_50" and not target:
            continue
        team = Team.from_dict({"target": target, "seed": seed, **settings})
        tmp = Path(tempfile.mkdtemp(prefix="line-"))
        try:
            t = time.perf_counter()
            line = AssemblyLine(team, lm=lm).fit(train, schema, progress=False)
            fit_s = time.perf_counter() - t
            t = time.perf_counter()
            result = line.run(rows, tmp / "run", progress=False)
            run_s = time.perf_counter() - t
            stations = sum(v for k, v in result.report["seconds_by_node"].items() if k.startswith("station_"))
            t = time.perf_counter()
            lm.sample(result.report["generated"], seed=seed + 200)
            plain_same = time.perf_counter() - t
            record(variant, result.data, {"seconds": run_s, "line_fit_seconds": fit_s, "yield": result.report["yield"],
                                          "station_seconds": stations, "plain_seconds_same_rows": plain_same,
                                          "overhead_vs_stations": (run_s - stations) / stations})
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def report() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    if not rows:
        return "(no results yet)"
    df = pd.DataFrame(rows)
    metrics = ["quality", "c2st_auc", "tstr_trtr_ratio", "dcr_share", "exact_copy_rate", "yield",
               "minority_share", "minority_recall", "seconds", "overhead_vs_stations"]
    lines = [f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}; "
             f"medians over seeds {sorted(df.seed.unique().tolist())}; {len(df)} runs.", ""]
    for name, g in df.groupby("dataset"):
        lines += [f"**{name}**", "", "| variant | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        order = ["plain", "line", "line_t2_score", "arms_ucb1", "arms_uniform", "arms_greedy", "rebalance_50"]
        for v in order:
            h = g[g.variant == v]
            if h.empty:
                continue
            cells = []
            for m in metrics:
                vals = h[m].dropna() if m in h else pd.Series(dtype=float)
                cells.append("" if vals.empty else f"{vals.median():.3f}")
            lines.append(f"| {v} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_results() -> None:
    from benchmarks.report import replace_section

    replace_section(RESULTS, BEGIN, END, f"## Assembly line ablations (issue 3)\n\n{report()}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["diamonds", "HI", "Benefits"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--fit-budget", type=float, default=60.0)
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        for seed in args.seeds:
            for name in args.datasets:
                run_pair(name, seed, args.rows, args.fit_budget)
                write_results()
    write_results()
    print(report())


if __name__ == "__main__":
    main()
