"""Library noise on the command line: the warnings and log messages of transformers, trl, pandas and the
like are about those libraries, not about the user's table, so the CLI hides them unless ``--verbose``.

Example:
    >>> import warnings
    >>> def shown(verbose, module="transformers.x"):
    ...     with warnings.catch_warnings(record=True) as seen, library_noise(verbose):
    ...         warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module=module)
    ...     return len(seen)
    >>> shown(verbose=False), shown(verbose=True), shown(verbose=False, module="tabline.training.lm")
    (0, 1, 1)
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings

LIBRARY_WARNINGS = (FutureWarning, DeprecationWarning, PendingDeprecationWarning, UserWarning)
_OUTSIDE_TABLINE = r"(?!tabline(\.|$))"  # a warning's module: anything but tabline and its submodules


def library_noise(verbose: bool) -> contextlib.ExitStack:
    """Hide third-party warnings (`LIBRARY_WARNINGS`) and log messages below ERROR, or with ``verbose`` show
    every warning (Python hides libraries' DeprecationWarnings by default). Closing the stack undoes it.

    Warnings raised from tabline's own modules stay visible: those are ours to fix. ``-W`` or PYTHONWARNINGS,
    when given, decide the warnings instead.

    Example:
        >>> with library_noise(verbose=False):
        ...     logging.getLogger("transformers").isEnabledFor(logging.WARNING)
        False
    """
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    stack.callback(logging.disable, logging.root.manager.disable)
    if verbose:
        warnings.simplefilter("default")
    else:
        if not sys.warnoptions:
            for category in LIBRARY_WARNINGS:
                warnings.filterwarnings("ignore", category=category, module=_OUTSIDE_TABLINE)
        logging.disable(logging.WARNING)  # tabline prints through rich consoles, never logging
    return stack
