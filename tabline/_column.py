"""`Column`: one column's kind and allowed values, the unit `tabline.schema.Schema` and the inference
heuristics (`tabline._infer`) both build on. Its own module so that neither of those imports the other.

Example:
    >>> Column(name="cut", kind="categorical", categories=["Ideal", "Good"]).kind
    'categorical'
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

Kind = Literal["numeric", "categorical", "boolean", "datetime", "text", "id", "constant"]

# Formats tried, in order, on text columns that look like dates; the first that parses every value wins.
DATETIME_FORMATS = [
    "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d",
    "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y-%m",
]
# float64 holds 15-17 significant digits: a value written with more decimals than this is kept as it is read
_MAX_DECIMALS = 15


class Column(BaseModel):
    """One column: its kind and what values it may take.

    Example:
        >>> Column(name="age", kind="numeric", dtype="int", min=18, max=90).dtype
        'int'
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Kind
    dtype: Literal["int", "float"] | None = None  # numeric columns only
    decimals: int = 0  # numeric: decimals observed (values are rounded to this on output)
    min: float | None = None  # numeric/datetime (datetime as seconds since the epoch)
    max: float | None = None
    categories: list[Any] | None = None  # categorical/boolean: allowed values, most frequent first; constant: [value]
    nullable: bool = False
    datetime_format: str | None = None
    description: str | None = None  # domain knowledge for LLM agents

    @model_validator(mode="after")
    def _consistent(self) -> "Column":
        problems = []
        if self.kind == "numeric" and self.dtype is None:
            problems.append(f"column {self.name!r}: numeric columns need dtype 'int' or 'float'")
        if self.kind in ("categorical", "boolean") and not self.categories:
            problems.append(f"column {self.name!r}: {self.kind} columns need a non-empty 'categories' list")
        if self.kind == "constant" and (not self.categories or len(self.categories) != 1 or self.nullable):
            problems.append(f"column {self.name!r}: constant columns need 'categories' with exactly one value and "
                            "no missing values (use kind categorical for a value that may be missing)")
        if self.kind == "datetime" and not self.datetime_format:
            problems.append(f"column {self.name!r}: datetime columns need 'datetime_format'")
        if self.min is not None and self.max is not None and self.min > self.max:
            problems.append(f"column {self.name!r}: min {self.min} is greater than max {self.max}")
        if problems:
            raise ValueError("; ".join(problems))
        return self
