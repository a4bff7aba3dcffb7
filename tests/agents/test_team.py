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


def test_with_options_applies_command_line_overrides_and_keeps_the_rest():
    from tabline.agents.team import UNSET, InvalidTeamError, Team

    base = Team.from_dict({"batch_rows": 100, "lm": {"max_epochs": 3}, "evolvers": [{"kind": "complicate"}]})
    team = base.with_options(target="cut", seed=7, time_budget_s=None, rebalance=[{"column": "cut", "value": "Fair",
                             "ratio": 0.3}], llm_columns={"*": "openai:gpt-4o-mini"}, judge_llm="openai:gpt-4o-mini")
    assert (team.target, team.seed, team.batch_rows) == ("cut", 7, 100)
    assert team.lm.time_budget_s is None and team.lm.max_epochs == 3  # None is a value; the rest of lm is kept
    assert [e.kind for e in team.evolvers] == ["complicate", "rebalance"] and team.evolvers[1].ratio == 0.3
    assert team.worker_for("carat").kind == "llm" and [j.kind for j in team.judges][-1] == "llm"
    # Nothing given: the very same team; a budget not given leaves the team's own
    assert base.with_options() is base and base.with_options(time_budget_s=UNSET).lm.time_budget_s == "auto"
    # Bad values are named, all at once, as for a team file
    with pytest.raises(InvalidTeamError) as err:
        base.with_options(max_batches=0, rebalance=[{"column": "cut", "ratio": 2}])
    assert "max_batches" in str(err.value) and "ratio" in str(err.value)
