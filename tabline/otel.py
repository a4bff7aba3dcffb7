"""OpenTelemetry export of a run: the events of its ``trace.jsonl``, also sent as spans, so Phoenix, Langfuse,
Jaeger or any OTLP backend shows the same run.

One span per run (``tabline run <run_id>``, ``tabline align <run_id>``) holds one child span per node
execution, named after the node, with the event's own start and end (an event's ``ts`` is when the node
ended; it began ``seconds`` earlier). A node that called an LLM carries the GenAI semantic conventions
(``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.usage.*``) and OpenInference's (``openinference.span.kind``
``LLM``, ``llm.model_name``, ``llm.token_count.*``); every other node is a ``CHAIN`` span. A node whose agent
failed is an ``ERROR`` span with the message. See docs/otel.md.

The packages are an optional extra (``pip install "tabline[otel]"``). What ``otel=`` of `AssemblyLine.run`,
`AssemblyLine.resume` and `align_model` takes:

- ``None`` (default): export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set — without
  the packages that is a warning and the run goes on;
- ``True``: export over OTLP/HTTP, to the endpoint the ``OTEL_EXPORTER_OTLP_*`` variables name (default
  ``http://localhost:4318``); without the packages, `OtelUnavailableError` before any work;
- ``False``: never;
- an OpenTelemetry ``TracerProvider`` or ``SpanExporter`` of your own (tests use ``InMemorySpanExporter``),
  or an `OtelExport`.

Nothing secret goes into a span: headers (``OTEL_EXPORTER_OTLP_HEADERS``) go to the exporter only, and the value
of any key-like environment variable is masked in every text a span carries.

Example:
    >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    >>> memory = InMemorySpanExporter()
    >>> with run_spans(otel_export(memory), "run", "r1") as spans:
    ...     spans.event({"ts": spans.started + 1.5, "seconds": 0.5, "node": "judges", "agent": "judges",
    ...                  "batch_id": 1, "rows_in": 100, "rows_out": 100,
    ...                  "tokens": {"calls": 2, "input_tokens": 30, "output_tokens": 8, "model": "m"}})
    >>> root, node = sorted(memory.get_finished_spans(), key=lambda s: s.parent is not None)
    >>> root.name, node.name, node.parent.span_id == root.context.span_id
    ('tabline run r1', 'judges', True)
    >>> (node.end_time - node.start_time) / 1e9, node.attributes["llm.token_count.total"]
    (0.5, 38)
"""
from __future__ import annotations

import contextlib
import json
import numbers
import os
import re
import threading
import time
import urllib.parse
import warnings
from typing import Any, Iterator, Mapping

from tabline import __version__
from tabline.errors import InvalidArgumentError, TablineError

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
INSTALL = 'pip install "tabline[otel]" (in a checkout: pip install -e ".[otel]")'
_SECRET_NAME = re.compile(r"(API_?KEY|SECRET|TOKEN|PASSWORD|PASSWD)$", re.I)
_HEADER_VARIABLES = ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS")
_DETAIL_CHARS = 4000  # a span attribute, not a file: backends cut long values anyway


class OtelUnavailableError(TablineError):
    """OpenTelemetry export was asked for, but its packages are not installed."""


class OtelWarning(UserWarning):
    """An OTLP endpoint is set in the environment, but the packages to export to it are not installed."""


def endpoint_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """The OTLP endpoint ``env`` (default: the process's environment) names, or None — also when
    ``OTEL_SDK_DISABLED`` is true, OpenTelemetry's own off switch.

    Example:
        >>> endpoint_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:6006"})
        'http://127.0.0.1:6006'
        >>> endpoint_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:6006", "OTEL_SDK_DISABLED": "true"})
    """
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    return next((env[v] for v in ENDPOINT_VARIABLES if env.get(v, "").strip()), None)


def require_otel() -> None:
    """Raise `OtelUnavailableError`, saying what to install, unless the SDK and the OTLP/HTTP exporter import.

    Example:
        >>> require_otel()  # installed here
    """
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise OtelUnavailableError(f"OpenTelemetry export needs the 'otel' extra, which is not installed "
                                   f"({exc.name or exc}): {INSTALL}") from None


