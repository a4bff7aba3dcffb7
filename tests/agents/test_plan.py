import pytest
from pydantic import ValidationError

from tabline.agents.plan import Arm, Component, InvalidPlanError, Plan
from tabline.schema import Column, Schema


@pytest.fixture()
def schema():
    return Schema(columns=[Column(name=n, kind="numeric", dtype="int") for n in ("carat", "cut", "price", "x")])


def test_valid_plan_orders_components_in_levels(schema):
    plan = Plan(components=[
        Component(name="size", columns=["carat", "x"]),
        Component(name="grade", columns=["cut"]),
        Component(name="pricing", columns=["price"], depends_on=["size", "grade"]),
    ])
    plan.check(schema)
    assert plan.levels() == [["grade", "size"], ["pricing"]]
    assert sorted(plan.parents_columns("pricing")) == ["carat", "cut", "x"]
    assert plan.parents_columns("size") == []


def test_cycle_is_a_clear_error(schema):
    plan = Plan(components=[
        Component(name="a", columns=["carat"], depends_on=["c"]),
        Component(name="b", columns=["cut"], depends_on=["a"]),
        Component(name="c", columns=["price", "x"], depends_on=["b"]),
    ])
    with pytest.raises(InvalidPlanError, match=r"form a cycle: (a → b → c → a|b → c → a → b|c → a → b → c)"):
        plan.check(schema)


def test_every_cover_problem_is_listed_at_once(schema):
    plan = Plan(components=[
        Component(name="core", columns=["carat", "price"]),
        Component(name="pricing", columns=["price", "weight"], depends_on=["core", "ghost", "pricing"]),
    ])
    problems = plan.problems(schema)
    assert "plan: column 'price' is owned by both 'core' and 'pricing'" in problems
    assert "plan: component 'pricing' names unknown column 'weight'" in problems
    assert "plan: component 'pricing' depends on unknown component 'ghost'" in problems
    assert "plan: component 'pricing' depends on itself" in problems
    assert "plan: column(s) ['cut', 'x'] belong to no component" in problems
    with pytest.raises(InvalidPlanError, match="^5 problem"):
        plan.check(schema)


def test_duplicate_names(schema):
    plan = Plan(components=[Component(name="a", columns=["carat", "cut"]), Component(name="a", columns=["price", "x"])],
                arms=[Arm(name="all"), Arm(name="all")])
    problems = plan.problems(schema)
    assert "plan: component name 'a' is used more than once" in problems
    assert "plan: arm name 'all' is used more than once" in problems


def test_typo_in_a_component_is_rejected_by_name():
    with pytest.raises(ValidationError, match="depends_onn"):
        Component(name="a", columns=["x"], depends_onn=["b"])
