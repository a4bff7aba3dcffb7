"""A small `tabline run` made once per session by a subprocess: the reference the kill and fault tests
compare with."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from killing import TEAM_YAML, timed_run


@dataclass
class Reference:
    root: Path
    data: Path
    team: Path
    run_dir: Path
    n: int
    seconds: float


@pytest.fixture(scope="session")
def reference_run(diamonds, tmp_path_factory) -> Reference:
    root = tmp_path_factory.mktemp("reference")
    data, team = root / "data.csv", root / "team.yaml"
    diamonds.head(400).to_csv(data, index=False)
    team.write_text(TEAM_YAML)
    n = 300
    seconds = timed_run(data, team, root / "run", n)
    return Reference(root, data, team, root / "run", n, seconds)
