"""The `tabline` command line: thin wrappers that parse, call the public API and print. The commands live in
`tabline.cli.tables` (fit, sample, evaluate, schema, demo), `tabline.cli.line` (run, trace) and
`tabline.cli.models` (align, llm), `tabline.cli.dream` (dream); this module holds the app and what they share.

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

import functools
from pathlib import Path
from typing import Callable

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from tabline.errors import TablineError
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
            # escaped: a message may hold brackets of its own (`pip install "tabline[otel]"`, `.[ray]`), not markup
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
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


_OTEL_HELP = ("Also export the run as OpenTelemetry spans, over OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT (default "
              "http://localhost:4318); automatic when that variable is set. Needs the 'otel' extra (docs/otel.md).")


def _otel(flag: bool):
    """What a command hands to ``otel=``: with ``--otel`` the packages must be there (else a clear error); without
    it the environment decides, and a missing package there is a one-line warning, not the end of the run."""
    from rich.text import Text

    from tabline.otel import ENDPOINT_VARIABLES, INSTALL, OtelUnavailableError, endpoint_from_env, otel_export

    if not flag and endpoint_from_env() is None:
        return False
    try:
        export = otel_export(True)
    except OtelUnavailableError:
        if flag:
            raise
        err.print(Text(f"warning: {ENDPOINT_VARIABLES[0]} is set, but spans are not exported: {INSTALL}",
                       style="yellow"), soft_wrap=True)
        return False
    err.print(Text(f"note: spans → {export.describe()}", style="dim"), soft_wrap=True)
    return export


def _read(path: Path, **options):
    """`read_table`, printing (dim, on stderr) what the reader decided: delimiter, renamed or dropped columns."""
    from rich.text import Text

    from tabline.io import read_table

    notes: list[str] = []
    df = read_table(path, notes=notes, **options)
    for note in notes:
        err.print(Text(f"note: {note}", style="dim"), soft_wrap=True)
    return df


def main() -> None:  # pragma: no cover - console-script entry when run as a module
    app()


# The commands register themselves on `app` when imported; the order is the order of `tabline --help`.
from tabline.cli import tables, line, models, dream  # noqa: E402,F401
