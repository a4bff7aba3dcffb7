"""`tabline demo`: learn a real table shipped with the package, generate a synthetic copy, score it.

Everything lands in one run folder: the splits, the model, the synthetic table, the report (JSON) and a
short summary. The folder is written atomically, so an interrupted demo leaves nothing half-done.

Example:
    >>> df = load_demo_table()
    >>> df.shape
    (4000, 10)
"""
from __future__ import annotations

import time
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from tabline.io import atomic_directory, read_table

DEMO_TARGET = "cut"


def load_demo_table() -> pd.DataFrame:
    """The shipped sample: 4,000 rows of ggplot2's ``diamonds`` (see tabline/data/README.md)."""
    return read_table(resources.files("tabline") / "data" / "diamonds.csv")


def split(df: pd.DataFrame, holdout_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded random train/holdout split with fresh indexes."""
    perm = np.random.default_rng(seed).permutation(len(df))
    n_hold = int(round(holdout_fraction * len(df)))
    return df.iloc[perm[n_hold:]].reset_index(drop=True), df.iloc[perm[:n_hold]].reset_index(drop=True)


def run_demo(output: Path | None, *, seed: int = 0, time_budget_s: float | str | None = "auto", progress: bool = True,
             console: Console | None = None, otel: Any = None) -> Path:
    """Run the demo end to end; return the run folder. ``otel``: export the line's trace as OpenTelemetry spans,
    as ``AssemblyLine.run`` does (`tabline.otel`)."""
    from tabline.eval import evaluate
    from tabline.otel import otel_export
    from tabline.training import TabularLM, TabularLMConfig

    export = otel_export(otel) or False  # checked before the model trains, not after
    console = console or Console()
    output = Path(output) if output else Path("runs") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    started = time.perf_counter()
    df = load_demo_table()
    train, holdout = split(df, 0.25, seed)
    console.print(f"[bold]tabline demo[/] — ggplot2 diamonds sample: {len(train):,} rows to learn from, "
                  f"{len(holdout):,} held out; training "
                  + (f"for about {time_budget_s:.0f} s" if isinstance(time_budget_s, (int, float)) else
                     "with a time budget sized from the table" if time_budget_s == "auto" else "until early stopping"))
    with atomic_directory(output) as tmp:
        lm = TabularLM(TabularLMConfig(seed=seed, time_budget_s=time_budget_s)).fit(train, progress=progress)
        lm.save(tmp / "model")
        from tabline.agents.team import Team
        from tabline.line.assembly import AssemblyLine

        console.print("running the assembly line: coordinator → LM worker → judges → QC sanity → objective → "
                      "diversity → bandit …")
        t0 = time.perf_counter()
        line = AssemblyLine(Team(target=DEMO_TARGET, seed=seed), lm=lm).fit(train, progress=progress)
        result = line.run(len(holdout), tmp / "line", progress=progress, otel=export)
        synthetic = result.data
        rows_per_s = len(synthetic) / (time.perf_counter() - t0)
        console.print(f"line: {result.report['accepted']:,} rows accepted of {result.report['generated']:,} generated "
                      f"(yield {result.report['yield']:.0%}); trace: `tabline trace summary {output}/line`")
        for name, frame in (("train", train), ("holdout", holdout), ("synthetic", synthetic)):
            frame.to_csv(tmp / f"{name}.csv", index=False)
        console.print("scoring the synthetic table against the held-out real rows …")
        report = evaluate(train, synthetic, holdout, target=DEMO_TARGET, schema=lm.schema, seed=seed)
        (tmp / "report.json").write_text(report.to_json(), encoding="utf-8")
        report.render(console)
        summary = (
            f"model: {lm.num_parameters():,} parameters, {lm.log.epochs} epochs in {lm.log.seconds:.0f} s "
            f"(stopped by {lm.log.stopped_by.replace('_', ' ')})\n"
            f"line: {rows_per_s:,.0f} accepted rows/s (judges, QC and bandit included)\n"
            f"total: {time.perf_counter() - started:.0f} s\n"
        )
        (tmp / "summary.txt").write_text(summary, encoding="utf-8")
    console.print(summary.rstrip())
    console.print(f"[bold green]done[/] → {output}/ (train.csv, holdout.csv, synthetic.csv, model/, line/, report.json)")
    return output
