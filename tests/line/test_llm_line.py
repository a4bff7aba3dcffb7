"""The assembly line with LLM agents, end to end through a scripted OpenAI-compatible server on 127.0.0.1."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from llm_roles import TableBrain
from llm_server import Reply, ScriptedOpenAIServer
from tabline.agents.llm.backends import BackendError
from tabline.agents.team import Team
from tabline.cli import app
from tabline.line.assembly import AssemblyLine
from tabline.run_folder import read_trace

SECRET = "sk-line-secret-4242"
TINY_LM = {"max_epochs": 1, "n_layer": 1, "n_embd": 32}


@pytest.fixture()
def table(diamonds) -> pd.DataFrame:
    df = diamonds.head(300)[["carat", "cut", "color", "price"]].reset_index(drop=True)
    return df.assign(notes=[f"{c} cut stone from lot {i} of the sample" for i, c in enumerate(df.cut)])


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("TABLINE_LLM_API_KEY", SECRET)
    monkeypatch.setenv("TABLINE_CACHE_DIR", str(tmp_path / "cache"))


def mixed_team(url: str, **extra) -> Team:
    model = f"openai-compatible:{url}:m"
    return Team.from_dict({
        "target": "cut", "batch_rows": 80, "lm": TINY_LM, "about": "diamonds with a seller's note",
        "descriptions": {"notes": "the seller's note about the stone"},
        "workers": {"notes": {"kind": "llm", "model": model, "rows_per_call": 40}},
        "judges": [{"kind": "rules", "threshold": 1.0}, {"kind": "llm", "model": model}],
        "llm": {"backoff_s": 0.01, "backoff_max_s": 0.05}, **extra})


def test_mixed_team_llm_notes_and_embedded_lm(table, tmp_path):
    # Setup: the LLM writes notes from the row's cut; the embedded LM makes the rest; an LLM judge scores
    brain = TableBrain(values=lambda col, row: f"{row['cut']} cut, {row['carat']} carat", score=4)
    with ScriptedOpenAIServer(brain) as server:
        line = AssemblyLine(mixed_team(server.url)).fit(table, progress=False)
        # Run
        result = line.run(120, tmp_path / "run", progress=False)
        requests = len(server.requests)
    # Assert: every row's note was written for that row (its parents reached the LLM, aligned)
    data = result.data
    assert len(data) == 120 and result.stop_reason == "target"
    assert all(n.startswith(f"{c} cut, ") for n, c in zip(data.notes, data.cut))
    assert [c.worker for c in line.plan.components] == ["lm", "llm"]
    assert line.plan.components[1].depends_on == ["lm"]
    # tokens in the trace and in the report; DATE's reflection ran after each batch
    trace = read_trace(result.trace_path)
    station = trace[trace.node == "station_worker_notes"]
    assert station.tokens.map(lambda t: t["calls"]).sum() == brain.calls["worker"]
    assert result.report["llm"]["calls"] == requests == brain.calls["worker"] + brain.calls["judge"]
    assert result.report["llm"]["input_tokens"] == 100 * brain.calls["worker"] + 11 * brain.calls["judge"]
    assert (trace.node == "reflect").sum() == result.report["batches"]
    assert "reflect" in (tmp_path / "run" / "graph.mmd").read_text()
    # the key never reaches the run folder
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_rows_an_llm_cannot_fill_are_rejected_with_raw_answers_kept(table, tmp_path):
    # Setup: the LLM fills `color` (categorical); row 0 of every call is answered with an invalid value
    brain = TableBrain(values=lambda col, row: "E", bad_rows={0})
    with ScriptedOpenAIServer(brain) as server:
        team = mixed_team(server.url, workers={"color": {"kind": "llm", "model": f"openai-compatible:{server.url}:m"},
                                               "notes": {"kind": "sampler"}})
        result = AssemblyLine(team).fit(table, progress=False).run(60, tmp_path / "run", progress=False)
    worker_rows = result.rejected[result.rejected.stage == "worker"]
    assert len(worker_rows) == result.report["batches"]  # one failed row per batch (one call each)
    assert worker_rows.reason.str.contains("llm worker 'worker_color': no valid value after 3 attempt").all()
    assert worker_rows.color.isna().all() and (result.data.color == "E").all()
    calls = json.loads(next((tmp_path / "run" / "batches").glob("llm-000001-worker_color.json")).read_text())
    assert calls[0]["failed_rows"] == [0] and "not-a-valid-value" in calls[0]["raw"][0]
    assert result.report["rejections"]["worker"]


def test_llm_judge_rejections_carry_the_explanation(table, tmp_path):
    brain = TableBrain(values=lambda col, row: "a fine stone indeed", score=lambda rows: [2 if r["row"] % 2 else 5 for r in rows])
    with ScriptedOpenAIServer(brain) as server:
        result = AssemblyLine(mixed_team(server.url)).fit(table, progress=False).run(40, tmp_path / "run", progress=False)
    judged = result.rejected[result.rejected.stage == "objective"]
    assert len(judged) and judged.reason.str.contains(r"judge 'llm' scored 0.25 < 0.5 — scored 2 by the script").all()


def test_rate_limits_mid_run_are_absorbed(table, tmp_path):
    brain = TableBrain(values=lambda col, row: "a fine stone indeed", rate_limit_first=True)
    with ScriptedOpenAIServer(brain) as server:
        result = AssemblyLine(mixed_team(server.url)).fit(table, progress=False).run(40, tmp_path / "run", progress=False)
    assert len(result.data) == 40 and result.report["llm"]["retries"] == 1


def test_a_run_stopped_by_a_failing_llm_resumes_with_its_llm_agents_rebuilt_from_the_team(table, tmp_path):
    # Setup: the server answers until it is "broken" (401 on every call), then is mended
    brain = TableBrain(values=lambda col, row: "a fine stone indeed")
    state = {"broken": False, "calls": 0}

    def script(request: dict, index: int) -> Reply:
        state["calls"] += 1
        if state["broken"] or state["calls"] > 6:
            state["broken"] = True
            return Reply(status=401, content="invalid key")
        return brain(request, index)

    with ScriptedOpenAIServer(script) as server:
        # Run: the first batches go through, then the key "expires" mid-run
        with pytest.raises(BackendError, match="HTTP 401"):
            AssemblyLine(mixed_team(server.url)).fit(table, progress=False).run(200, tmp_path / "run", progress=False)
        assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"
        state["broken"], state["calls"] = False, -10_000
        result = AssemblyLine.resume(tmp_path / "run", progress=False)
    # Assert: the resumed line's LLM worker (rebuilt from team.yaml, not unpickled) filled every row
    assert len(result.data) == 200 and (result.data.notes == "a fine stone indeed").all()
    assert not list((tmp_path / "run").rglob("*.pkl"))


def test_a_run_with_a_python_chat_model_must_be_resumed_with_it(table, tmp_path):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    def models():
        return {"mine": FakeListChatModel(responses=['{"scores": []}'] * 50)}

    team = Team.from_dict({"batch_rows": 50, "lm": TINY_LM, "judges": [{"kind": "llm", "model": "mine"}]})
    first = AssemblyLine(team, models=models()).fit(table, progress=False).run(30, tmp_path / "run", progress=False)
    # a kill after the last batch, before the run was marked done
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps({**manifest, "status": "running"}))
    with pytest.raises(BackendError, match="models=\\{'mine'"):
        AssemblyLine.resume(tmp_path / "run", progress=False)
    again = AssemblyLine.resume(tmp_path / "run", progress=False, models=models())
    pd.testing.assert_frame_equal(again.data, first.data)


def test_a_bad_key_stops_the_run_with_a_clear_error(table, tmp_path):
    with ScriptedOpenAIServer([Reply(status=401, content="invalid key")] * 5) as server:
        line = AssemblyLine(mixed_team(server.url)).fit(table, progress=False)
        with pytest.raises(BackendError, match="HTTP 401"):
            line.run(20, tmp_path / "run", progress=False)


def test_cli_run_with_an_llm_column_and_judge(table, tmp_path):
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    (tmp_path / "team.yaml").write_text(f"lm: {json.dumps(TINY_LM)}\nbatch_rows: 80\n"
                                        "judges: [{kind: rules, threshold: 1.0}]\nllm: {backoff_s: 0.01}\n")
    brain = TableBrain(values=lambda col, row: "a fine stone indeed")
    with ScriptedOpenAIServer(brain) as server:
        model = f"openai-compatible:{server.url}:m"
        ok = CliRunner().invoke(app, ["run", str(data), "-n", "30", "-o", str(tmp_path / "run"), "-q",
                                      "--team", str(tmp_path / "team.yaml"), "--llm", f"notes={model}",
                                      "--judge-llm", model, "--about", "diamonds"])
    assert ok.exit_code == 0, ok.output
    assert "LLM: " in ok.output and "calls" in ok.output
    assert (pd.read_csv(tmp_path / "run" / "data.csv").notes == "a fine stone indeed").all()
    team = (tmp_path / "run" / "team.yaml").read_text()
    assert "kind: llm" in team and "about: diamonds" in team and SECRET not in team


def test_cli_user_mistakes_with_llm_options(table, tmp_path):
    data = tmp_path / "d.csv"
    table.to_csv(data, index=False)
    runner = CliRunner()
    bad = runner.invoke(app, ["run", str(data), "-n", "5", "--llm", "notes"])
    assert bad.exit_code == 2 and "expected COLUMN=MODEL" in bad.output
    bad = runner.invoke(app, ["run", str(data), "-n", "5", "--llm", "notes=gpt-4o"])
    assert bad.exit_code == 2 and "not a backend shorthand" in bad.output and "Traceback" not in bad.output
    with ScriptedOpenAIServer([Reply(status=401, content="invalid key")] * 3) as server:
        bad = runner.invoke(app, ["llm", "check", f"openai-compatible:{server.url}:m"])
    assert bad.exit_code == 2 and "HTTP 401" in bad.output
    with ScriptedOpenAIServer([Reply.json({"capital": "Paris", "letters": 5})]) as server:
        good = runner.invoke(app, ["llm", "check", f"openai-compatible:{server.url}:m"])
    assert good.exit_code == 0 and "Paris" in good.output
