"""One progress-bar helper (rich) shared by training and sampling, silent when disabled.

Example:
    >>> with progress_bar(3, "demo", enabled=False) as bar:
    ...     for _ in range(3):
    ...         bar.advance(1, info="step")
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class _Bar:
    def __init__(self, progress: Progress | None, task: int | None):
        self._progress, self._task = progress, task

    def advance(self, n: float = 1, **fields: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=n, **fields)

    def update(self, **fields) -> None:
        if self._progress is not None:
            self._progress.update(self._task, **fields)


@contextlib.contextmanager
def progress_bar(total: float, description: str, *, enabled: bool = True) -> Iterator[_Bar]:
    """A rich progress bar with an ``info`` field for live numbers (loss, rows/s)."""
    if not enabled:
        yield _Bar(None, None)
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[info]}"), transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, info="")
        yield _Bar(progress, task)


@contextlib.contextmanager
def line_progress(n_rows: int, *, enabled: bool = True) -> Iterator:
    """The line's bar: accepted rows / N, the current arm and the last batch's QC yield. Yields a function
    ``show(accepted, arm, yield_)``."""
    with progress_bar(n_rows, "accepted rows", enabled=enabled) as bar:
        def show(accepted: int, arm: str | None, qc_yield: float | None) -> None:
            info = "" if arm is None else f"arm {arm} · yield {qc_yield:.0%}"
            bar.update(completed=min(accepted, n_rows), info=info)

        yield show
