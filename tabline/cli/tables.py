"""The table commands: fit, sample, evaluate, schema and the demo.

Example:
    $ tabline fit data.csv -o model/ && tabline sample model/ -n 1000 -o synthetic.csv
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import typer

from tabline.cli import _BAD_LINES_HELP, _DATA_HELP, _OTEL_HELP, _SEP_HELP, _friendly, _otel, _read, app, out
from tabline.errors import InvalidArgumentError


_BUDGET_HELP = ("Seconds of training to plan for: a number, 'auto' (sized from the table: ~100 s for 10,000 rows "
                "x 10 columns on 2 cores) or 'none' (up to --epochs). The plan is made at a reference speed, so "
                "the same seed gives the same model on any machine.")


def parse_budget(text: str) -> float | str | None:
    """``--time-budget``'s value: seconds, "auto" or None.

    Example:
        >>> parse_budget("90"), parse_budget("AUTO"), parse_budget("none")
        (90.0, 'auto', None)
    """
    word = text.strip().lower()
    if word in ("auto", "none"):
        return "auto" if word == "auto" else None
    try:
        seconds = float(word)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise InvalidArgumentError(f"--time-budget {text!r}: give seconds (a number > 0), 'auto' or 'none'")
    return seconds


RAY_HELP = ("Run on a Ray cluster: 'auto' (RAY_ADDRESS, else the cluster `ray start` runs here, else a new "
            "local one), HOST:PORT of the head node, or ray://HOST:PORT. Needs pip install -e \".[ray]\".")

_DEVICE_HELP = ("Where to compute: auto (a CUDA GPU when there is one, else the CPU), cpu, cuda or cuda:N. "
                "On a GPU training runs in bfloat16 autocast and sampling in large batches.")


@app.command()
@_friendly
def fit(
    data: Path = typer.Argument(..., help=_DATA_HELP),
    output: Path = typer.Option(..., "-o", "--output", help="Model directory to write (replaced atomically)."),
    seed: int = typer.Option(0, help="Random seed (same seed + data = same model)."),
    epochs: int = typer.Option(60, help="At most this many epochs (the time budget usually plans fewer; early "
                               "stopping may end sooner)."),
    time_budget: str = typer.Option("auto", "--time-budget", help=_BUDGET_HELP),
    schema_file: Optional[Path] = typer.Option(None, "--schema", help="Schema JSON/YAML (from `tabline schema`) to use instead of inferring."),
    drop: list[str] = typer.Option([], "--drop", help="Column to leave out (repeatable)."),
    na_value: list[str] = typer.Option([], "--na-value", help="Extra text that means 'missing', e.g. '?' (repeatable)."),
    encoding: str = typer.Option("utf-8", help="Text encoding of the CSV file."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
    device: str = typer.Option("auto", "--device", help=_DEVICE_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Learn a tabular language model from a table file and save it to a directory.

    Interrupted (Ctrl-C, kill)? Run the same command again: it continues from the last finished epoch."""
    from tabline.schema import Schema
    from tabline.training import TabularLM, TabularLMConfig

    df = _read(data, encoding=encoding, na_values=na_value or None, drop=drop or None, sep=sep, on_bad_lines=on_bad_lines)
    schema = Schema.load(schema_file) if schema_file else None  # None: fit() checks the row count, then infers
    lm = TabularLM(TabularLMConfig(seed=seed, max_epochs=epochs, time_budget_s=parse_budget(time_budget),
                                   device=device))
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
    copies: str = typer.Option("natural", "--copies", help="Rows equal to a training row: keep them at the rate "
                               "real unseen rows repeat training rows (natural), never (reject), or as sampled "
                               "(allow). Dropped ones are drawn again."),
    device: Optional[str] = typer.Option(None, "--device", help=_DEVICE_HELP + " Default: the model's, where this "
                                         "machine has it."),
    ray_address: Optional[str] = typer.Option(None, "--ray", help=RAY_HELP),
    actors: Optional[int] = typer.Option(None, "--actors", help="With --ray: model replicas (Ray actors); default "
                                         "one per CPU of the cluster. The rows do not depend on it.", min=1),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Generate schema-valid synthetic rows from a fitted model.

    Rows are made in chunks of 4,096, each with a seed drawn from --seed, so the same seed gives the same rows
    here and on any Ray cluster, whatever the number of actors."""
    from tabline._progress import progress_bar
    from tabline.io import write_csv_atomic, write_parquet_atomic
    from tabline.training import TabularLM, TabularLMConfig
    from tabline.training.chunks import sample_in_chunks

    writers = {".csv": write_csv_atomic, ".parquet": write_parquet_atomic, ".pq": write_parquet_atomic}
    write = writers.get(output.suffix.lower())
    if write is None:
        raise InvalidArgumentError(f"-o {output}: the file name must end in .csv, .parquet or .pq (it says which "
                                   "format to write)")
    if n <= 0:
        raise InvalidArgumentError(f"-n must be a positive number of rows, got {n}")
    if actors is not None and ray_address is None:
        raise InvalidArgumentError(f"--actors {actors} needs --ray (auto or a cluster's address)")
    config = None
    if ray_address is not None:  # checked before the model is loaded: a missing Ray is said at once
        from tabline.cluster.connect import RayConfig, require_ray

        require_ray()
        config = RayConfig.from_value(ray_address).model_copy(update={"actors": actors})
    lm = TabularLM.load(model_dir)
    if device is not None:  # validated like any setting: a malformed or absent device is a one-line error
        lm.config = TabularLMConfig(**{**lm.config.model_dump(), "device": device})
    conditions = _parse_conditions(condition)
    options = {"conditions": conditions or None, "temperature": temperature, "top_p": top_p, "copies": copies}
    lm.sample(1, **options)  # a bad condition or setting fails here, in one line, before any work is shipped
    with progress_bar(n, "sampling", enabled=not quiet) as bar:
        if config is None:
            sampled = sample_in_chunks(lm, n, seed=seed, options=options, on_chunk=bar.advance)
        else:
            from tabline.cluster.connect import connect
            from tabline.cluster.sampling import sample_on_ray

            with connect(config) as ray:
                sampled = sample_on_ray(ray, lm, n, seed=seed, config=config, options=options, on_chunk=bar.advance)
    write(sampled.frame, output)
    guard = "" if sampled.report is None else f" ({sampled.report.summary()})"
    out.print(f"wrote {len(sampled.frame):,} rows → {output}{guard}")


@app.command()
@_friendly
def evaluate(
    train: Path = typer.Argument(..., help="The real rows the model learnt from."),
    synthetic: Path = typer.Argument(..., help="The synthetic rows to judge."),
    holdout: Path = typer.Option(..., "--holdout", help="Real rows the model never saw (the ceiling)."),
    target: Optional[str] = typer.Option(None, "--target", help="Column to predict for the utility (TSTR) score."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
    seed: int = typer.Option(0, help="Random seed for subsampling and classifiers."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
) -> None:
    """Score a synthetic table against real data: quality, detection, utility, privacy, validity."""
    from tabline.eval import evaluate as run_evaluation
    from tabline.io import write_text_atomic

    options = {"sep": sep, "on_bad_lines": on_bad_lines}
    report = run_evaluation(_read(train, **options), _read(synthetic, **options), _read(holdout, **options),
                            target=target, seed=seed)
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
    time_budget: str = typer.Option("auto", "--time-budget", help=_BUDGET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    no_view: bool = typer.Option(False, "--no-view", help="Do not write the line's page (line/view.html) at the end."),
    otel: bool = typer.Option(False, "--otel", help=_OTEL_HELP),
) -> None:
    """The main job: learn a real table shipped with tabline, generate a synthetic copy, and score it."""
    from tabline.cli.line import print_view
    from tabline.demo import run_demo

    folder = run_demo(output, seed=seed, time_budget_s=parse_budget(time_budget), progress=not quiet, console=out,
                      otel=_otel(otel))
    if not no_view:
        print_view(folder)


def _parse_conditions(items: list[str]) -> dict[str, str]:
    conditions = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise InvalidArgumentError(f"--condition {item!r}: expected COLUMN=VALUE, e.g. --condition cut=Ideal")
        conditions[name] = value
    return conditions
