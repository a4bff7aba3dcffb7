"""Agents of one's own, without a line: refs, settings and names checked against the table (every problem at
once, each naming its YAML key), the coordinator's plan around custom workers, and the wrappers' verdicts
on what user code returns."""
from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd
import pytest
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph

from tabline.agents.coordinator import Coordinator
from tabline.agents.custom_team import build_judge
from tabline.agents.custom import PythonEvolver, PythonJudge, PythonStage, PythonWorker, judge, worker
from tabline.agents.evolvers import Turn
from tabline.agents.refs import import_ref
from tabline.agents.roles import AgentError, Evolver, Filled, Judge, Proposal, QCStage, Worker
from tabline.agents.team import InvalidTeamError, Team
from tabline.schema import Schema

EXAMPLES = Path(__file__).resolve().parents[1] / "line"  # custom_agents_example.py, found through the code path
M = "custom_agents_example"


@pytest.fixture(scope="module")
def table(diamonds) -> pd.DataFrame:
    return diamonds.head(300).reset_index(drop=True)


@pytest.fixture(scope="module")
def schema(table) -> Schema:
    return Schema.infer(table)


def team(**data) -> Team:
    return Team.from_dict(data, code_path=[str(EXAMPLES)])


def test_refs_are_imported_when_the_team_is_checked_and_every_problem_names_its_key(schema, tmp_path):
    # Setup: five mistakes at once — a missing module, a missing name, a typo in a setting, a function
    # used in the wrong role, a worker column the table does not have
    bad = team(workers={"z": {"kind": "python", "ref": "no_such_module_here:z"},
                        "carat": {"kind": "python", "ref": f"{M}:carat_from_volme"},
                        "price": {"kind": "python", "ref": f"{M}:z_from_depth", "columns": ["prize"]}},
               judges=[{"kind": "python", "ref": f"{M}:round_stone", "settings": {"tolerence": 0.1}},
                       {"kind": "python", "ref": f"{M}:only"}])
    # Run
    with pytest.raises(InvalidTeamError) as exc:
        bad.check(schema)
    msg = str(exc.value)
    # Assert
    assert msg.startswith("team: 5 problem(s): ")
    assert "workers.z.ref: no module named 'no_such_module_here' on the Python path nor in " in msg
    assert str(EXAMPLES) in msg  # where it looked
    assert f"workers.carat.ref: module '{M}' has no name 'carat_from_volme' (did you mean 'carat_from_volume'?)" in msg
    assert "workers.price names unknown column 'prize'" in msg
    assert "judges[0].settings: got an unexpected keyword argument 'tolerence'" in msg
    assert f"judges[1].ref: {M}:only is declared with @evolver, but the team uses it as a judge" in msg


@pytest.mark.parametrize("spec, error", [
    pytest.param({"workers": {"z": {"kind": "python"}}}, "workers.z: Value error, a python agent needs 'ref'", id="no-ref"),
    pytest.param({"judges": [{"kind": "python", "ref": "not a path"}]}, "is not an import path", id="bad-ref-text"),
    pytest.param({"workers": {"z": {"kind": "lm", "settings": {"a": 1}}}}, "['settings'] only apply to kind 'python'",
                 id="settings-on-a-built-in"),
    pytest.param({"judges": [{"kind": "python", "ref": "m:f", "name": "has space"}]}, "judges.0.name", id="bad-name"),
])
def test_yaml_mistakes_in_python_agents_are_errors(spec, error):
    with pytest.raises(InvalidTeamError, match=None) as exc:
        Team.from_dict(spec)
    assert error in str(exc.value)


def test_a_function_given_from_python_is_stored_as_its_import_path(schema):
    round_stone = import_ref(f"{M}:round_stone", [EXAMPLES])
    # Run: the function itself in Python; a lambda cannot be imported again on resume
    t = Team(judges=[{"kind": "python", "ref": round_stone}])
    with pytest.raises(ValueError, match="a lambda has no import path"):
        Team(judges=[{"kind": "python", "ref": lambda batch: batch.x}])
    # Assert
    assert t.judges[0].ref == f"{M}:round_stone" and f"ref: {M}:round_stone" in t.to_yaml()


def test_the_coordinator_plans_custom_workers_after_the_columns_they_read(table, schema):
    # Setup: z reads x, y, depth (from the LM); the runnable's carat reads z; a sampler fills price
    t = team(workers={"*": {"kind": "lm"}, "price": {"kind": "sampler"},
                      "z": {"kind": "python", "ref": f"{M}:z_from_depth"},
                      "carat": {"kind": "python", "ref": f"{M}:carat_from_volume"}},
             coordinator={"detect_expressions": False})
    # Run
    plan = Coordinator(t).fit(table, schema).plan
    # Assert
    comps = {c.name: c for c in plan.components}
    lm = [c.name for c in plan.components if c.worker == "lm"]
    assert len(lm) == 1  # the LM's components fused into one station
    assert comps["z_from_depth"].columns == ["z"] and comps["z_from_depth"].worker == "python"
    assert comps["z_from_depth"].depends_on == lm
    assert comps["carat_from_volume"].depends_on == sorted(lm + ["z_from_depth"])
    assert not {"z", "carat", "price"} & set(comps[lm[0]].columns)
    assert plan.levels()[-1] == ["carat_from_volume"]


