"""OpenTelemetry export: real runs (the line, an LLM worker on the scripted server, TabGRAA's loop) exported to
the SDK's in-memory exporter and compared with their trace.jsonl; `tabline run` exporting to a real OTLP/HTTP
receiver on 127.0.0.1; and what happens without the packages."""
from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from typer.testing import CliRunner

from llm_roles import TableBrain
from llm_server import ScriptedOpenAIServer
from tabline.agents.refs import import_ref
from tabline.agents.roles import AgentError
from tabline.agents.team import Team
from tabline.cli import app
from tabline.line.assembly import AssemblyLine
from tabline.otel import OtelUnavailableError, OtelWarning, otel_export, run_spans
from tabline.run_folder import read_trace

TINY_LM = {"max_epochs": 1, "n_layer": 1, "n_embd": 32}
SECRET = "sk-otel-test-secret-8080"
LINE_AGENTS = Path(__file__).resolve().parent / "line"


@pytest.fixture(autouse=True)
def _no_endpoint(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def split(spans):
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in roots]
    return roots[0], [s for s in spans if s.parent is not None]


def assert_spans_match_trace(spans, trace: pd.DataFrame, name: str) -> None:
    """One child span per event of the trace, under one run span, with the event's times and fields."""
    root, children = split(spans)
    assert root.name == name
    assert len(children) == len(trace)
    assert Counter(s.name for s in children) == Counter(trace.node)
    assert all(s.parent.span_id == root.context.span_id and s.context.trace_id == root.context.trace_id
               for s in children)
    assert all(root.start_time <= s.start_time <= s.end_time <= root.end_time for s in children)
    # ts is when the node ended (rounded to the ms) and it ran `seconds`: the span is that interval
    by_end = sorted(children, key=lambda s: (s.end_time, s.name))
    events = trace.assign(end=(trace.ts * 1e9).round()).sort_values(["end", "node"]).to_dict("records")
    for span, event in zip(by_end, events):
        a = span.attributes
        assert span.name == a["tabline.node"] == event["node"]
        assert abs(span.end_time - event["ts"] * 1e9) < 1e6
        assert abs((span.end_time - span.start_time) / 1e9 - event["seconds"]) < 2e-3
        assert a["tabline.agent"] == event["agent"]
        for key in ("batch_id", "round", "rows_in", "rows_out"):
            if key in event and pd.notna(event[key]):
                assert a[f"tabline.{key}"] == event[key], (span.name, key)
        if isinstance(event.get("arm"), str):
            assert a["tabline.arm"] == event["arm"]
        rejected = event.get("rejected") if isinstance(event.get("rejected"), dict) else {}
        assert a.get("tabline.rejected", 0) == sum(sum(k.values()) for k in rejected.values())


def test_a_line_runs_spans_are_its_trace_events(diamonds, tmp_path):
    # Setup: the embedded LM, a rules judge and the QC chain, exported to memory
    memory = InMemorySpanExporter()
    team = Team.from_dict({"batch_rows": 100, "lm": TINY_LM, "target": "cut",
                           "judges": [{"kind": "rules", "threshold": 1.0}]})
    # Run
    result = AssemblyLine(team).run(150, tmp_path / "run", data=diamonds.head(400), progress=False, otel=memory)
    # Assert: the spans are the trace, node for node; nothing called an LLM, so every span is a CHAIN
    trace = read_trace(result.trace_path)
    spans = memory.get_finished_spans()
    assert_spans_match_trace(spans, trace, f"tabline run {result.report['run_id']}")
    assert result.report["batches"] >= 2 and trace.rejected.map(bool).any()  # several batches, some rejections
    root, children = split(spans)
    assert {s.attributes["openinference.span.kind"] for s in spans} == {"CHAIN"}
    assert not any(k.startswith(("gen_ai.", "llm.")) for s in spans for k in s.attributes)
    assert root.status.is_ok
    assert (root.attributes["tabline.stop_reason"], root.attributes["tabline.accepted"]) == ("target", 150)
    assert root.resource.attributes["service.name"] == "tabline"


