"""TabGRAA experiment (issue 5): does aligning the TabularLM against its SFT self beat training longer?

    python -m benchmarks.tabgraa.run [--datasets Benefits Computers DoctorContacts] [--seeds 0 1 2]
                                     [--methods ...] [--rounds 2] [--lr 1e-5] [--beta 1] [--rows 3000]
                                     [--tune] [--report-only]

Per (dataset, seed): one SFT TabularLM (the reference), then every method starts from a copy of it and runs
the same loop (`tabline.training.tabgraa.Aligner`) with the same number of optimizer steps per round:
extra SFT (the equal-compute control), DPO, KTO, NPO, GRAA (sigmoid and log-sigmoid forms) and GRAA with a
random reward (the ablation). Each model then samples len(holdout) rows at temperature 1, scored by
`tabline.eval.evaluate` against the holdout. Tables are capped at ``--rows`` train and holdout rows so the
whole grid fits in an hour on 2 cores.

Results: benchmarks/results/tabgraa/<dataset>-<seed>-<method>.json (resumable: finished ones are skipped);
summary (mean ± std over seeds) into RESULTS.md between markers. ``--tune`` runs the β/lr grid on one
dataset (Benefits, seed 0) and judges by the *held-out* classifier AUC the aligner itself reports (scorer
trained on one half of train, measured on the other half), never by the holdout used for the results.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.datasets import DATASETS, split

OUT = Path(__file__).resolve().parent.parent / "results" / "tabgraa"
RESULTS = Path(__file__).resolve().parent.parent / "RESULTS.md"
BEGIN, END = "<!-- tabgraa:begin -->", "<!-- tabgraa:end -->"
METHODS = {  # name -> AlignConfig changes (None: the SFT model itself, no extra training)
    "sft": None,
    "sft+extra_sft": {"loss": "sft"},
    "sft+dpo": {"loss": "dpo"},
    "sft+kto": {"loss": "kto"},
    "sft+npo": {"loss": "npo"},
    "sft+graa": {"loss": "graa"},
    "sft+graa_logsig": {"loss": "graa-logsig"},
    "sft+graa_random": {"loss": "graa", "reward": "random"},
}
METRICS = ["quality", "c2st_auc", "tstr_trtr_ratio", "dcr_share", "exact_copy_rate"]


def load(name: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    spec = DATASETS[name]
    train, holdout = split(name)
    train, holdout = (df.drop(columns=list(spec.drop), errors="ignore").head(rows).reset_index(drop=True)
                      for df in (train, holdout))  # split() already shuffled: head() is a random subset
    return train, holdout, spec.target


def sft_model(name: str, seed: int, train: pd.DataFrame, threads: int):
    from tabline.training import TabularLM, TabularLMConfig

    path = OUT / "models" / f"{name}-{seed}"
    if (path / "tabline.json").exists():
        return TabularLM.load(path), json.loads((path / "fit.json").read_text())["seconds"]
    started = time.perf_counter()
    lm = TabularLM(TabularLMConfig(seed=seed, threads=threads)).fit(train, progress=False)
    seconds = time.perf_counter() - started
    lm.save(path, {"fit.json": json.dumps({"seconds": seconds, "epochs": lm.log.epochs})})
    return lm, seconds


def run_method(name: str, seed: int, method: str, args, lm, train, holdout, target) -> dict:
    from tabline.eval import evaluate
    from tabline.training.tabgraa import AlignConfig, Aligner
    from tabline.training.policies import TabularLMPolicy

    out = OUT / f"{name}-{seed}-{method}.json"
    if out.exists() and not args.force:
        return json.loads(out.read_text())
    lm = copy.deepcopy(lm)
    history, seconds = [], 0.0
    changes = METHODS[method]
    if changes is not None:
        config = AlignConfig(**{"rounds": args.rounds, "learning_rate": args.lr, "beta": args.beta, "seed": seed,
                                **changes})
        aligner = Aligner(TabularLMPolicy(lm), train, config)
        started = time.perf_counter()
        history = [aligner.run_round(t) for t in range(args.rounds)]
        seconds = time.perf_counter() - started
    synthetic = lm.sample(len(holdout), seed=10_000 + seed, temperature=1.0)
    summary = evaluate(train, synthetic, holdout, target=target, schema=lm.schema, seed=0).summary()
    record = {"dataset": name, "seed": seed, "method": method, "align_seconds": round(seconds, 1),
              "rounds": args.rounds, "lr": args.lr, "beta": args.beta, "rows": len(train),
              "history": history, **{k: summary.get(k) for k in METRICS}, "ceiling": {
                  k: summary.get(f"{k}_ceiling") for k in METRICS}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=float))
    os.replace(tmp, out)
    return record


def tune(args) -> None:
    """β × lr grid for GRAA on Benefits seed 0, judged by the aligner's held-out AUC after the last round."""
    from tabline.training.tabgraa import AlignConfig, Aligner
    from tabline.training.policies import TabularLMPolicy
    from tabline.training.rewards import classifier_rewards

    train, _, _ = load("Benefits", args.rows)
    lm, _ = sft_model("Benefits", 0, train, args.threads)
    rows = []
    for lr in (3e-6, 1e-5, 3e-5, 1e-4):
        for beta in (1.0, 5.0):
            m = copy.deepcopy(lm)
            aligner = Aligner(TabularLMPolicy(m), train, AlignConfig(rounds=args.rounds, learning_rate=lr, beta=beta))
            for t in range(args.rounds):
                aligner.run_round(t)
            frame, _ = aligner.generate(args.rounds)  # after the last update, scored like every round
            _, info = classifier_rewards(aligner.scorer_real, aligner.heldout_real, frame, m.schema, seed=99)
            rows.append({"lr": lr, "beta": beta, "heldout_auc_start": aligner.history[0]["heldout_auc"],
                         "heldout_auc_end": info["heldout_auc"]})
            print(rows[-1], flush=True)
    (OUT / "tuning.json").write_text(json.dumps(rows, indent=1))


