"""`tabline view`'s LLM calls section: a line whose LLM worker talks to the local OpenAI-protocol test server,
some answers invalid (and hostile), opened in a real headless Chromium."""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from llm_roles import TableBrain
from llm_server import ScriptedOpenAIServer
from tabline.agents.team import Team
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import read_trace
from tabline.view import write_view
from test_view import browser, chromium
from view_dom import console, number, table_cells

# Invalid values for the categorical column `color`, so the calls that carry them fail and their raw answers
# are kept; each would set the flag if the page let it run.
HOSTILE = ["<script>window.__pwned=1</script>", '"><img src=x onerror=window.__pwned=1>']
# After load (an <img>'s error event comes before it), the page writes whether the flag was set.
PROBE = ("<script>window.addEventListener('load',function(){setTimeout(function(){"
         "document.body.setAttribute('data-pwned',String(!!window.__pwned));},200);});</script>")


@pytest.fixture(scope="module")
def llm_run(diamonds, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("llm")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TABLINE_LLM_API_KEY", "sk-test")
        mp.setenv("TABLINE_CACHE_DIR", str(root / "cache"))
        table = diamonds.head(300)[["carat", "cut", "color", "price"]].reset_index(drop=True)
        brain = TableBrain(values=lambda col, row: HOSTILE[row["row"]] if row["row"] < len(HOSTILE) else "E")
        with ScriptedOpenAIServer(brain) as server:
            model = f"openai-compatible:{server.url}:m"
            team = Team.from_dict({
                "target": "cut", "batch_rows": 80, "lm": {"max_epochs": 1, "n_layer": 1, "n_embd": 32},
                "workers": {"color": {"kind": "llm", "model": model, "rows_per_call": 40}},
                "judges": [{"kind": "rules", "threshold": 1.0}], "llm": {"backoff_s": 0.01, "backoff_max_s": 0.05}})
            AssemblyLine(team).fit(table, progress=False).run(100, root / "run", progress=False)
    return root / "run"


def flag_after_load(page: str, tmp_path: Path, name: str) -> str:
    probed = tmp_path / name
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    return re.search(r'<body[^>]*data-pwned="(\w+)"', chromium("--dump-dom", probed.as_uri()).stdout).group(1)


@browser
def test_llm_calls_section_counts_what_the_trace_holds(llm_run):
    # Setup: per agent, the trace's token counts
    trace = read_trace(llm_run / "trace.jsonl")
    usage = pd.DataFrame([{"agent": a, **t} for a, t in zip(trace.agent, trace.tokens) if isinstance(t, dict)])
    expected = usage.groupby("agent")[["calls", "input_tokens", "output_tokens", "failures"]].sum()
    # Run
    dom = chromium("--dump-dom", write_view(llm_run).as_uri())
    # Assert
    head, rows = table_cells(dom.stdout, "llm-usage")
    shown = {r[0]: dict(zip(head, r)) for r in rows}
    assert sorted(shown) == sorted(expected.index) == ["worker_color"]
    for agent, want in expected.iterrows():
        got = [number(shown[agent][k.replace("_", " ")]) for k in want.index]
        assert got == want.tolist() and want["failures"] >= 1
    assert console(dom.stderr) == []
    assert "This run did not align its model" in html.unescape(dom.stdout)  # no align_every here


@browser
def test_failed_calls_raw_answers_are_viewable_and_inert(llm_run, tmp_path):
    # Setup: the failed requests the run folder recorded
    records = [r for f in sorted((llm_run / "batches").glob("llm-*.json")) for r in json.loads(f.read_text())]
    failed = [r for r in records if r["failed_rows"]]
    page = write_view(llm_run).read_text()
    # Run
    dom = chromium("--dump-dom", (llm_run / "view.html").as_uri()).stdout
    flag = flag_after_load(page, tmp_path, "probed.html")
    # the probe does see a hostile answer that is not escaped (so "false" below means something)
    control = flag_after_load(page.replace("<main>", "<main>" + HOSTILE[1]), tmp_path, "control.html")
    # Assert: one <details> per failed request, its raw answers inside as text
    assert len(failed) >= 1 and dom.count('<details class="failed-call">') == len(failed)
    shown = [html.unescape(p) for p in re.findall(r'<details class="failed-call">.*?<pre>(.*?)</pre>', dom, re.S)]
    assert all(h in shown[0] for h in HOSTILE) and shown[0] == "\n".join(failed[0]["raw"])
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
    assert (flag, control) == ("false", "true")
