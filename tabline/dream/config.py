"""`DreamConfig`: the settings of a TableDreamer run, validated once (a typo is an error, not a default).

Example:
    >>> DreamConfig(rounds=2, per_round=30).tables
    6
    >>> from pydantic import ValidationError
    >>> try:
    ...     DreamConfig(round=2)
    ... except ValidationError as exc:
    ...     print(exc.errors()[0]["loc"], exc.errors()[0]["type"])
    ('round',) extra_forbidden
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tabline.dream.making import TableSpec


class DreamConfig(BaseModel):
    """``rounds`` of ``per_round`` evolved items each (split evenly over the three directions), from
    ``tables`` tables with the attributes of ``table``; ``seeds``: seed tasks in round 1 (default: as many as
    ``per_round``). A reply is checked with relative tolerance ``rel_tol``; a judged score below
    ``threshold`` (1–5, the paper's 3) makes the item a weakness."""

    model_config = ConfigDict(extra="forbid")

    rounds: int = Field(2, ge=1, le=100)
    per_round: int = Field(60, ge=3, le=1_000_000)
    tables: int = Field(6, ge=1, le=100_000)
    seeds: int | None = Field(None, ge=1)
    seed: int = 0
    table: TableSpec = TableSpec()
    rel_tol: float = Field(1e-2, gt=0, lt=1)
    threshold: int = Field(3, ge=2, le=5)

    @property
    def seed_count(self) -> int:
        return self.seeds or self.per_round


__all__ = ["DreamConfig"]