def test_llm_spans_carry_the_model_and_tokens_the_server_reported_and_never_the_key(diamonds, tmp_path, monkeypatch):
    # Setup: the server answers model "m" as "m-2024-05-13", as OpenAI answers with a dated version
    monkeypatch.setenv("TABLINE_LLM_API_KEY", SECRET)
    monkeypatch.setenv("TABLINE_CACHE_DIR", str(tmp_path / "cache"))
    brain, sent = TableBrain(values=lambda col, row: f"{row['cut']} stone", score=4), []

    def script(request, index):
        reply = dataclasses.replace(brain(request, index), model="m-2024-05-13")
        sent.append(reply)
        return reply

    table = diamonds.head(300)[["carat", "cut", "price"]].assign(notes=lambda d: d.cut + " stone")
    memory = InMemorySpanExporter()
    with ScriptedOpenAIServer(script) as server:
        model = f"openai-compatible:{server.url}:m"
        team = Team.from_dict({"batch_rows": 60, "workers": {"*": {"kind": "sampler"},
                                                             "notes": {"kind": "llm", "model": model}},
                               "judges": [{"kind": "rules", "threshold": 1.0}, {"kind": "llm", "model": model}],
                               "llm": {"backoff_s": 0.01, "backoff_max_s": 0.05}})
        # Run
        result = AssemblyLine(team).fit(table, progress=False).run(60, tmp_path / "run", progress=False,
                                                                   otel=memory)
    # Assert: the LLM nodes are LLM spans naming the answering model, with the tokens of the trace ...
    trace = read_trace(result.trace_path)
    spans = memory.get_finished_spans()
    assert_spans_match_trace(spans, trace, f"tabline run {result.report['run_id']}")
    llm = [s for s in spans if s.attributes.get("openinference.span.kind") == "LLM"]
    assert {s.name for s in llm} == {"station_worker_notes", "judges"}
    for span in llm:
        a = span.attributes
        assert a["llm.model_name"] == a["gen_ai.request.model"] == "m-2024-05-13"
        assert a["gen_ai.system"] == a["llm.system"] == "openai"
        assert a["llm.token_count.total"] == a["llm.token_count.prompt"] + a["llm.token_count.completion"]
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == \
            (a["llm.token_count.prompt"], a["llm.token_count.completion"])
    station = trace[trace.node == "station_worker_notes"].tokens
    assert sorted(s.attributes["llm.token_count.prompt"] for s in llm if s.name == "station_worker_notes") == \
        sorted(t["input_tokens"] for t in station)
    # ... which add up to what the server reported, request by request
    assert sum(s.attributes["llm.token_count.prompt"] for s in llm) == sum(r.prompt_tokens for r in sent)
    assert sum(s.attributes["llm.token_count.completion"] for s in llm) == sum(r.completion_tokens for r in sent)
    assert sum(s.attributes["tabline.llm.calls"] for s in llm) == len(server.requests) == len(sent)
    # the trace itself now names the model too
    assert set(station.map(lambda t: t["model"])) == {"m-2024-05-13"}
    # the key reached the server, and no span
    assert server.headers[0]["authorization"] == f"Bearer {SECRET}"
    assert not any(SECRET in s.to_json() for s in spans)


def test_a_failing_agent_is_an_error_span_and_the_spans_so_far_are_flushed(diamonds, tmp_path, monkeypatch):
    # Setup: a user's worker that raises from its second batch on
    fault = import_ref("custom_agents_example:FAULT", [LINE_AGENTS])
    for key, value in {"kind": "raise", "after": 1, "calls": 0}.items():
        monkeypatch.setitem(fault, key, value)
    team = Team.from_dict({"batch_rows": 100, "workers": {"*": {"kind": "sampler"},
                                                          "z": {"kind": "python", "ref": "custom_agents_example:faulty_z"}},
                           "judges": [{"kind": "rules", "threshold": 1.0}]}, code_path=[str(LINE_AGENTS)])
    memory = InMemorySpanExporter()
    line = AssemblyLine(team).fit(diamonds.head(400), progress=False)
    # Run
    with pytest.raises(AgentError) as exc:
        line.run(300, tmp_path / "run", progress=False, otel=memory)
    # Assert: the failed node is an ERROR span with the agent's message, and so is the run's
    trace = read_trace(tmp_path / "run" / "trace.jsonl")
    spans = memory.get_finished_spans()
    assert_spans_match_trace(spans, trace, f"tabline run {trace.run_id.iloc[0]}")
    root, children = split(spans)
    failed = [s for s in children if s.status.status_code == StatusCode.ERROR]
    assert [s.name for s in failed] == ["station_faulty_z"]
    assert "raised ZeroDivisionError: a bug in the user's code" in failed[0].status.description
    assert failed[0].status.description == trace.dropna(subset=["error"]).error.iloc[0]
    assert root.status.status_code == StatusCode.ERROR
    assert str(exc.value).startswith(root.status.description)  # the message, before the resume hint is added
    # Run: the user fixes the bug and resumes; the continued part is a second trace of the same run
    monkeypatch.setitem(fault, "kind", None)
    again = InMemorySpanExporter()
    result = AssemblyLine.resume(tmp_path / "run", progress=False, otel=again)
    trace = read_trace(result.trace_path)
    assert_spans_match_trace(again.get_finished_spans(), trace.iloc[len(spans) - 1:], root.name)
    resumed, _ = split(again.get_finished_spans())
    assert resumed.attributes["tabline.resumed"] is True and resumed.status.is_ok


