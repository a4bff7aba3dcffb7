"""Instructions in an LLM's words (--phrase-llm) against a real OpenAI-protocol server: the program stays the
truth — answers are the executed ones, a wording that drops what the question needs is refused and the
template's kept, and nothing is lost."""
from __future__ import annotations

import json

from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.llm.backends import LLMSettings
from tabline.dream.config import DreamConfig
from tabline.dream.items import DreamItem
from tabline.dream.making import TableSpec
from tabline.dream.programs import execute
from tabline.line.dreamer import Dreamer
from tabline.run_folder import read_trace

SETTINGS = LLMSettings(cache=False, attempts=2, transient_retries=0, backoff_s=0.0, concurrency=4)
TF = "Answer True or False."


def phraser(body: dict, index: int) -> Reply:
    """Rewords by prefixing; drops the closing sentence of true/false questions (a wording that must be refused)."""
    asked = next(m["content"] for m in body["messages"] if m["role"] == "user").split("\n", 1)[1].strip()
    if TF in asked:
        return Reply.json({"instruction": asked.replace(TF, "").strip()})
    return Reply.json({"instruction": f"Using the table below: {asked}"})


def test_phrased_instructions_keep_the_program_and_refused_ones_keep_the_template(diamonds, tmp_path):
    # Setup
    config = DreamConfig(rounds=1, per_round=30, tables=3, seed=1, table=TableSpec(rows=(5, 8)))
    with ScriptedOpenAIServer(phraser) as server:
        # Run
        result = Dreamer(config, phrase_llm=f"openai-compatible:{server.url}:phraser", llm=SETTINGS).run(
            {"diamonds": diamonds.head(300)}, tmp_path / "run")
        assert server.unplanned == 0 and not server.errors
        requests = list(server.requests)
    rows = [json.loads(line) for line in (tmp_path / "run" / "dataset.jsonl").read_text().splitlines()]
    items = [DreamItem.from_json(r["item"]) for r in json.loads((tmp_path / "run" / "rounds" / "round-01.json").read_text())]
    event = read_trace(tmp_path / "run" / "trace.jsonl").query("node == 'phrase'").iloc[0]
    # Assert: every evolved item is in the dataset; answers are the programs executed on the tables
    assert len(rows) == 30 and len(requests) > 30
    refused = [r for r in rows if not r["phrased"]]
    phrased = [r for r in rows if r["phrased"]]
    assert refused and phrased
    for row in rows:
        user = row["messages"][1]["content"]
        if row["phrased"]:
            assert user.startswith("Using the table below: ")
        else:
            assert TF in user.split("\n\n", 1)[0] and not user.startswith("Using the table")
    assert len(items) == 30 and sum(i.phrasing is not None for i in items) == len(phrased)
    for item in items:
        assert item.answer == execute(item.program, item.table.data)
        assert item.instruction == (item.phrasing or item.template_instruction)
    # the refused ones were asked again once (attempts=2), then kept the template; the trace counts them
    assert event["detail"]["kept_template"] == len(refused) and event["detail"]["phrased"] == len(phrased)
    assert len(requests) == len(phrased) + 2 * len(refused)
    retries = [r for r in requests if any("keep" in m["content"] or "sentence" in m["content"]
                                          for m in r["messages"][2:])]
    assert len(retries) == len(refused)  # the second ask showed the problem found
