"""The `tabline` command line: thin wrappers that parse, call the public API and print.

Every user mistake ends with a one-line ``error: ...`` on stderr and exit code 2, never a traceback.

Warnings and log messages of the libraries underneath (transformers, trl, pandas, ...) are hidden unless the
global ``--verbose`` comes first: they are about those libraries, not about the user's table.

Example:
    $ tabline fit data.csv -o model/
    $ tabline sample model/ -n 1000 -o synthetic.csv --condition cut=Ideal
    $ tabline evaluate data.csv synthetic.csv --holdout holdout.csv --target cut
    $ tabline --verbose demo
"""
from __future__ import annotations

import contextlib
import functools
import shutil
import sys
from datetime import datetime
from pathlib import Path
from typing import Callable, Optional

import typer
from pydantic import ValidationError
from rich.console import Console

from tabline.errors import InvalidArgumentError, TablineError
from tabline.quiet import library_noise

app = typer.Typer(
    help="tabline — synthetic tables on an assembly line of agents. Offline by default: it learns a small "
    "tabular language model from your own table.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)
out = Console()
err = Console(stderr=True)


@app.callback()
def _global_options(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", help="Also show the warnings and log messages of the libraries "
                                 "underneath (transformers, trl, pandas, ...); give it before the command: "
                                 "`tabline --verbose fit ...`."),
) -> None:
    ctx.call_on_close(library_noise(verbose).close)  # undone when the command ends, so in-process callers keep theirs


def _friendly(fn: Callable) -> Callable:
    """Turn user errors into 'error: ...' + exit 2; keep tracebacks for real bugs."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TablineError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            err.print(f"[bold red]error:[/] invalid settings: {problems}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as exc:  # a write or read the machine refused, outside our own wrappers
            from tabline.io import write_error

            err.print(f"[bold red]error:[/] {write_error(exc, exc.filename or 'a file', 'use')}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err.print("interrupted; no output was left half-written")
            raise typer.Exit(130) from None

    return wrapper


_DATA_HELP = "Table with a header row: CSV (comma, semicolon, tab or pipe), .parquet, .jsonl or .xlsx."
_SEP_HELP = "CSV field delimiter (one character, or 'tab'); default: detected among , ; tab |."
_BAD_LINES_HELP = "CSV lines with more or fewer fields than the header: 'error' (default) or 'skip' them."


def _read(path: Path, **options):
    """`read_table`, printing (dim, on stderr) what the reader decided: delimiter, renamed or dropped columns."""
    from rich.text import Text

    from tabline.io import read_table

    notes: list[str] = []
    df = read_table(path, notes=notes, **options)
    for note in notes:
        err.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    return df


@app.command()
@_friendly
def fit(
    data: Path = typer.Argument(..., help=_DATA_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Model directory to write (replaced atomically)."),
    seed: int = typer.Option(0, help="Random seed (same seed + data = same model)."),
    epochs: int = typer.Option(40, help="Maximum training epochs (early stopping usually ends sooner)."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Stop training after this many seconds."),
    schema_file: Optional[Path] = typer.Option(None, "--schema", help="Schema JSON/YAML (from `tabline schema`) to use instead of inferring."),
    drop: list[str] = typer.Option([], "--drop", help="Column to leave out (repeatable)."),
    na_value: list[str] = typer.Option([], "--na-value", help="Extra text that means 'missing', e.g. '?' (repeatable)."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the CSV file."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Learn a tabular language model from a table file and save it to a directory. Interrupted (Ctrl-C,
    kill)? Run the same command again: it continues from the last finished epoch."""
    from tabline.schema import Schema
    from tabline.training import TabularLM, TabularLMConfig

    df = _read(data, encoding=encoding, na_values=na_value or None, drop=drop or None, sep=sep, on_bad_lines=on_bad_lines)
    schema = Schema.load(schema_file) if schema_file else None  # None: fit() checks the row count, then infers
    lm = TabularLM(TabularLMConfig(seed=seed, max_epochs=epochs, time_budget_s=time_budget))
    # A killed fit leaves its last epoch here; the same command then continues it instead of starting over.
    checkpoint = output.parent / f".{output.name}.fit-checkpoint"
    if (checkpoint / "state.json").exists() and not quiet:
        out.print(f"continuing the fit that was interrupted (training state in {checkpoint})", highlight=False)
    lm.fit(df, schema, progress=not quiet, checkpoint=checkpoint)
    lm.save(output)
    shutil.rmtree(checkpoint, ignore_errors=True)
    log = lm.log
    out.print(f"fitted {lm.num_parameters():,} parameters on {len(df):,} rows × {df.shape[1]} columns in "
              f"{log.seconds:.0f} s ({log.epochs} epochs, stopped by {log.stopped_by.replace('_', ' ')}, "
              f"best validation loss {log.best_val_loss:.3f}) → {output}")