def test_tabgraa_rounds_are_spans_under_one_align_span(diamonds, tmp_path):
    from tabline.graphs.tabgraa import align_model
    from tabline.training import TabularLM, TabularLMConfig
    from tabline.training.tabgraa import AlignConfig

    # Setup
    df = diamonds.head(60)[["carat", "cut", "color"]]
    TabularLM(TabularLMConfig(**TINY_LM)).fit(df, progress=False).save(tmp_path / "m")
    memory = InMemorySpanExporter()
    # Run
    report = align_model(tmp_path / "m", df, AlignConfig(rounds=2, reward="dcr"), tmp_path / "aligned",
                         progress=False, otel=memory)
    # Assert: generate → score → align twice, as the aligned model's trace.jsonl says
    trace = read_trace(tmp_path / "aligned" / "trace.jsonl")
    assert list(trace.node) == ["generate", "score", "align"] * 2
    assert_spans_match_trace(memory.get_finished_spans(), trace, f"tabline align {report['run_id']}")


def test_a_key_quoted_in_an_error_or_a_detail_is_masked_in_the_spans(monkeypatch):
    # Setup: an LLM key and an exporter credential in the environment, and an event that quotes both
    monkeypatch.setenv("TABLINE_LLM_API_KEY", SECRET)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Basic%20lf-credential-1234")
    memory = InMemorySpanExporter()
    # Run
    with run_spans(otel_export(memory), "run", "r1") as spans:
        spans.event({"ts": spans.started + 0.2, "seconds": 0.1, "node": "station_notes", "agent": "notes",
                     "error": f"HTTP 401: Incorrect API key provided: {SECRET}",
                     "detail": {"sent": "Basic lf-credential-1234"}})
    # Assert: the message is kept, the secrets are not
    root, [node] = split(memory.get_finished_spans())
    assert node.status.description == "HTTP 401: Incorrect API key provided: ***"
    assert node.attributes["tabline.detail"] == '{"sent": "***"}'  # the header's whole value
    assert not any(secret in s.to_json() for s in (root, node) for secret in (SECRET, "lf-credential-1234"))


