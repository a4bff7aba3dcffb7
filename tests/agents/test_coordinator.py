"""The coordinator's plan, arms and turns."""
import numpy as np
import pandas as pd
import pytest

from tabline.agents.bandit import PartitionBandit
from tabline.agents.coordinator import Coordinator
from tabline.agents.plan import InvalidPlanError
from tabline.agents.team import Team
from tabline.schema import Schema


def test_user_hint_that_closes_a_cycle_is_a_clear_error():
    df = pd.DataFrame({"a": [1, 2, 3] * 20, "b": ["x", "y", "z"] * 20})
    team = Team.from_dict({"coordinator": {"fuse_lm": False, "components": [
        {"name": "first", "columns": ["a"], "depends_on": ["second"]},
        {"name": "second", "columns": ["b"], "depends_on": ["first"]}]}})
    with pytest.raises(InvalidPlanError, match="cycle: first → second → first|cycle: second → first → second"):
        Coordinator(team).fit(df, Schema.infer(df))


def test_plan_covers_every_column_once_and_is_acyclic(diamonds):
    coord = Coordinator(Team.from_dict({"coordinator": {"fuse_lm": False}})).fit(diamonds, Schema.infer(diamonds))
    cols = [c for comp in coord.plan.components for c in comp.columns]
    assert sorted(cols) == sorted(diamonds.columns) and len(cols) == len(set(cols))
    assert len(coord.plan.components) > 1 and coord.plan.levels()


def test_tree_arms_partition_every_row_with_min_size(diamonds):
    team = Team.from_dict({"target": "cut", "coordinator": {"partitions": "auto", "max_arms": 4, "min_arm_rows": 200}})
    coord = Coordinator(team).fit(diamonds, Schema.infer(diamonds))
    members = np.concatenate(coord.partitions.members)
    assert sorted(members.tolist()) == list(range(len(diamonds)))
    assert 2 <= len(coord.plan.arms) <= 4 and min(a.size for a in coord.plan.arms) >= 200
    assert coord.partitions.method == "tree"


def test_turn_skips_arms_past_their_quota_and_anchors_conditions(diamonds):
    team = Team.from_dict({"coordinator": {"partitions": "cluster", "max_arms": 3, "min_arm_rows": 100}})
    coord = Coordinator(team).fit(diamonds, Schema.infer(diamonds))
    bandit = PartitionBandit(arms=[a.name for a in coord.plan.arms])
    quotas = coord.quotas(1000)
    full = [int(q) for q in quotas]
    full[2] = 0  # only arm 2 still open
    d = coord.turn(batch_id=1, rows=64, bandit=bandit, accepted_by_arm=full, quotas=quotas, counts={}, accepted=0)
    assert d.arm == 2 and d.source == "anchors" and len(d.conditions) == 64
    arm_rows = diamonds.iloc[coord.partitions.members[2]]
    assert set(d.conditions.columns) == set(coord.partitions.anchors[2])
    for col in d.conditions.columns:  # anchors are drawn from the arm's own rows
        assert set(d.conditions[col]) <= set(arm_rows[col])
