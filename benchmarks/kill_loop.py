"""Many random SIGKILLs of `tabline run`, each run resumed to the end and compared with an uninterrupted run.

The test suite kills a run a few times (tests/line/test_kill_resume.py); this script does it at scale and
records where every kill landed (start-up, the LM's fit, between batches) and whether anything was lost,
duplicated or changed. Results: benchmarks/results/kills/kills.json and a section of RESULTS.md.

    python -m benchmarks.kill_loop --rounds 20 --attempts 6          # about 30 min on 2 cores
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from killing import TEAM_YAML, kill_and_resume, timed_run  # noqa: E402

from benchmarks._common import atomic_write_text  # noqa: E402
from benchmarks.report import machine_info, replace_section  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "kills"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20, help="killed runs (each resumed to the end)")
    ap.add_argument("--attempts", type=int, default=6, help="starts per run, each killed at a random moment")
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--horizon", type=float, default=1.0,
                    help="kill moments are uniform over this fraction of an uninterrupted run's time")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out" / "kills")
    ap.add_argument("--report-only", action="store_true", help="re-render RESULTS.md from results/kills/kills.json")
    args = ap.parse_args()
    if args.report_only:
        report = json.loads((OUT / "kills.json").read_text())
        replace_section(ROOT / "benchmarks" / "RESULTS.md", "<!-- kills:begin -->", "<!-- kills:end -->", render(report))
        return

    from tabline.demo import load_demo_table

    args.work.mkdir(parents=True, exist_ok=True)
    data, team = args.work / "data.csv", args.work / "team.yaml"
    load_demo_table().head(400).to_csv(data, index=False)
    team.write_text(TEAM_YAML)
    ref_dir = args.work / "reference"
    if ref_dir.exists():
        import shutil
        shutil.rmtree(ref_dir)
    seconds = timed_run(data, team, ref_dir, args.rows)
    reference = pd.read_csv(ref_dir / "data.csv")
    rejected_ref = (ref_dir / "rejected.csv").read_bytes()
    rng = random.Random(args.seed)
    rounds = []
    started = time.time()
    for r in range(args.rounds):
        run_dir = args.work / f"round-{r:03d}"
        if run_dir.exists():
            import shutil
            shutil.rmtree(run_dir)
        log = kill_and_resume(data, team, run_dir, args.rows, attempts=args.attempts,
                              horizon_s=seconds * args.horizon, rng=rng)
        result = pd.read_csv(run_dir / "data.csv")
        same = result.equals(reference) and (run_dir / "rejected.csv").read_bytes() == rejected_ref
        rounds.append({"round": r, "kills": log.kills, "finished_early": log.finished_early, "rows": len(result),
                       "duplicates": int(result.duplicated().sum()), "same_as_uninterrupted": bool(same)})
        print(f"round {r}: {len(log.kills)} kills {[p for _, p in log.kills]} -> {len(result)} rows, same={same}",
              flush=True)
    report = {"machine": machine_info(), "conditions": {
        "table": "diamonds (shipped sample), first 400 rows", "rows_requested": args.rows, "team": TEAM_YAML,
        "rounds": args.rounds, "attempts_per_round": args.attempts, "kill_moment": f"uniform(0, {seconds * args.horizon:.1f} s) after each start",
        "uninterrupted_run_s": round(seconds, 1), "threads": "torch default (all cores)", "other_load": "none started by us",
        "seed": args.seed, "wall_s": round(time.time() - started, 1)}, "rounds": rounds}
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "kills.json", json.dumps(report, indent=1))
    replace_section(ROOT / "benchmarks" / "RESULTS.md", "<!-- kills:begin -->", "<!-- kills:end -->", render(report))


PHASES = {  # the run's state when the kill landed (read from the folder just after it)
    "before run.json": "start-up: imports, reading the table, writing the run folder (no run.json yet)",
    "fitting": "the LM's fit (run.json says fitting)",
    "running": "the line: judges' fit, batches, batch files, the final CSVs (run.json says running)",
    "done": "after the run was marked done (printing, exiting)",
}


def phase_kind(phase: str) -> str:
    return PHASES[phase.split(" (")[0]]


def render(report: dict) -> str:
    rounds, c = report["rounds"], report["conditions"]
    kills = [p for r in rounds for _, p in r["kills"]]
    by_phase = Counter(phase_kind(p) for p in kills)
    lost = sum(r["rows"] != c["rows_requested"] for r in rounds)
    dup = sum(r["duplicates"] for r in rounds)
    same = sum(r["same_as_uninterrupted"] for r in rounds)
    lines = [
        "## Random kills and resume (issue 11)", "",
        f"{len(kills)} SIGKILLs at random moments over {len(rounds)} runs of `tabline run` "
        f"({c['rows_requested']} rows, {c['table']}; each kill at {c['kill_moment']}, an uninterrupted run takes "
        f"{c['uninterrupted_run_s']} s), every run resumed to the end: **{same}/{len(rounds)} runs ended with "
        f"exactly the rows and rejected rows of the uninterrupted run**, {lost} with a wrong row count, {dup} "
        f"duplicated rows. Machine: {report['machine']['cpu']}, {report['machine']['cores']} cores; "
        f"wall time {c['wall_s'] / 60:.0f} min (`python -m benchmarks.kill_loop`, raw: results/kills/kills.json).", "",
        "| where the kill landed | kills |", "|---|---:|",
    ]
    lines += [f"| {k} | {n} |" for k, n in sorted(by_phase.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
