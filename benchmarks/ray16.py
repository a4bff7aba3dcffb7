"""Issue 16: what Ray buys on this machine, and how many actors one driver can feed.

    python -m benchmarks.ray16            # ~10 minutes on 2 cores

1. **Sampling** 200,000 rows from one fitted TabularLM (diamonds, seed 0): the local chunked path
   (`tabline.training.chunks`), then `tabline.cluster.sampling` with 1 actor (2 CPUs) and 2 actors (1 CPU
   each) — the whole machine every time — median of 3 runs each, interleaved, so the ratios come from one
   run of this script under the same load. Ray's own start-up (`ray.init`) is not counted; each run's
   actor start-up and model shipping are. Every run's rows are checked equal to the local rows.
2. **The driver's share of the line**: a default line of 40,000 rows run locally and on 2 actors (rows
   checked equal); from the Ray run's trace, the driver's seconds (every node except the stations and
   judges, plus checkpoints and files between nodes) per generated row: the rows/s one driver can take in.
3. **QC alone**: sanity → objective → diversity on 4,096-row batches of the sample (judge scores made
   beforehand, accepted keys growing as in a run): rows/s.

From 2 and 1: actors one driver can feed = driver rows/s ÷ one 1-CPU actor's sampling rows/s.
Results: benchmarks/results/ray16.json and the RESULTS.md section between its markers.
"""
from __future__ import annotations

import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._common import BENCH_DIR, atomic_write_json
from benchmarks.datasets import split
from benchmarks.fidelity12 import versions
from benchmarks.measures import machine_load
from benchmarks.report import replace_section

OUT = BENCH_DIR / "results" / "ray16.json"
RESULTS = BENCH_DIR / "RESULTS.md"
BEGIN, END = "<!-- ray16:begin -->", "<!-- ray16:end -->"
ROWS, REPEATS, LINE_ROWS, BATCH = 200_000, 3, 40_000, 4096
QUICK = os.environ.get("RAY16_QUICK") == "1"  # a smoke run of the script itself: small, nothing written
if QUICK:
    ROWS, REPEATS, LINE_ROWS = 20_000, 1, 5_000


def sampling(lm, ray) -> dict:
    from tabline.cluster.connect import RayConfig
    from tabline.cluster.sampling import sample_on_ray
    from tabline.training.chunks import sample_in_chunks

    options = {"copies": "natural"}
    ways = {"local": None, "ray_1_actor": RayConfig(actors=1, cpus_per_actor=2),
            "ray_2_actors": RayConfig(actors=2, cpus_per_actor=1)}
    seconds: dict[str, list[float]] = {k: [] for k in ways}
    reference = None
    for _ in range(REPEATS):
        for name, config in ways.items():
            t = time.perf_counter()
            if config is None:
                frame = sample_in_chunks(lm, ROWS, seed=0, options=options).frame
            else:
                frame = sample_on_ray(ray, lm, ROWS, seed=0, config=config, options=options).frame
            seconds[name].append(time.perf_counter() - t)
            if reference is None:
                reference = frame
            else:
                pd.testing.assert_frame_equal(frame, reference)  # the same rows, every way, every time
            time.sleep(2)  # the previous actors' CPUs are released asynchronously
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return {"rows": ROWS, "repeats": REPEATS, "seconds": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
            "rows_per_s": {k: round(ROWS / v) for k, v in med.items()},
            "ratio_to_local": {k: round(med["local"] / v, 3) for k, v in med.items()}, "rows_equal": True}


def one_actor_rate(lm, ray) -> float:
    """Rows/s of one actor holding one CPU (the unit a driver feeds), on its own."""
    from tabline.cluster.connect import RayConfig
    from tabline.cluster.sampling import sample_on_ray

    t = time.perf_counter()
    sample_on_ray(ray, lm, 8_192 if QUICK else 40_960, seed=1, config=RayConfig(actors=1, cpus_per_actor=1), options={"copies": "natural"})
    return (8_192 if QUICK else 40_960) / (time.perf_counter() - t)


def line(lm, train: pd.DataFrame, tmp: Path) -> dict:
    from tabline.agents.team import Team
    from tabline.cluster.connect import RayConfig
    from tabline.line.assembly import AssemblyLine
    from tabline.run_folder import read_trace

    fitted = AssemblyLine(Team(seed=0), lm=lm).fit(train, progress=False)
    t = time.perf_counter()
    local = fitted.run(LINE_ROWS, tmp / "local", progress=False)
    local_s = time.perf_counter() - t
    fitted.executor = RayConfig(actors=2, cpus_per_actor=1)  # the same fitted agents, now on Ray
    t = time.perf_counter()
    on_ray = fitted.run(LINE_ROWS, tmp / "ray", progress=False)
    ray_s = time.perf_counter() - t
    pd.testing.assert_frame_equal(on_ray.data, local.data)
    trace = read_trace(on_ray.trace_path)
    remote = trace.node.str.startswith("station_") | (trace.node == "judges")
    node_s = float(trace.seconds.sum())
    driver_s = float(trace.seconds[~remote].sum()) + max(0.0, on_ray.report["seconds"] - node_s)
    generated = on_ray.report["generated"]
    return {"rows": LINE_ROWS, "generated": generated, "batches": on_ray.report["batches"],
            "local_seconds": round(local_s, 2), "ray_2_actors_seconds": round(ray_s, 2),
            "ratio_to_local": round(local_s / ray_s, 3), "rows_equal": True,
            "driver_seconds": round(driver_s, 2), "driver_rows_per_s": round(generated / driver_s),
            "driver_seconds_by_node": trace[~remote].groupby("node").seconds.sum().round(3).to_dict()}


