"""The assembly-line commands: `tabline run` (start or resume a run), `tabline trace summary` and
`tabline view` (the run's page).

Example:
    $ tabline run data.csv -n 20000 -o runs/x --target label && tabline trace summary runs/x
    $ tabline view runs/x
"""
from __future__ import annotations

import contextlib
from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from tabline.cli import _BAD_LINES_HELP, _OTEL_HELP, _SEP_HELP, _friendly, _otel, _read, app, err, out
from tabline.cli.tables import RAY_HELP
from tabline.errors import InvalidArgumentError


@app.command()
@_friendly
def run(
    data: Optional[Path] = typer.Argument(None, help="CSV file with a header row (not needed with --resume)."),
    rows: Optional[int] = typer.Option(None, "-n", "--rows", help="Accepted rows to make."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run folder (default: runs/line-<time>)."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column: adds DATE tree arms' target and label judges."),
    rebalance: list[str] = typer.Option([], "--rebalance", help="COLUMN=RATIO or COLUMN=CLASS:RATIO, e.g. smoker=0.5 (repeatable)."),
    team_file: Optional[Path] = typer.Option(None, "--team", help="Team YAML (agents, judges, QC, bandit); agents of "
                                             "your own (kind: python) are imported from the file's folder too."),
    seed: Optional[int] = typer.Option(None, help="Random seed (default: the team's, 0)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    max_batches: Optional[int] = typer.Option(None, "--max-batches", help="Stop after this many batches."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="Stop after this many seconds of generation."),
    time_budget: Optional[str] = typer.Option(None, "--time-budget", help="Seconds of LM training to plan for, "
                                              "'auto' or 'none' (default: the team's lm.time_budget_s, 'auto')."),
    llm: list[str] = typer.Option([], "--llm", help="COLUMN=MODEL: an LLM fills COLUMN ('*' = every column), e.g. "
                                  "notes=openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct (repeatable)."),
    judge_llm: Optional[str] = typer.Option(None, "--judge-llm", help="MODEL: add an LLM judge (rubric score 1-5; keeps rows scored >= 3)."),
    coordinator_llm: Optional[str] = typer.Option(None, "--coordinator-llm", help="MODEL: an LLM task manager splits the columns (T²)."),
    about: Optional[str] = typer.Option(None, "--about", help="What the table is, in a sentence (LLM agents read it)."),
    align_every: Optional[int] = typer.Option(None, "--align-every", help="TabGRAA: after every K batches, align the "
                                              "TabularLM on those batches' rows ranked by QC (docs/tabgraa.md)."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP + " The LM and LLM workers and the "
                                              "judges run on Ray actors; same rows as without --ray. Also with --resume."),
    actors: Optional[int] = typer.Option(None, "--actors", help="With --ray: replicas of the models (Ray actors); "
                                         "default one per CPU of the cluster.", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    no_view: bool = typer.Option(False, "--no-view", help="Do not write the run's page (view.html) at the end."),
    otel: bool = typer.Option(False, "--otel", help=_OTEL_HELP),
) -> None:
    """Run the assembly line: coordinator → column workers → judges → QC → bandit, until N rows are accepted.

    The run folder exists before anything is fitted. Killed or interrupted at any moment (even while the
    model trains)? `tabline run --resume RUN_DIR` continues and ends with the rows an uninterrupted run makes."""
    from tabline.agents.team import UNSET, Team
    from tabline.cli.tables import parse_budget
    from tabline.line.assembly import AssemblyLine

    executor = None
    if actors is not None and ray_address is None:
        raise InvalidArgumentError(f"--actors {actors} needs --ray (auto or a cluster's address)")
    if ray_address is not None:  # said before any fit: a missing Ray or a bad address costs no time
        from tabline.cluster.connect import RayConfig, require_ray

        require_ray()
        executor = RayConfig.from_value(ray_address).model_copy(update={"actors": actors})
    if resume is not None:
        if data is not None or rows is not None:
            raise InvalidArgumentError("--resume takes only the run folder; the data and -n were fixed when the run began")
        export = _otel(otel)
        with _interruptible(resume):
            result = AssemblyLine.resume(resume, progress=not quiet, executor=executor, otel=export)
    else:
        if data is None or rows is None:
            raise InvalidArgumentError("give the data file and -n ROWS, e.g. `tabline run data.csv -n 20000 -o runs/x`")
        team = Team.load(team_file) if team_file else Team()
        team = team.with_options(
            target=target, seed=seed, max_batches=max_batches, max_seconds=max_seconds,
            time_budget_s=UNSET if time_budget is None else parse_budget(time_budget),
            rebalance=[_parse_rebalance(r) for r in rebalance], llm_columns=dict(_parse_llm(i) for i in llm),
            judge_llm=judge_llm, coordinator_llm=coordinator_llm, about=about,
        )
        export = _otel(otel)
        df = _read(data, sep=sep, on_bad_lines=on_bad_lines)
        output = output or Path("runs") / f"line-{datetime.now():%Y%m%d-%H%M%S}"
        if not quiet:
            out.print(f"run folder: {output} — safe to interrupt at any moment: `tabline run --resume {output}` "
                      "continues where it stopped", highlight=False)
        with _interruptible(output):
            result = AssemblyLine(team, align_every=align_every, executor=executor).run(
                rows, output, data=df, progress=not quiet, otel=export)
    _print_line_result(result)
    if not no_view:
        print_view(result.run_dir)


def print_view(run_dir: Path) -> None:
    """Write the run's page and print where it is (`tabline run` and `tabline demo` end with this)."""
    from tabline.view import write_view

    out.print(f"page → {write_view(run_dir)} (open it in a browser; it works offline)", highlight=False)


@contextlib.contextmanager
def _interruptible(run_dir: Path):
    """Ctrl-C during a run: say how to continue it (every finished epoch and batch is on disk)."""
    try:
        yield
    except KeyboardInterrupt:
        if (run_dir / "run.json").exists():
            err.print(f"interrupted; `tabline run --resume {run_dir}` continues where it stopped")
        else:
            err.print("interrupted before the run folder was made; nothing was written")
        raise typer.Exit(130) from None


def _parse_llm(item: str) -> tuple[str, str]:
    column, sep, model = item.partition("=")
    if not sep or not column or not model:
        raise InvalidArgumentError(f"--llm {item!r}: expected COLUMN=MODEL, e.g. --llm notes=openai:gpt-4o-mini "
                                   "or --llm '*=openai-compatible:http://127.0.0.1:8000/v1:MODEL'")
    return column, model


def _parse_rebalance(item: str) -> dict:
    name, sep, rest = item.partition("=")
    value, _, ratio = rest.rpartition(":")
    try:
        share = float(ratio)
    except ValueError:
        share = None
    if not sep or not name or share is None or not 0 < share < 1:
        raise InvalidArgumentError(f"--rebalance {item!r}: expected COLUMN=RATIO or COLUMN=CLASS:RATIO with 0 < RATIO < 1, "
                                   "e.g. --rebalance smoker=yes:0.5")
    return {"column": name, "value": value or None, "ratio": share}


def _print_line_result(result) -> None:
    r = result.report
    out.print(f"accepted {r['accepted']:,} of {r['n_requested']:,} requested rows from {r['generated']:,} generated "
              f"(yield {r['yield']:.0%}) in {r['batches']} batches, {r['seconds']:.0f} s; stopped: {r['stop_reason']}")
    for stage, kinds in r["rejections"].items():
        out.print(f"  rejected at {stage}: " + ", ".join(f"{k} {n:,}" for k, n in kinds.items()))
    llm = r.get("llm")
    if llm:
        cost = f", ${llm['cost_usd']:.4f}" if llm.get("cost_usd") is not None else ""
        out.print(f"  LLM: {llm['calls']:,} calls ({llm['cached']:,} from the cache), {llm['input_tokens']:,} input + "
                  f"{llm['output_tokens']:,} output tokens{cost}; {llm['retries']:,} retries, {llm['repairs']:,} "
                  f"re-asks, {llm['failures']:,} rows given up (raw answers in batches/llm-*.json)")
    out.print(f"[bold green]done[/] → {result.run_dir}/ (data.csv, rejected.csv, report.json, trace.jsonl, graph.mmd)")


trace_app = typer.Typer(help="Look at a run's agent trace.", no_args_is_help=True)
app.add_typer(trace_app, name="trace")


@trace_app.command("summary")
@_friendly
def trace_summary(run_dir: Path = typer.Argument(..., help="A run folder made by `tabline run`.")) -> None:
    """Per-node and per-arm tables from RUN_DIR/trace.jsonl."""
    from rich.table import Table

    from tabline.line.trace import summarise

    nodes, arms = summarise(run_dir / "trace.jsonl")
    for title, frame in (("nodes", nodes), ("arms", arms)):
        table = Table(title=title)
        for col in frame.columns:
            table.add_column(str(col), justify="left" if col in ("node", "agent", "arm") else "right")
        for _, row in frame.iterrows():
            table.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row])
        out.print(table)


@app.command()
@_friendly
def view(
    run_dir: Path = typer.Argument(..., help="A folder made by `tabline run`, `demo`, `align` or `dream` (finished "
                                   "or not)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the page (default: RUN_DIR/view.html)."),
    serve: bool = typer.Option(False, "--serve", help="Serve the page on 127.0.0.1 and refresh it as the run writes "
                               "new events (Ctrl-C stops; the page is written to disk then)."),
    port: int = typer.Option(8765, "--port", help="Port for --serve (0: any free port).", min=0, max=65535),
) -> None:
    """Write one self-contained HTML page of a run: the line, QC funnel, timeline, bandit, fidelity, LLM calls.

    Everything (plotly included) is inside the file, so it opens from disk with the network off.

    With --serve, watch a run that is still going: the page reloads when new events arrive."""
    from tabline.view import write_view

    if not serve:
        out.print(f"page → {write_view(run_dir, output)}", highlight=False)
        return
    from tabline.view.serve import ViewServer

    server = ViewServer(run_dir, port)
    out.print(f"serving {server.url} — the page of {run_dir}, refreshed as the run writes; Ctrl-C stops",
              highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    out.print(f"page → {write_view(run_dir, output)}", highlight=False)