class _Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps what is POSTed to /v1/traces, answers an empty success."""

    got: list[tuple[str, dict, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200 if self.path == "/v1/traces" else 404)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture()
def receiver():
    _Receiver.got = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.got
    server.shutdown()
    server.server_close()


@pytest.fixture()
def sampler_run(diamonds, tmp_path):
    data, team = tmp_path / "d.csv", tmp_path / "team.yaml"
    diamonds.head(300).to_csv(data, index=False)
    team.write_text("batch_rows: 100\nworkers: {'*': {kind: sampler}}\njudges: [{kind: rules}]\n")
    return ["run", str(data), "-n", "150", "-o", str(tmp_path / "run"), "--team", str(team), "-q", "--no-view"]


def test_tabline_run_exports_to_the_otlp_endpoint_in_the_environment(sampler_run, tmp_path, receiver, monkeypatch):
    # Setup: only the environment asks for export (no --otel), with an auth header as Langfuse wants one
    url, got = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Basic%20{SECRET}")
    # Run
    r = CliRunner().invoke(app, sampler_run)
    # Assert: protobuf POSTs to /v1/traces holding one span per trace event, named as the nodes are
    assert r.exit_code == 0, r.output
    assert f"spans → OTLP/HTTP to {url}/v1/traces" in r.output
    assert got and {path for path, _, _ in got} == {"/v1/traces"}
    assert all(h["content-type"] == "application/x-protobuf" and h["authorization"] == f"Basic {SECRET}"
               for _, h, _ in got)
    payload = b"".join(body for _, _, body in got)
    trace = read_trace(tmp_path / "run" / "trace.jsonl")
    for node in set(trace.node):
        assert node.encode() in payload, node
    assert f"tabline run {trace.run_id.iloc[0]}".encode() in payload
    assert SECRET.encode() not in payload
    assert Counter(span_names(got)) == Counter([*trace.node, f"tabline run {trace.run_id.iloc[0]}"])


def test_tabline_align_otel_exports_its_rounds(diamonds, tmp_path, receiver, monkeypatch):
    from tabline.training import TabularLM, TabularLMConfig

    # Setup: the traces endpoint given whole, as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT takes it
    url, got = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{url}/v1/traces")
    diamonds.head(100).to_csv(tmp_path / "d.csv", index=False)
    TabularLM(TabularLMConfig(**TINY_LM)).fit(diamonds.head(100), progress=False).save(tmp_path / "m")
    # Run
    r = CliRunner().invoke(app, ["align", str(tmp_path / "m"), "--data", str(tmp_path / "d.csv"), "--rounds", "2",
                                 "--reward", "dcr", "--samples", "32", "-o", str(tmp_path / "aligned"), "-q", "--otel"])
    # Assert
    assert r.exit_code == 0, r.output
    run_id = json.loads((tmp_path / "aligned" / "align.json").read_text())["run_id"]
    assert Counter(span_names(got)) == Counter(["generate", "score", "align"] * 2 + [f"tabline align {run_id}"])


def span_names(got: list[tuple[str, dict, bytes]]) -> list[str]:
    """The names of the spans in the receiver's OTLP/HTTP requests, decoded as a backend decodes them."""
    names = []
    for _, _, body in got:
        request = ExportTraceServiceRequest.FromString(body)
        names += [s.name for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    return names


def test_an_endpoint_that_is_down_costs_the_run_nothing(sampler_run, tmp_path):
    # Setup: --otel to a port nothing listens on
    # Run
    r = CliRunner().invoke(app, [*sampler_run, "--otel"], env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":
                                                                   "http://127.0.0.1:9/v1/traces",
                                                                   "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    # Assert: the run is whole; the export's failure is the exporter's business
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "run" / "report.json").read_text())["accepted"] == 150


@pytest.fixture()
def no_otel(monkeypatch):
    """As if the 'otel' extra were not installed: every opentelemetry import fails."""
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)


def test_without_the_packages_otel_is_a_clear_error_before_any_work(sampler_run, tmp_path, no_otel):
    r = CliRunner().invoke(app, [*sampler_run, "--otel"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert 'pip install "tabline[otel]"' in r.output and 'pip install -e ".[otel]"' in r.output
    assert not (tmp_path / "run").exists()
    with pytest.raises(OtelUnavailableError, match="'otel' extra"):
        AssemblyLine(Team()).run(10, tmp_path / "api", data=pd.DataFrame({"a": [1, 2, 3]}), otel=True)
    assert not (tmp_path / "api").exists()


def test_without_the_packages_an_endpoint_in_the_environment_is_a_warning(sampler_run, tmp_path, diamonds, no_otel,
                                                                          monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    r = CliRunner().invoke(app, sampler_run)
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.output.splitlines() if "spans are not exported" in line]
    assert len(warnings) == 1 and 'pip install "tabline[otel]"' in warnings[0]
    assert (tmp_path / "run" / "data.csv").exists()
    team = Team.from_dict({"batch_rows": 100, "workers": {"*": {"kind": "sampler"}}, "judges": [{"kind": "rules"}]})
    with pytest.warns(OtelWarning, match="OTEL_EXPORTER_OTLP_ENDPOINT is set, but spans are not exported"):
        result = AssemblyLine(team).run(50, tmp_path / "api", data=diamonds.head(300), progress=False)
    assert len(result.data) == 50
