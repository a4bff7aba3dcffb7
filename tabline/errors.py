"""Errors a user can cause and fix. The CLI prints their message and exits with code 2, never a traceback.

Example:
    >>> from tabline.errors import InvalidTableError
    >>> str(InvalidTableError(["column 'age' is constant", "column 'id' is duplicated"]))
    "2 problems: column 'age' is constant; column 'id' is duplicated"
"""
from __future__ import annotations


class TablineError(Exception):
    """Base class of every error caused by input the user can correct."""


class InvalidTableError(TablineError):
    """A table (file or DataFrame) has one or more problems; all of them are listed at once."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            message = self.problems[0]
        else:
            message = f"{len(self.problems)} problems: " + "; ".join(self.problems)
        super().__init__(message)


class InvalidSchemaError(TablineError):
    """A user-written schema (JSON/YAML/pydantic) is not valid."""


class ConditionError(TablineError):
    """A sampling condition names an unknown column or a value the column cannot take."""


class ModelDirError(TablineError):
    """A model directory is missing, incomplete, or was written by an incompatible version."""


class InvalidArgumentError(TablineError):
    """A numeric or option argument is out of range (for example n <= 0)."""


class OutputError(TablineError):
    """An output could not be written: the disk is full, permission is denied, a folder is read-only or gone.
    Nothing half-written is left behind; run the command again (or resume) once the cause is fixed."""