class OtelExport:
    """Where a run's spans go: a ``TracerProvider`` of yours, a ``SpanExporter`` (batched, flushed at the end
    of the run), or, with neither, OTLP over HTTP configured by the ``OTEL_EXPORTER_OTLP_*`` variables.

    Example:
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        >>> OtelExport(exporter=InMemorySpanExporter()).describe()
        'InMemorySpanExporter'
    """

    def __init__(self, provider: Any = None, exporter: Any = None):
        self.provider, self.exporter = provider, exporter

    def describe(self) -> str:
        """Where the spans go, in a few words (the CLI prints it)."""
        if self.provider is not None:
            return "the tracer provider given"
        if self.exporter is not None:
            return type(self.exporter).__name__
        base = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or \
            (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318").rstrip("/") + "/v1/traces")
        return f"OTLP/HTTP to {base}"

    def open(self) -> tuple[Any, bool]:
        """(tracer provider, whether this run owns it and shuts it down at the end)."""
        if self.provider is not None:
            return self.provider, False
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter = self.exporter
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: the OTEL_EXPORTER_OTLP_* variables
        attributes = {"service.version": __version__}
        if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", ""):
            attributes["service.name"] = "tabline"
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(exporter))
        return provider, True


def otel_export(otel: Any = None) -> OtelExport | None:
    """What ``otel=`` asks for (see the module's text), checked now, so a missing package fails before any work.

    Example:
        >>> otel_export(False) is None, type(otel_export(True)).__name__
        (True, 'OtelExport')
        >>> otel_export("yes")
        Traceback (most recent call last):
        tabline.errors.InvalidArgumentError: otel must be True, False, None, a TracerProvider or a SpanExporter, got 'yes'
    """
    if otel is False:
        return None
    if isinstance(otel, OtelExport):  # resolved already, by a caller that checks before its own long work
        return otel
    if otel is None:
        if endpoint_from_env() is None:
            return None
        try:
            require_otel()
        except OtelUnavailableError:
            warnings.warn(f"{ENDPOINT_VARIABLES[0]} is set, but spans are not exported: {INSTALL}", OtelWarning,
                          stacklevel=2)
            return None
        return OtelExport()
    if otel is True:
        require_otel()
        return OtelExport()
    require_otel()  # whoever built a provider or an exporter has the packages; this only says so if not
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import TracerProvider

    if isinstance(otel, TracerProvider):
        return OtelExport(provider=otel)
    if isinstance(otel, SpanExporter):
        return OtelExport(exporter=otel)
    raise InvalidArgumentError(f"otel must be True, False, None, a TracerProvider or a SpanExporter, got {otel!r}")