def test_a_custom_worker_without_depends_on_runs_after_every_built_in_worker(table, schema, tmp_path):
    module = tmp_path / "plain_agents.py"
    module.write_text("def price_again(batch):\n    return (batch.carat * 4000).round()\n")
    t = Team.from_dict({"workers": {"price": {"kind": "python", "ref": "plain_agents:price_again"},
                                    "cut": {"kind": "sampler"}}}, code_path=[str(tmp_path)])
    plan = Coordinator(t).fit(table, schema).plan
    assert plan.component("price_again").depends_on == sorted(c.name for c in plan.components
                                                              if c.name != "price_again")


def test_the_wrappers_take_each_role_protocol():
    assert isinstance(PythonWorker(lambda b: b.x, name="w", columns=["y"]), Worker)
    assert isinstance(PythonJudge(lambda b: b.x, name="j"), Judge)
    assert isinstance(PythonEvolver(lambda t: None, name="e", schema=None), Evolver)
    assert isinstance(PythonStage(lambda b: b.x > 0, name="s"), QCStage)


BATCH = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.5, 2.0]})


@pytest.mark.parametrize("fn, message", [
    pytest.param(lambda b: 1 / 0, r"worker 'w' \(m:w\) raised ZeroDivisionError: division by zero \(test_custom.py:\d+ in <lambda>\)",
                 id="raises"),
    pytest.param(lambda b: b.x.iloc[:2], r"worker 'w' \(m:w\) returned 2 rows for a batch of 3", id="wrong-length"),
    pytest.param(lambda b: pd.DataFrame({"Z": b.x}), r"returned columns \['Z'\] but fills \['z'\] \(missing \['z'\]\)",
                 id="wrong-columns"),
    pytest.param(lambda b: b.x.to_list()[0], r"returned float 1.0; a worker returns a pandas Series or DataFrame",
                 id="not-a-table"),
    pytest.param(lambda b: b.x.set_axis([7, 8, 9]), r"returned rows labelled \[7, 8, 9\]", id="foreign-rows"),
])
def test_a_worker_that_crashes_or_returns_the_wrong_shape_stops_with_its_name(fn, message):
    with pytest.raises(AgentError, match=message) as exc:
        PythonWorker(fn, name="w", columns=["z"], ref="m:w").fill(BATCH)
    assert exc.value.agent == "w"


def test_a_worker_gets_typed_columns_its_settings_and_the_seed(schema, table):
    seen = {}

    @worker(columns=["z"])
    def noisy(batch, scale=1.0, seed=None):
        seen.update(dtype=str(batch.x.dtype), seed=seed)
        return (batch.x * scale).round(2)

    batch = table[["x", "y"]].head(4).astype(object)  # how the line carries a batch
    out = PythonWorker(noisy, name="noisy", columns=["z"], settings={"scale": 2.0}, schema=schema).fill(batch, seed=7).frame
    assert out.z.tolist() == (table.x.head(4) * 2).round(2).tolist()
    assert seen == {"dtype": "float64", "seed": 7}


def test_a_runnable_is_a_worker_and_a_compiled_langgraph_graph_a_judge():
    # Setup: a runnable answering one value per row; a LangGraph graph whose state gets a score
    class State(TypedDict, total=False):
        x: float
        y: float
        score: float

    graph = StateGraph(State)
    graph.add_node("rate", lambda s: {"score": 1.0 if s["x"] >= s["y"] else 0.0})
    graph.add_edge(START, "rate")
    graph.add_edge("rate", END)
    # Run
    filled = PythonWorker(RunnableLambda(lambda row: row["x"] + row["y"]), name="sum", columns=["s"]).fill(BATCH).frame
    scored = PythonJudge(graph.compile(), name="wider").judge(BATCH).scores["wider"]
    # Assert
    assert filled.s.tolist() == [2.0, 4.5, 5.0]
    assert scored.tolist() == [1.0, 0.0, 1.0]


