"""The line's graph as the page draws it: stations placed by precedence, read back from graph.mmd."""
from __future__ import annotations

import json

from tabline.agents.team import Team
from tabline.line.assembly import AssemblyLine
from tabline.view import render_view
from tabline.view.sections import graph_edges, graph_levels


def test_per_column_stations_are_drawn_after_the_stations_they_depend_on(diamonds, tmp_path):
    # Setup: one LM station per component, so the coordinator's DAG has several levels
    team = Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100, coordinator={"fuse_lm": False})
    AssemblyLine(team).run(100, tmp_path / "run", data=diamonds.head(400), progress=False)
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    # Run
    edges = graph_edges((tmp_path / "run" / "graph.mmd").read_text())
    levels = graph_levels(edges)
    html = render_view(tmp_path / "run")
    # Assert
    components = plan["components"]
    assert len(components) > 2 and any(c["depends_on"] for c in components)
    for c in components:
        for parent in c["depends_on"]:
            assert levels[f"station_{c['name']}"] > levels[f"station_{parent}"], (c, levels)
    assert levels["__start__"] == 0 and levels["__end__"] == max(levels.values())
    assert ("bandit", "coordinator", True) in edges  # the loop back for the next batch, conditional
    assert levels["coordinator"] < min(levels[f"station_{c['name']}"] for c in components) < levels["judges"]
    assert "nodes in precedence order" in html and "next batch" in html
