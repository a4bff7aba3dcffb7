"""LLM workers, judges, the LLM task manager and the LLM evolver, through a scripted OpenAI-compatible server."""
from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from llm_roles import TableBrain
from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.evolvers import Turn
from tabline.agents.llm.backends import LLMSettings, ModelRef
from tabline.agents.llm.evolver import LLMEvolver
from tabline.agents.llm.judge import LLMJudge
from tabline.agents.llm.planner import ask_plan
from tabline.agents.llm.worker import LLMWorker
from tabline.agents.roles import FillContext
from tabline.schema import Schema

FAST = LLMSettings(backoff_s=0.01, backoff_max_s=0.05, cache=False)


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 200
    carat = rng.uniform(0.2, 3.0, n).round(2)
    return pd.DataFrame({"carat": carat, "cut": rng.choice(["Fair", "Good", "Ideal"], n),
                         "price": (carat * 3000 + rng.integers(0, 500, n)).astype(int)})


def ref(server, **kw) -> ModelRef:
    return ModelRef(f"openai-compatible:{server.url}:m", temperature=0.5, settings=FAST.model_copy(update=kw))


def test_worker_fills_many_rows_per_call_and_keeps_failed_rows(real):
    # Setup: 7 partial rows, 3 per call; rows 1 and 5 always get a value the schema rejects
    schema = Schema.infer(real)
    brain = TableBrain(values=lambda col, row: "Ideal" if row["carat"] > 1 else "Good", bad_rows={1, 5})
    batch = real[["carat", "price"]].head(7).set_axis(range(10, 17))
    with ScriptedOpenAIServer(brain) as server:
        worker = LLMWorker(ref(server), ["cut"], schema, real=real, rows_per_call=3, target="cut")
        # Run
        filled = worker.fill(batch, seed=1, context=FillContext(rule="`carat` > 0.1"))
        requests = server.requests
    out = filled.frame
    # Assert: good rows carry the scripted values, failed rows are empty with a reason and their raw answers
    expected = np.where(batch.carat > 1, "Ideal", "Good")
    ok = [i for i in batch.index if i not in (11, 15)]
    assert out.loc[ok, "cut"].tolist() == [e for i, e in zip(batch.index, expected) if i in ok]
    assert out.loc[[11, 15], "cut"].isna().all()
    assert set(filled.failures) == {11, 15}
    assert "is not one of the column's values" in filled.failures[11]
    failed_calls = [c for c in filled.calls if c["failed_rows"]]
    assert len(failed_calls) == 2 and all(len(c["raw"]) == 3 and "not-a-valid-value" in c["raw"][0]
                                          for c in failed_calls)
    # 3 chunks; the two chunks with a bad row are asked twice more, for that row only
    assert len(requests) == 3 + 2 * 2
    prompts = [r["messages"][1]["content"] for r in requests]  # calls run concurrently: any order
    first = next(p for p in prompts if '{"row": 0, "carat":' in p)
    assert "`carat` > 0.1" in first and "Class balance of cut" in first
    assert filled.usage["failures"] == 2


def test_worker_calls_run_concurrently_up_to_the_limit(real):
    # Setup: every answer takes 0.15 s; 6 calls with a limit of 2
    inflight, peak, lock = [0], [0], threading.Lock()
    brain = TableBrain()

    def slow(request, index):
        with lock:
            inflight[0] += 1
            peak[0] = max(peak[0], inflight[0])
        time.sleep(0.15)
        with lock:
            inflight[0] -= 1
        return brain(request, index)

    schema = Schema.infer(real.assign(note=[f"a note about stone {i} of the lot" for i in range(len(real))]))
    with ScriptedOpenAIServer(slow) as server:
        worker = LLMWorker(ref(server, concurrency=2), ["note"], schema, real=real, rows_per_call=2)
        out = worker.fill(real.head(12), seed=0).frame
    assert peak[0] == 2 and out["note"].notna().all()


