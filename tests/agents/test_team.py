"""Team definitions: typos and wrong names are errors that name the key."""
import pytest

from tabline.agents.team import InvalidTeamError, Team
from tabline.schema import Schema


def test_yaml_typo_names_the_key(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text("target: cut\nbandit:\n  polcy: thompson\njudges:\n  - kind: classifier\n    treshold: 0.3\n")
    with pytest.raises(InvalidTeamError) as exc:
        Team.load(path)
    msg = str(exc.value)
    assert "bandit.polcy: unknown field" in msg and "judges.0.treshold: unknown field" in msg
    assert str(path) in msg


def test_bad_values_are_listed_together():
    with pytest.raises(InvalidTeamError) as exc:
        Team.from_dict({"batch_rows": 0, "workers": {"total": {"kind": "expression"}},
                        "evolvers": [{"kind": "rebalance", "column": "cut"}]})
    msg = str(exc.value)
    assert "3 problem(s)" in msg and "batch_rows" in msg and "expressions" in msg and "ratio" in msg


def test_names_are_checked_against_the_table(diamonds):
    team = Team.from_dict({"target": "kut", "workers": {"prcie": {"kind": "sampler"}},
                           "evolvers": [{"kind": "rebalance", "column": "price", "ratio": 0.5}]})
    problems = team.problems(Schema.infer(diamonds))
    assert any("target names unknown column 'kut'" in p for p in problems)
    assert any("workers.prcie names unknown column 'prcie'" in p for p in problems)
    assert any("'price' is numeric; rebalancing needs classes" in p for p in problems)
    no_target = Team.from_dict({"judges": [{"kind": "labels"}]}).problems(Schema.infer(diamonds))
    assert no_target == ["judges: the 'labels' judge needs a target (team 'target' or --target)"]


def test_yaml_round_trip_keeps_settings():
    team = Team.from_dict({"target": "cut", "bandit": {"policy": "thompson"}, "batch_rows": 128})
    again = Team.from_dict(__import__("yaml").safe_load(team.to_yaml()))
    assert again == team