@app.command()
@_friendly
def sample(
    model_dir: Path = typer.Argument(..., help="Directory written by `tabline fit`."),
    n: int = typer.Option(..., "-n", "--rows", help="Number of rows to generate."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write (atomically): .csv, or .parquet / .pq."),
    condition: list[str] = typer.Option([], "--condition", "-c", help="Fix a column: COL=VALUE (repeatable)."),
    seed: int = typer.Option(0, help="Random seed (same seed = same rows)."),
    temperature: float = typer.Option(1.0, help="Sampling temperature; 1 follows the learnt distribution."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling threshold in (0, 1]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate schema-valid synthetic rows from a fitted model."""
    from tabline.io import write_csv_atomic, write_parquet_atomic
    from tabline.training import TabularLM

    writers = {".csv": write_csv_atomic, ".parquet": write_parquet_atomic, ".pq": write_parquet_atomic}
    write = writers.get(output.suffix.lower())
    if write is None:
        raise InvalidArgumentError(f"-o {output}: the file name must end in .csv, .parquet or .pq (it says which "
                                   "format to write)")
    if n <= 0:
        raise InvalidArgumentError(f"-n must be a positive number of rows, got {n}")
    lm = TabularLM.load(model_dir)
    conditions = _parse_conditions(condition)
    frame = lm.sample(n, conditions=conditions or None, seed=seed, temperature=temperature, top_p=top_p,
                      progress=not quiet)
    write(frame, output)
    out.print(f"wrote {len(frame):,} rows → {output}")


@app.command()
@_friendly
def evaluate(
    train: Path = typer.Argument(..., help="The real rows the model learnt from."),
    synthetic: Path = typer.Argument(..., help="The synthetic rows to judge."),
    holdout: Path = typer.Option(..., "--holdout", help="Real rows the model never saw (the ceiling)."),
    target: Optional[str] = typer.Option(None, "--target", help="Column to predict for the utility (TSTR) score."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
    seed: int = typer.Option(0, help="Random seed for subsampling and classifiers."),
) -> None:
    """Score a synthetic table against real data: quality, detection, utility, privacy, validity."""
    from tabline.eval import evaluate as run_evaluation
    from tabline.io import write_text_atomic

    report = run_evaluation(_read(train), _read(synthetic), _read(holdout), target=target, seed=seed)
    report.render(out)
    if json_out:
        write_text_atomic(report.to_json(), json_out)
        out.print(f"report → {json_out}")


@app.command("schema")
@_friendly
def show_schema(
    data: Path = typer.Argument(..., help=_DATA_HELP),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the schema here (.yaml or .json) to edit it."),
    drop: list[str] = typer.Option([], "--drop", help="Column to leave out (repeatable)."),
    na_value: list[str] = typer.Option([], "--na-value", help="Extra text that means 'missing' (repeatable)."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the CSV file."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
) -> None:
    """Show the schema tabline infers for a table file (types, ranges, categories, missing values)."""
    from tabline.io import write_text_atomic
    from tabline.schema import Schema

    schema = Schema.infer(_read(data, encoding=encoding, na_values=na_value or None, drop=drop or None, sep=sep,
                                on_bad_lines=on_bad_lines))
    text = schema.to_json() if output and output.suffix == ".json" else schema.to_yaml()
    if output:
        write_text_atomic(text, output)
        out.print(f"schema → {output}")
    else:
        out.print(text, highlight=False, markup=False)


@app.command()
@_friendly
def demo(
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run folder (default: runs/demo-<time>)."),
    seed: int = typer.Option(0, help="Random seed."),
    time_budget: float = typer.Option(100.0, "--time-budget", help="Seconds of training."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The main job: learn a real table shipped with tabline, generate a synthetic copy, and score it."""
    from tabline.demo import run_demo

    run_demo(output, seed=seed, time_budget_s=time_budget, progress=not quiet, console=out)


@app.command()
@_friendly
def run(
    data: Optional[Path] = typer.Argument(None, help="CSV file with a header row (not needed with --resume)."),
    rows: Optional[int] = typer.Option(None, "-n", "--rows", help="Accepted rows to make."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run folder (default: runs/line-<time>)."),
    target: Optional[str] = typer.Option(None, "--target", help="Label column: adds DATE tree arms' target and label judges."),
    rebalance: list[str] = typer.Option([], "--rebalance", help="COLUMN=RATIO or COLUMN=CLASS:RATIO, e.g. smoker=0.5 (repeatable)."),
    team_file: Optional[Path] = typer.Option(None, "--team", help="Team YAML (agents, judges, QC, bandit)."),
    seed: Optional[int] = typer.Option(None, help="Random seed (default: the team's, 0)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the run in this folder from its last checkpoint."),
    max_batches: Optional[int] = typer.Option(None, "--max-batches", help="Stop after this many batches."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", help="Stop after this many seconds of generation."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Seconds of LM training."),
    llm: list[str] = typer.Option([], "--llm", help="COLUMN=MODEL: an LLM fills COLUMN ('*' = every column), e.g. "
                                  "notes=openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct (repeatable)."),
    judge_llm: Optional[str] = typer.Option(None, "--judge-llm", help="MODEL: add an LLM judge (rubric score 1-5; keeps rows scored >= 3)."),
    coordinator_llm: Optional[str] = typer.Option(None, "--coordinator-llm", help="MODEL: an LLM task manager splits the columns (T²)."),
    about: Optional[str] = typer.Option(None, "--about", help="What the table is, in a sentence (LLM agents read it)."),
    align_every: Optional[int] = typer.Option(None, "--align-every", help="TabGRAA: after every K batches, align the "
                                              "TabularLM on those batches' rows ranked by QC (docs/tabgraa.md)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the assembly line: coordinator → column workers → judges → QC (sanity, objective, diversity) →
    bandit, until N rows are accepted. Killed? `tabline run --resume RUN_DIR` continues without losing a row."""
    from tabline.agents.team import Team
    from tabline.line.assembly import AssemblyLine

    if resume is not None:
        if data is not None or rows is not None:
            raise InvalidArgumentError("--resume takes only the run folder; the data and -n were fixed when the run began")
        with _interruptible(resume):
            result = AssemblyLine.resume(resume, progress=not quiet)
    else:
        if data is None or rows is None:
            raise InvalidArgumentError("give the data file and -n ROWS, e.g. `tabline run data.csv -n 20000 -o runs/x`")
        team = Team.load(team_file) if team_file else Team()
        changes: dict = {}
        if target is not None:
            changes["target"] = target
        if seed is not None:
            changes["seed"] = seed
        if max_batches is not None:
            changes["max_batches"] = max_batches
        if max_seconds is not None:
            changes["max_seconds"] = max_seconds
        if time_budget is not None:
            changes["lm"] = {**team.lm.model_dump(), "time_budget_s": time_budget}
        if rebalance:
            changes["evolvers"] = [e.model_dump() for e in team.evolvers] + [_parse_rebalance(r) for r in rebalance]
        if llm:
            workers = {k: w.model_dump() for k, w in team.workers.items()}
            for item in llm:
                column, model = _parse_llm(item)
                workers[column] = {**workers.get(column, {}), "kind": "llm", "model": model}
            changes["workers"] = workers
        if judge_llm:
            changes["judges"] = [j.model_dump() for j in team.judges if j.kind != "llm"] + [{"kind": "llm", "model": judge_llm}]
        if coordinator_llm:
            changes["coordinator"] = {**team.coordinator.model_dump(), "model": coordinator_llm}
        if about is not None:
            changes["about"] = about
        if changes:
            team = Team.from_dict({**team.model_dump(), **changes}, source="options")
        df = _read(data)
        output = output or Path("runs") / f"line-{datetime.now():%Y%m%d-%H%M%S}"
        if not quiet:
            out.print(f"run folder: {output} — safe to interrupt at any moment: `tabline run --resume {output}` "
                      "continues where it stopped", highlight=False)
        with _interruptible(output):
            result = AssemblyLine(team, align_every=align_every).run(rows, output, data=df, progress=not quiet)
    _print_line_result(result)


@app.command()
@_friendly
def align(
    model_dir: Path = typer.Argument(..., help="A model directory: from `tabline fit`, or any transformers causal LM."),
    data: Path = typer.Option(..., "--data", help="The real rows (CSV) the rewards compare samples with."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the aligned model (replaced atomically)."),
    rounds: int = typer.Option(2, "--rounds", help="Rounds of generate → score → align."),
    reward: str = typer.Option("classifier", "--reward", help="classifier (random forest: can it tell the row "
                               "from real?), dcr (distance to the nearest real row) or random (the ablation)."),
    loss: str = typer.Option("graa", "--loss", help="graa, graa-logsig, dpo, kto, npo, or sft (extra training, "
                             "same number of steps: the control)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="β of the loss (default 1; in GRAA z = r̄_H − β·r̄_L)."),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="AdamW learning rate (default 1e-5; higher rates made the model worse in our tuning)."),
    group_batch: Optional[int] = typer.Option(None, "--batch", help="B: rows from each group per step (default 4)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Rows sampled per round (default: as many as --data has)."),
    sft_steps: int = typer.Option(0, "--sft-steps", help="First fine-tune a transformers model on --data for this "
                                  "many steps (trl SFTTrainer); the reference is the result."),
    seed: int = typer.Option(0, help="Random seed (same seed + data + model = same aligned model)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """TabGRAA: post-train a model against a frozen copy of itself, rewarded for rows a scorer cannot tell
    from real ones. Writes the aligned model plus align.json (per-round rewards and losses) and trace.jsonl."""
    from tabline.line.align import align_model
    from tabline.training.align import LOSSES, AlignConfig, reward_for

    reward_for(reward)
    if loss not in LOSSES:
        raise InvalidArgumentError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")
    settings = {"loss": loss, "reward": reward, "rounds": rounds, "seed": seed, "beta": beta,
                "learning_rate": learning_rate, "group_batch": group_batch, "samples": samples}
    config = AlignConfig(**{k: v for k, v in settings.items() if v is not None})
    df = _read(data)
    report = align_model(model_dir, df, config, output, sft_steps=sft_steps, threads=threads, progress=not quiet)
    for h in report["history"]:
        auc = f", held-out AUC {h['heldout_auc']:.3f}" if "heldout_auc" in h else ""
        out.print(f"round {h['round']}: {h['rows']:,} rows, mean reward {h['reward_mean']:.3f}{auc}, "
                  f"{h['steps']} {loss} steps")
    out.print(f"aligned in {report['seconds']:.0f} s → {output} (history in {output / 'align.json'})")


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
    return {"kind": "rebalance", "column": name, "value": value or None, "ratio": share}


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


llm_app = typer.Typer(help="Check LLM backends (see docs/llm.md).", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("check")
@_friendly
def llm_check(model: str = typer.Argument(..., help="A backend shorthand: openai:MODEL, openai-compatible:URL:MODEL or hf:PATH."),
              timeout: float = typer.Option(60.0, help="Seconds to wait for the answer.")) -> None:
    """Send one small structured request and report whether the backend answers usable JSON."""
    from tabline.agents.llm.backends import LLMSettings, ModelRef
    from tabline.agents.llm.calls import probe

    ref = ModelRef(model, temperature=0.0, settings=LLMSettings(cache=False, timeout_s=timeout, transient_retries=1,
                                                               backoff_s=0.5, max_tokens=200))
    result = probe(ref)
    usage = result["usage"] or {}
    if result["ok"]:
        out.print(f"[bold green]ok[/] {model}: answered {result['answer']} in {result['seconds']} s "
                  f"({usage.get('input_tokens', 0)} + {usage.get('output_tokens', 0)} tokens; structured output via "
                  f"{result['structured']})")
        return
    err.print(f"[bold red]no usable answer[/] from {model} after {result['seconds']} s: "
              f"{(result['errors'] or ['no answer'])[-1]}")
    if result["raw"]:
        err.print(f"last raw answer: {result['raw'][:500]!r}")
    raise typer.Exit(1)


def _parse_conditions(items: list[str]) -> dict[str, str]:
    conditions = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"--condition {item!r}: expected COLUMN=VALUE, e.g. --condition cut=Ideal")
        conditions[name] = value
    return conditions


def main() -> None:  # pragma: no cover - console-script entry when run as a module
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