def qc_alone(fitted_line, sample: pd.DataFrame) -> dict:
    """Sanity → objective → diversity on BATCH-row batches, timed; the judges' scores made beforehand."""
    from tabline.qc.chain import Verdicts
    from tabline.qc.sanity import row_keys

    agents = fitted_line.agents
    qc, schema = agents.qc, agents.schema
    keys: set[int] = set()
    pool_x = np.empty((0, 0))
    seconds = 0.0
    for b, start in enumerate(range(0, len(sample), BATCH)):
        batch = sample.iloc[start:start + BATCH].reset_index(drop=True)
        scores = {}
        for judge in agents.judges:
            scores.update(judge.judge(batch).scores)
        t = time.perf_counter()
        verdicts = Verdicts.start(batch.index)
        verdicts.apply(qc.sanity(batch, accepted_keys=keys))
        verdicts.apply(qc.objective(scores, verdicts.passing, seed=b))
        result, _, _ = qc.diversity(batch, verdicts.passing, pool_x)
        verdicts.apply(result)
        keys.update(row_keys(batch.loc[verdicts.passing], schema).tolist())
        seconds += time.perf_counter() - t
    return {"rows": len(sample), "batch_rows": BATCH, "seconds": round(seconds, 2),
            "rows_per_s": round(len(sample) / seconds)}


def main() -> None:
    import ray

    from tabline.agents.team import Team
    from tabline.line.assembly import AssemblyLine
    from tabline.training import TabularLM, TabularLMConfig
    from tabline.training.chunks import sample_in_chunks

    train, _ = split("diamonds")
    t = time.perf_counter()
    lm = TabularLM(TabularLMConfig(seed=0, time_budget_s=10 if QUICK else 60)).fit(train, progress=False)
    fit_s = time.perf_counter() - t
    tmp = Path(tempfile.mkdtemp(prefix="ray16-"))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        t = time.perf_counter()
        ray.get(ray.remote(lambda: 1).remote())
        init_s = time.perf_counter() - t
        rec = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "processor": platform.processor(),
                           "python": platform.python_version(), "ray": ray.__version__},
               "load_before": machine_load(), "train_rows": len(train), "fit_seconds": round(fit_s, 1),
               "model_parameters": lm.num_parameters(), "ray_first_task_seconds": round(init_s, 2),
               "sampling": sampling(lm, ray)}
        rec["one_1cpu_actor_rows_per_s"] = round(one_actor_rate(lm, ray))
        rec["line"] = line(lm, train, tmp)
        fitted = AssemblyLine(Team(seed=0), lm=lm).fit(train, progress=False)
        rec["qc_alone"] = qc_alone(fitted, sample_in_chunks(lm, 8_192 if QUICK else 81_920, seed=2, options={"copies": "reject"}).frame)
        rec["actors_one_driver_feeds"] = round(rec["line"]["driver_rows_per_s"] / rec["one_1cpu_actor_rows_per_s"], 1)
        rec["load_after"] = machine_load()
        rec["versions"] = versions()
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    if not QUICK:
        atomic_write_json(OUT, rec)
        write_results(rec)
    print(report(rec))


def report(rec: dict) -> str:
    s, ln, qc = rec["sampling"], rec["line"], rec["qc_alone"]
    r = s["ratio_to_local"]
    return (
        f"Generated by `python -m benchmarks.ray16` from benchmarks/results/ray16.json, on this machine "
        f"({rec['machine']['cpus']} cores, shared; load averages {rec['load_before']['loadavg']} before, "
        f"{rec['load_after']['loadavg']} after), Ray {rec['machine']['ray']} started locally with 2 CPUs. One "
        f"TabularLM ({rec['model_parameters']:,} parameters) fitted on diamonds ({rec['train_rows']:,} rows).\n\n"
        f"- **Sampling {s['rows']:,} rows** (median of {s['repeats']}, interleaved; actor start-up and model "
        f"shipping included, Ray's start-up not): local {s['rows_per_s']['local']:,} rows/s; 1 actor with 2 CPUs "
        f"{s['rows_per_s']['ray_1_actor']:,} rows/s (**×{r['ray_1_actor']:.2f}** of local); 2 actors with 1 CPU "
        f"each {s['rows_per_s']['ray_2_actors']:,} rows/s (**×{r['ray_2_actors']:.2f}**). The rows were the same "
        f"every time. On one 2-core machine Ray can at best match the local path, which already uses both cores, "
        f"and pays for starting its actors and shipping the model; more machines were not measured here.\n"
        f"- **The line, {ln['rows']:,} rows** (default team, {ln['batches']} batches): local {ln['local_seconds']} s, "
        f"on 2 actors {ln['ray_2_actors_seconds']} s (×{ln['ratio_to_local']:.2f}), the same rows. Here the driver's "
        f"QC, the remote judge and both replicas share the same 2 cores, so the replicas cannot run at full "
        f"speed beside the driver; on a cluster the driver has its own cores.\n"
        f"- **What one driver can take in**: its own work in that Ray run (every node but the stations and judges, "
        f"plus checkpoints and batch files) came to {ln['driver_seconds']} s for {ln['generated']:,} generated rows: "
        f"**{ln['driver_rows_per_s']:,} rows/s**. QC alone (sanity → objective → diversity, {qc['batch_rows']:,}-row "
        f"batches) runs at {qc['rows_per_s']:,} rows/s. One actor on one CPU samples "
        f"{rec['one_1cpu_actor_rows_per_s']:,} rows/s, so **one driver feeds about {rec['actors_one_driver_feeds']} "
        f"such actors** before it becomes the bottleneck (docs/ray.md says what changes past that).")


def write_results(rec: dict) -> None:
    replace_section(RESULTS, BEGIN, END, f"## Ray: sampling and the line on actors (issue 16)\n\n{report(rec)}")


if __name__ == "__main__":
    main()