class RunSpans:
    """The spans of one run: opened by `run_spans`; `event` adds the span of one finished node execution."""

    def __init__(self, tracer: Any, name: str, attributes: Mapping[str, Any]):
        from opentelemetry import trace

        self._secrets = _secrets()
        self.started = time.time()
        self._start_ns = time.time_ns()
        self._last_ns = self._start_ns
        self._lock = threading.Lock()  # a level's stations run in threads and record concurrently
        self._tracer = tracer
        self.root = tracer.start_span(name, start_time=self._start_ns,
                                      attributes=self._clean({"openinference.span.kind": "CHAIN", **attributes}))
        self._context = trace.set_span_in_context(self.root)
        self.spans = 0

    def event(self, event: Mapping[str, Any]) -> None:
        """One node execution (a trace event; a ``state`` in it is ignored) as a finished child span."""
        seconds = float(event.get("seconds") or 0.0)
        end_ns = int(float(event["ts"]) * 1e9) if event.get("ts") is not None else time.time_ns()
        # ts is rounded to the millisecond: keep the span inside the run's even when that rounding says otherwise
        start_ns = max(self._start_ns, end_ns - int(seconds * 1e9))
        end_ns = max(end_ns, start_ns)
        span = self._tracer.start_span(str(event.get("node")), context=self._context, start_time=start_ns,
                                       attributes=self._clean(event_attributes(event)))
        if event.get("error"):
            _fail(span, self._mask(str(event["error"])))
        span.end(end_time=end_ns)
        with self._lock:
            self._last_ns = max(self._last_ns, end_ns)
            self.spans += 1

    def note(self, **attributes: Any) -> None:
        """Attributes of the whole run (``tabline.<name>``), e.g. its stop reason once it is known."""
        self.root.set_attributes(self._clean({f"tabline.{k}": v for k, v in attributes.items()}))

    def finish(self, error: BaseException | None = None) -> None:
        """End the run's span: ``ERROR`` with the message when the run failed or was interrupted."""
        if error is not None:
            _fail(self.root, self._mask(str(error) or type(error).__name__), type(error).__name__)
        self.root.end(end_time=max(time.time_ns(), self._last_ns))

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _clean(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in attributes.items():
            value = _plain(value)
            if value is not None:
                out[key] = self._mask(value) if isinstance(value, str) else value
        return out


@contextlib.contextmanager
def run_spans(export: OtelExport | None, kind: str, run_id: str,
              attributes: Mapping[str, Any] | None = None) -> Iterator[RunSpans | None]:
    """The spans of run ``run_id`` (``kind``: run, align) for the block, or None when ``export`` is None. The
    run's span ends with the block — marked failed if the block raises — and every span is flushed, even then.

    Example:
        >>> with run_spans(None, "run", "r1") as spans:
        ...     spans is None
        True
    """
    if export is None:
        yield None
        return
    provider, owned = export.open()
    spans = RunSpans(provider.get_tracer("tabline", __version__), f"tabline {kind} {run_id}",
                     {"tabline.run_id": run_id, "tabline.kind": kind, **(attributes or {})})
    try:
        yield spans
    except BaseException as exc:  # KeyboardInterrupt too: the spans so far are what the user wants to see
        spans.finish(exc)
        raise
    else:
        spans.finish()
    finally:
        provider.force_flush()
        if owned:
            provider.shutdown()


def event_attributes(event: Mapping[str, Any]) -> dict[str, Any]:
    """The span attributes of one trace event (values may be None: the caller drops those).

    Example:
        >>> a = event_attributes({"node": "station_notes", "agent": "notes", "batch_id": 3, "arm": "all",
        ...                       "rejected": {"sanity": {"copy": 2, "invalid": 1}},
        ...                       "tokens": {"calls": 1, "input_tokens": 100, "output_tokens": 40,
        ...                                  "model": "gpt-4o-mini", "system": "openai"}})
        >>> a["openinference.span.kind"], a["gen_ai.request.model"], a["llm.token_count.total"], a["tabline.rejected"]
        ('LLM', 'gpt-4o-mini', 140, 3)
    """
    tokens = event.get("tokens") if isinstance(event.get("tokens"), Mapping) else None
    rejected = event.get("rejected") if isinstance(event.get("rejected"), Mapping) else {}
    out: dict[str, Any] = {
        "openinference.span.kind": "LLM" if tokens else "CHAIN",
        "tabline.run_id": event.get("run_id"), "tabline.node": event.get("node"), "tabline.agent": event.get("agent"),
        "tabline.batch_id": event.get("batch_id"), "tabline.arm": event.get("arm"), "tabline.round": event.get("round"),
        "tabline.rows_in": event.get("rows_in"), "tabline.rows_out": event.get("rows_out"),
        "tabline.seconds": event.get("seconds"),
    }
    if rejected:
        out["tabline.rejected"] = sum(sum(v.values()) for v in rejected.values() if isinstance(v, Mapping))
        out["tabline.rejections"] = json.dumps(rejected, default=str)
    if event.get("detail") is not None:
        out["tabline.detail"] = json.dumps(event["detail"], default=str)[:_DETAIL_CHARS]
    if tokens:
        tin, tout = int(tokens.get("input_tokens") or 0), int(tokens.get("output_tokens") or 0)
        model = tokens.get("model")
        out.update({
            "gen_ai.operation.name": "chat", "gen_ai.system": tokens.get("system"), "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": tin, "gen_ai.usage.output_tokens": tout,
            "llm.system": tokens.get("system"), "llm.model_name": model,
            "llm.token_count.prompt": tin, "llm.token_count.completion": tout, "llm.token_count.total": tin + tout,
        })
        out.update({f"tabline.llm.{k}": tokens.get(k) for k in ("calls", "cached", "retries", "repairs", "failures",
                                                                "cost_usd")})
    return out


def _fail(span: Any, message: str, kind: str = "AgentError") -> None:
    from opentelemetry.trace import Status, StatusCode

    span.add_event("exception", {"exception.type": kind, "exception.message": message})
    span.set_status(Status(StatusCode.ERROR, message))


def _plain(value: Any) -> Any:
    """A value an attribute can hold (numpy numbers and paths included); None for what it cannot."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return None if value != value else float(value)  # NaN: a missing cell read back by pandas
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _secrets() -> list[str]:
    """Values that must never appear in a span: key-like environment variables and the exporter's headers."""
    found = [v for k, v in os.environ.items() if _SECRET_NAME.search(k)]
    for name in _HEADER_VARIABLES:
        for item in os.environ.get(name, "").split(","):
            value = urllib.parse.unquote(item.partition("=")[2]).strip()  # the format writes a space as %20
            found += [value, *value.split()]  # "Basic abc…": the whole value and the credential alone
    # long ones first, so a key is masked whole before a shorter secret inside it is
    return sorted({v for v in found if len(v) >= 8}, key=len, reverse=True)


__all__ = ["OtelExport", "OtelUnavailableError", "OtelWarning", "RunSpans", "endpoint_from_env", "event_attributes",
           "otel_export", "require_otel", "run_spans"]