def test_worker_shows_reflection_negatives(real):
    schema = Schema.infer(real)
    negatives = [{"path": "`carat` > 2", "label": "Ideal", "drop": 0.1, "size": 9,
                  "rows": [{"carat": 2.5, "cut": "Fair", "price": 100}]}]
    with ScriptedOpenAIServer(TableBrain(values=lambda c, r: "Good")) as server:
        LLMWorker(ref(server), ["cut"], schema, real=real).fill(real[["carat"]].head(2),
                                                               context=FillContext(negatives=negatives))
        prompt = server.requests[0]["messages"][1]["content"]
    assert "lowered the data's quality" in prompt and "`carat` > 2" in prompt and '"price": 100' in prompt


def test_judge_scores_map_to_unit_interval_and_keep_explanations(real):
    schema = Schema.infer(real)
    brain = TableBrain(score=lambda rows: [1 + r["row"] % 5 for r in rows])
    with ScriptedOpenAIServer(brain) as server:
        judge = LLMJudge(ref(server), schema, real=real, rows_per_call=4, rubric="Is the price right for the carat?")
        scores = judge.score(real.head(6))
        prompt = server.requests[0]["messages"][1]["content"]
    assert scores.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 0.0]
    assert judge.last_explanations[2] == "scored 3 by the script"
    assert "Is the price right for the carat?" in prompt


def test_judge_rows_never_scored_get_zero_and_a_reason(real):
    schema = Schema.infer(real)
    with ScriptedOpenAIServer([Reply.json({"rows": [{"row": 0, "score": 5}]})] * 3) as server:
        judge = LLMJudge(ref(server), schema, real=real)
        scores = judge.score(real.head(2))
    assert scores.tolist() == [1.0, 0.0] and "no score after 3 attempt(s)" in judge.last_failures[1]


def test_task_manager_plan_errors_are_fed_back(real):
    # Setup: the first plan has a cycle; the second is valid
    schema = Schema.infer(real)
    plan = [{"name": "size", "columns": ["carat", "cut"], "rationale": "physical"},
            {"name": "value", "columns": ["price"], "depends_on": ["size"], "rationale": "price follows size"}]
    brain = TableBrain(plan=plan, bad_plan_first=True)
    with ScriptedOpenAIServer(brain) as server:
        result, record, caller = ask_plan(ref(server), schema, real, names=schema.names, about="diamonds")
        retry = server.requests[1]["messages"][-1]["content"]
    assert [c.name for c in result.components] == ["size", "value"] and result.levels() == [["size"], ["value"]]
    assert "cycle" in retry and record["attempts"] == 2 and record["ok"]


def test_task_manager_gives_up_after_the_attempts(real):
    schema = Schema.infer(real)
    bad = Reply.json({"components": [{"name": "x", "columns": ["carat", "nope"]}]})
    with ScriptedOpenAIServer([bad] * 3) as server:
        result, record, _ = ask_plan(ref(server), schema, real, names=schema.names)
    assert result is None and not record["ok"] and len(record["raw"]) == 3
    assert "unknown column 'nope'" in record["errors"][-1]


def test_evolver_keeps_valid_proposals_only(real):
    schema = Schema.infer(real)
    proposals = [{"cut": "Fair", "carat": 2.9}, {"cut": "Ideal", "carat": 0.21}, {"cut": "Shiny", "carat": 1.0}]
    with ScriptedOpenAIServer(TableBrain(proposals=proposals)) as server:
        ev = LLMEvolver(ref(server), real, schema, columns=["cut", "carat"], share=1.0)
        proposal = ev.propose(Turn(batch_id=1, rows=50, arm_rows=real))
        out = proposal.conditions
        prompt = server.requests[0]["messages"][1]["content"]
    assert len(out) == 50 and set(out.cut) <= {"Fair", "Ideal"} and set(out.cut) == {"Fair", "Ideal"}
    assert "rare, extreme or boundary" in prompt
    assert proposal.calls[0]["kept"] == 2 and proposal.usage["calls"] == 1  # what the line keeps and counts