def report() -> str:
    recs = [json.loads(p.read_text()) for p in sorted(OUT.glob("*-*-*.json"))]
    if not recs:
        return "(no results yet)"
    df = pd.DataFrame(recs)
    lines = []
    for name in dict.fromkeys(df.dataset):
        d = df[df.dataset == name]
        ceiling = d.iloc[0]["ceiling"]
        lines += [f"### {name} ({d['rows'].iloc[0]} train rows, seeds {sorted(d.seed.unique().tolist())})", "",
                  "| method | " + " | ".join(METRICS) + " | align s |", "|---" * (len(METRICS) + 2) + "|",
                  "| *holdout (ceiling)* | " + " | ".join(_f(ceiling.get(k)) for k in METRICS) + " | |"]
        for method in METHODS:
            m = d[d.method == method]
            if m.empty:
                continue
            cells = [f"{m[k].mean():.3f} ± {m[k].std(ddof=0):.3f}" if m[k].notna().any() else "" for k in METRICS]
            lines.append(f"| {method} | " + " | ".join(cells) + f" | {m.align_seconds.mean():.0f} |")
        lines.append("")
    return "\n".join(lines)


def _f(x) -> str:
    return "" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def write_results(extra: str = "") -> None:
    from benchmarks.report import machine_info, replace_section

    info = machine_info()
    machine = f"Machine: {info['cpu']}, {info.get('cores_usable', info['cores'])} cores, torch {info['torch']}; {info['date']}."
    replace_section(RESULTS, BEGIN, END, f"## TabGRAA: generate → score → align (issue 5)\n\n{machine}\n\n{extra}{report()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["Benefits", "Computers", "DoctorContacts"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--tune", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    if args.tune:
        tune(args)
        return
    if not args.report_only:
        for seed in args.seeds:
            for name in args.datasets:
                train, holdout, target = load(name, args.rows)
                lm, fit_s = sft_model(name, seed, train, args.threads)
                for method in args.methods:
                    started = time.perf_counter()
                    rec = run_method(name, seed, method, args, lm, train, holdout, target)
                    print(f"{name} seed {seed} {method}: " + ", ".join(f"{k} {_f(rec[k])}" for k in METRICS)
                          + f" ({time.perf_counter() - started:.0f} s)", flush=True)
    write_results(conditions(args))
    print(report())


def conditions(args) -> str:
    """The run's settings and the tuning grid, as the section's preamble."""
    text = (f"Settings: {args.rounds} rounds, lr {args.lr:g}, β {args.beta:g}, B = 4, N = train rows per round, "
            f"classifier reward (random forest, 100 trees, scorer separation) unless named; train and holdout "
            f"capped at {args.rows} rows; every model samples len(holdout) rows at temperature 1. Mean ± std "
            f"(population) over seeds; the first row of each table is the real holdout (the ceiling). "
            f"`align s`: seconds of alignment (sampling, scoring, steps), 1 CPU thread per process.\n\n")
    tuning = OUT / "tuning.json"
    if tuning.exists():
        rows = json.loads(tuning.read_text())
        text += ("Tuning (GRAA, Benefits seed 0 only, judged by the aligner's own held-out classifier AUC — "
                 "scorer trained on one half of train, AUC on the other half — never by the holdout): "
                 + "; ".join(f"lr {r['lr']:g} β {r['beta']:g}: {r['heldout_auc_start']:.3f} → {r['heldout_auc_end']:.3f}"
                             for r in rows) + ".\n\n")
    return text


if __name__ == "__main__":
    main()
