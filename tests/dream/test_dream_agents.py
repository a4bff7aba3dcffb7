"""The LLM agents against the scripted OpenAI-protocol server, and the TabularLM as a source of rows."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.dream import (Answerer, AnswerJudge, DirectionEvolver, ProgramJudge, Reply as TargetReply,
                                  SubTableMaker, TableMaker, TaskEvolver)
from tabline.agents.llm.backends import LLMSettings, ModelRef
from tabline.agents.llm.dream import LLMAnswerer, LLMRubricJudge, LLMTableMaker
from tabline.dream.items import build_item
from tabline.dream.making import TableSpec
from tabline.dream.programs import Answer
from tabline.dream.table import DreamTable

SETTINGS = LLMSettings(cache=False, attempts=2, transient_retries=0, backoff_s=0.0, concurrency=1)
SPEC = TableSpec(rows=(2, 3), columns=(2, 2), kinds=("flat",), formula_share=1.0)
GOOD = {"topic": "retail", "subtopic": "shops", "title": "Shop results", "columns": ["shop", "revenue", "cost"],
        "groups": [], "rows": [["North", 120, 80], ["South", 90, 95]], "formulas": ["profit = revenue - cost"]}


def _ref(server) -> ModelRef:
    return ModelRef(f"openai-compatible:{server.url}:m", temperature=0.0, settings=SETTINGS)


def test_llm_table_maker_builds_checks_and_rejects():
    # Setup: table 1 valid at once; table 2 ragged, then fixed after being shown why; table 3 ragged twice
    ragged = {**GOOD, "rows": [["North", 120], ["South", 90, 95]]}
    script = [Reply.json(GOOD), Reply.json(ragged), Reply.json(GOOD), Reply.json(ragged), Reply.json(ragged)]
    with ScriptedOpenAIServer(script) as server:
        maker = LLMTableMaker(_ref(server), SPEC)
        runs = [maker.make(1, np.random.default_rng(k)) for k in range(3)]
        repair = server.requests[2]["messages"][-1]["content"]
    made = runs[0]
    for more in runs[1:]:
        made.tables += more.tables
        made.rejected += more.rejected
    # Assert: two tables, the derived column computed by code (120 - 80, 90 - 95); one rejected with the reason
    assert [t.data["profit"].tolist() for t in made.tables] == [[40, -5], [40, -5]]
    assert "row 1 has 2 values for 3 columns" in repair
    assert len(made.rejected) == 1 and "row 1 has 2 values" in made.rejected[0]["reason"]
    assert json.loads(made.rejected[0]["raw"]) == ragged  # the raw answer is kept
    assert made.tables[0].title == "Shop results" and [r.usage["calls"] for r in runs] == [1, 2, 2]


def test_answerer_reads_json_and_keeps_prose():
    table = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    items = [build_item(table, "markdown", "sum", {"op": "sum", "column": "v", "where": []}, t) for t in range(2)]
    script = [Reply.json({"answer": 3}), Reply("The sum is 3."), Reply("Still prose: 3")]
    with ScriptedOpenAIServer(script) as server:
        answers = LLMAnswerer(_ref(server)).answer(items)
        asked = server.requests[0]["messages"]
    assert [(r.text, r.structured) for r in answers.replies] == [("3", True), ("Still prose: 3", False)]
    assert items[0].user_content() in asked[-1]["content"] and '{"answer"' in asked[0]["content"]
    verdicts, _ = ProgramJudge().judge(items, answers.replies)
    assert [v.verdict for v in verdicts] == ["correct", "correct"]


def test_rubric_judge_scores_free_form_answers_only():
    table = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    item = build_item(table, "csv", "sum", {"op": "sum", "column": "v", "where": []}, 0)
    free = item.__class__(**{**item.__dict__, "answer": Answer("free", "values rise from a to b")})
    with ScriptedOpenAIServer([Reply.json({"score": 2, "explanation": "misses the rise"})]) as server:
        judge = ProgramJudge(rubric=LLMRubricJudge(_ref(server)))
        verdicts, extra = judge.judge([item, free], [TargetReply("3"), TargetReply("it falls")])
        assert len(server.requests) == 1  # the typed answer never reached the LLM judge
    assert [(v.verdict, v.score, v.judged_by) for v in verdicts] == [("correct", 5, "program judge"),
                                                                     ("wrong", 2, "llm judge")]
    assert len(extra["calls"]) == 1


def test_roles_are_protocols():
    assert isinstance(SubTableMaker({"t": pd.DataFrame({"a": [1]})}), TableMaker)
    assert isinstance(DirectionEvolver("complication"), TaskEvolver)
    assert isinstance(ProgramJudge(), AnswerJudge)
    assert isinstance(LLMAnswerer(ModelRef("openai-compatible:http://127.0.0.1:9/v1:m")), Answerer)


def test_sub_tables_can_take_rows_from_the_tabular_lm(diamonds):
    from tabline.training import TabularLM, TabularLMConfig

    real = diamonds.head(200)[["cut", "color", "carat", "price"]]
    lm = TabularLM(TabularLMConfig(max_epochs=1, n_layer=1, n_embd=16, seed=0)).fit(real, progress=False)
    made = SubTableMaker({"d": real}, TableSpec(rows=(5, 5), columns=(2, 3)), lm=lm, lm_source="d").make(
        2, np.random.default_rng(0))
    assert all("rows from the TabularLM" in t.title and len(t.data) == 5 for t in made.tables)
    assert all(set(t.data.columns) - {"item"} <= set(real.columns) | {c for c in t.data.columns if "minus" in c}
               for t in made.tables)


def test_a_local_hf_target_answers_every_item(tmp_path):
    # Setup: a random-weight chat model (gibberish replies) behind the in-process hf: backend
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agents" / "llm"))
    from tiny_hf import make_tiny_chat_model

    model = make_tiny_chat_model(tmp_path / "tiny", n_positions=1024)
    table = DreamTable.from_frame(pd.DataFrame({"k": ["a", "b"], "v": [1, 2]}))
    items = [build_item(table, "csv", "max", {"op": "max", "column": "v", "where": []}, t) for t in range(2)]
    ref = ModelRef(f"hf:{model}", temperature=0.0, settings=LLMSettings(cache=False, attempts=1, max_tokens=8))
    # Run
    answers = LLMAnswerer(ref).answer(items)
    verdicts, _ = ProgramJudge().judge(items, answers.replies)
    # Assert: one call per item, its raw text kept and handed to the checker as the reply when it is not JSON
    assert [c["item"] for c in answers.calls] == [i.id for i in items]
    for reply, call, verdict in zip(answers.replies, answers.calls, verdicts):
        assert call["attempts"] == 1 and len(call["raw"]) == 1
        if not reply.structured and not reply.error:
            assert reply.text == call["raw"][0] and verdict.verdict in ("correct", "wrong", "unparsable")
        if reply.error:
            assert verdict.verdict == "failed"
