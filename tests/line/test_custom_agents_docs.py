"""docs/custom-agents.md runs as written: its module, its team in YAML and in Python (the same team), a line
with them on the shipped table, and the other roles' snippets against the same table."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tabline.agents.team import Team
from tabline.line.assembly import AssemblyLine
from tabline.schema import Schema

PAGE = Path(__file__).resolve().parents[2] / "docs" / "custom-agents.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture()
def docs_module(tmp_path, monkeypatch):
    """The page's module as diamond_agents.py (with the 'Other roles' functions added), importable."""
    module, others = blocks("python")[0], next(b for b in blocks("python") if "@evolver" in b)
    assert module.startswith("# diamond_agents.py")
    (tmp_path / "diamond_agents.py").write_text(module + "\n\n" + others)
    (tmp_path / "team.yaml").write_text(next(b for b in blocks("yaml") if b.startswith("# team.yaml")))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("diamond_agents", None)


def test_the_pages_team_in_yaml_and_in_python_are_the_same_and_run(docs_module, tiny_lm, diamonds, tmp_path):
    # Setup: the YAML team, and the Python block up to its run (which would fit the full-size LM)
    from_yaml = Team.load(docs_module / "team.yaml")
    python = next(b for b in blocks("python") if "Team(" in b)
    namespace: dict = {}
    exec(python.split("result = ")[0], namespace)
    assert namespace["team"].model_dump() == from_yaml.model_dump()
    # Run: that team with a small LM and calibration, on the shipped table
    data = from_yaml.model_dump()
    data["judges"][0]["calibration_rows"] = 300
    team = Team.from_dict({**data, "batch_rows": 200}, code_path=from_yaml.code_path)
    result = AssemblyLine(team, lm=tiny_lm).fit(diamonds.iloc[:1500], progress=False).run(
        150, tmp_path / "run", progress=False)
    # Assert: the page's claims hold on every accepted row
    import diamond_agents

    rows = result.data
    assert len(rows) == 150
    np.testing.assert_allclose(rows.z, diamond_agents.z_from_depth(rows), atol=1e-9)
    np.testing.assert_allclose(rows.carat, [round(0.0061 * x * y * z, 2) for x, y, z in zip(rows.x, rows.y, rows.z)],
                               atol=1e-9)
    assert (diamond_agents.round_stone(rows, tolerance=0.04) >= 0.5).all()
    graph = (result.run_dir / "graph.mmd").read_text()
    assert "station_z_from_depth" in graph and "station_carat_from_volume" in graph


def test_the_other_roles_snippets_fit_the_shipped_table(docs_module, diamonds):
    snippet = yaml.safe_load(next(b for b in blocks("yaml") if "evolvers:" in b))
    team = Team.from_dict(snippet, code_path=[str(docs_module)])
    assert team.problems(Schema.infer(diamonds)) == []