@pytest.mark.parametrize("fn, outcome", [
    pytest.param(lambda b: b.x > 1, [0.0, 1.0, 1.0], id="booleans"),
    pytest.param(lambda b: np.array([0.5, np.nan, 2.0]), [0.5, np.nan, 2.0], id="nan-and-outside-pass-to-the-objective"),
    pytest.param(lambda b: pd.Series(["a", "b", "c"]), "returned values that are not numbers \\(first: 'a'\\)",
                 id="text"),
    pytest.param(lambda b: 0.7, "returned float 0.7; a judge returns one score in \\[0, 1\\] per row", id="scalar"),
])
def test_what_a_judge_returns(fn, outcome):
    j = PythonJudge(fn, name="j")
    if isinstance(outcome, str):
        with pytest.raises(AgentError, match=outcome):
            j.judge(BATCH)
    else:
        np.testing.assert_array_equal(j.judge(BATCH).scores["j"].to_numpy(), outcome)


def test_a_judge_class_with_score_gets_its_settings_through_the_constructor(schema):
    @judge(threshold=0.9)
    class Wide:
        def __init__(self, margin=0.0):
            self.margin = margin

        def score(self, batch):
            return (batch.x + self.margin >= batch.y).astype(float)

    assert PythonJudge(Wide(margin=0.6), name="wide").judge(BATCH).scores["wide"].tolist() == [1.0, 1.0, 1.0]
    assert PythonJudge(Wide(), name="wide").judge(BATCH).scores["wide"].tolist() == [1.0, 0.0, 1.0]


def test_a_class_may_report_what_its_calls_left_behind(schema, table):
    # Setup: a worker and an evolver in full protocol form, reporting a failed row and an LLM call
    class Careful:
        def fill(self, batch, *, seed=0):
            return Filled(pd.DataFrame({"z": batch.x * 2}), failures={1: "no answer"}, calls=[{"raw": "?"}])

    class Asking:
        def propose(self, turn):
            return Proposal({"cut": "Fair"}, calls=[{"raw": "Fair"}], usage={"calls": 1})

    # Run
    filled = PythonWorker(Careful(), name="careful", columns=["z"], schema=schema).fill(BATCH)
    proposal = PythonEvolver(Asking(), name="asking", schema=schema).propose(Turn(batch_id=1, rows=3, arm_rows=table))
    # Assert: the answer is checked like a plain one, and the report goes on to the line
    assert filled.frame.z.tolist() == (BATCH.x * 2).tolist() and filled.failures == {1: "no answer"}
    assert proposal.conditions.cut.tolist() == ["Fair"] * 3 and proposal.usage == {"calls": 1}


def test_an_evolvers_proposal_is_checked_against_the_schema(schema, table):
    turn = Turn(batch_id=1, rows=5, arm_rows=table)
    assert PythonEvolver(lambda t: {"cut": "Fair"}, name="e", schema=schema).propose(turn).conditions.cut.tolist() == ["Fair"] * 5
    assert PythonEvolver(lambda t: None, name="e", schema=schema).propose(turn).conditions is None
    with pytest.raises(AgentError, match=r"evolver 'e' proposed values the schema rejects: column 'cut' = 'Perfect' in 5 of 5"):
        PythonEvolver(lambda t: {"cut": "Perfect"}, name="e", schema=schema).propose(turn)
    with pytest.raises(AgentError, match=r"proposed column\(s\) \['colour'\] the table does not have"):
        PythonEvolver(lambda t: {"colour": "E"}, name="e", schema=schema).propose(turn)


def test_a_qc_stage_gives_reasons_named_after_it():
    reasons = PythonStage(lambda b: np.where(b.x > 1, "", "too small"), name="size").check(BATCH)
    flags = PythonStage(lambda b: b.x > 1.5, name="flag").check(BATCH)
    assert reasons.tolist() == ["size: too small", "", ""]
    assert flags.tolist() == ["flag: rejected", "", ""]
    with pytest.raises(AgentError, match=r"QC stage 'size' returned 3 for a row"):
        PythonStage(lambda b: pd.Series([3, 3, 3]), name="size").check(BATCH)


def test_a_team_with_python_agents_survives_a_dump_and_reload_keeping_the_declared_threshold(schema, tmp_path):
    # Setup: what `tabline run --team team.yaml --target cut` does: the team dumped, changed, validated again
    (tmp_path / "strict_agents.py").write_text("from tabline.agents.custom import judge\n\n\n@judge(threshold=0.8)\n"
                                               "def strict(batch):\n    return batch.x * 0 + 1.0\n")
    t = Team.from_dict({"judges": [{"kind": "rules"}, {"kind": "python", "ref": "strict_agents:strict"}]},
                       code_path=[str(tmp_path)])
    # Run
    again = Team.from_dict({**t.model_dump(), "target": "cut"}, code_path=t.code_path)
    # Assert: the same team; the python judge keeps its decorator's threshold, the built-in its own default
    assert again.judges == t.judges and again.problems(schema) == []
    assert build_judge(again, 1, again.judges[1], schema)[1] == 0.8 and again.judges[0].threshold == 0.0
