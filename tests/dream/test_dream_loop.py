"""The weakness loop end to end against a real OpenAI-protocol server (tests/llm_server.py) that answers right
for some task families and wrong for others: exactly the wrong ones are kept, and they seed round 2."""
from __future__ import annotations

import json

import pytest

from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.llm.backends import LLMSettings
from tabline.dream.config import DreamConfig
from tabline.dream.items import DreamItem
from tabline.dream.making import TableSpec
from tabline.line.dreamer import Dreamer
from tabline.run_folder import DreamFolder, read_trace

RIGHT = {"numerical reasoning", "structure understanding"}  # the target's strengths
SETTINGS = LLMSettings(cache=False, attempts=2, transient_retries=1, backoff_s=0.0, concurrency=4)


class Target:
    """A scripted target: it looks the question up among the items the graph just made (the evolve node's
    state, seen through ``on_event``) and answers right in its strong families — half in JSON, half in prose —
    and wrong (a wrong value, or an unreadable one) in the others."""

    def __init__(self):
        self.known: dict[str, DreamItem] = {}

    def on_event(self, event: dict) -> None:
        if event["node"] == "evolve":
            for cand in event["state"]["candidates"]:
                item = DreamItem.from_json(cand)
                self.known[item.user_content().strip()] = item

    def __call__(self, body: dict, index: int) -> Reply:
        question = next(m["content"] for m in body["messages"] if m["role"] == "user")
        item = self.known[question.strip()]
        value = item.answer.value
        if item.family in RIGHT:
            exact = value if item.answer.kind == "number" else item.answer.text()
            if len(question) % 2:
                return Reply(f"Looking at the table carefully, the answer is **{exact}**.")
            return Reply.json({"answer": exact})
        if item.answer.kind == "bool":
            return Reply.json({"answer": not value})
        return Reply.json({"answer": "no such value"})


@pytest.fixture(scope="module")
def loop_run(diamonds, tmp_path_factory):
    target = Target()
    out = tmp_path_factory.mktemp("loop") / "run"
    config = DreamConfig(rounds=2, per_round=45, tables=4, seed=3, table=TableSpec(rows=(5, 8)))
    with ScriptedOpenAIServer(target) as server:
        dreamer = Dreamer(config, target_model=f"openai-compatible:{server.url}:target", llm=SETTINGS)
        result = dreamer.run({"diamonds": diamonds.head(300)}, out, on_event=target.on_event)
        assert server.unplanned == 0 and not server.errors
    return result, DreamFolder(out)


def test_exactly_the_wrong_answers_are_kept(loop_run):
    result, folder = loop_run
    round1, round2 = folder.read_rounds(2)
    families = {r["item"]["task_type"]: DreamItem.from_json(r["item"]).family for r in round1}
    assert RIGHT & set(families.values()) and set(families.values()) - RIGHT  # both kinds were asked
    for rec in round1 + round2:
        family = DreamItem.from_json(rec["item"]).family
        assert rec["kept"] == (family not in RIGHT), (rec["item"]["task_type"], rec["reply"], rec["verdict"])
        assert rec["verdict"]["verdict"] == ("correct" if family in RIGHT else rec["verdict"]["verdict"])
        if family not in RIGHT:
            assert rec["verdict"]["verdict"] in ("wrong", "unparsable")
    # prose replies were read by the checker, not lost
    assert any(not r["reply"]["structured"] and r["verdict"]["verdict"] == "correct" for r in round1)


def test_the_weaknesses_seed_round_two(loop_run):
    result, folder = loop_run
    round1, round2 = folder.read_rounds(2)
    weak = {DreamItem.from_json(r["item"]).id for r in round1 if r["kept"]}
    parents = {r["item"]["parent"] for r in round2}
    assert round2 and parents <= weak


def test_the_dataset_is_the_weaknesses_of_both_rounds(loop_run):
    result, folder = loop_run
    kept = [DreamItem.from_json(r["item"]).id for rnd in folder.read_rounds(2) for r in rnd if r["kept"]]
    rows = [json.loads(line) for line in (folder.path / "dataset.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(dict.fromkeys(kept))
    assert not {r["family"] for r in rows} & RIGHT
    assert result.report["filtered"] is True and result.report["note"] == ""


def test_the_trace_counts_each_round_by_type_direction_and_verdict(loop_run):
    result, folder = loop_run
    trace = read_trace(folder.trace)
    selects = trace[trace.node == "select"]
    assert list(selects["round"]) == [1, 2]
    for (_, event), records in zip(selects.iterrows(), folder.read_rounds(2)):
        detail = event["detail"]
        verdicts: dict[str, int] = {}
        directions: dict[str, int] = {}
        for r in records:
            verdicts[r["verdict"]["verdict"]] = verdicts.get(r["verdict"]["verdict"], 0) + 1
            directions[r["item"]["direction"]] = directions.get(r["item"]["direction"], 0) + 1
        assert detail["by_verdict"] == verdicts and detail["by_direction"] == directions
        assert sum(detail["by_task_type"].values()) == len(records) and detail["kept"] == sum(r["kept"] for r in records)
    assert set(trace.node) == {"make_tables", "seed_tasks", "evolve", "answer", "judge", "select"}


def test_a_backend_that_keeps_failing_gives_recorded_failures(diamonds, tmp_path):
    # Setup: every request gets a 429; one retry is allowed
    config = DreamConfig(rounds=1, per_round=6, tables=1)
    with ScriptedOpenAIServer(lambda body, i: Reply(status=429)) as server:
        result = Dreamer(config, target_model=f"openai-compatible:{server.url}:t", llm=SETTINGS).run(
            diamonds.head(50), tmp_path / "run")
        requests = len(server.requests)
    # Assert: each item was tried twice (the retry), ends "failed" with the reason, and none is kept
    assert requests == 2 * len(result.items)
    assert {i["verdict"]["verdict"] for i in result.items} == {"failed"}
    assert all("gave up after 2 tries" in i["reply"]["error"] for i in result.items)
    assert result.dataset == [] and result.report["stop_reason"] == "rounds"
