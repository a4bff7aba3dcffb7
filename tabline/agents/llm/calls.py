"""One structured LLM call, done properly: output type, repair loop, backoff, timeout, concurrency, tokens.

`StructuredCaller.ask` sends messages and expects JSON matching a pydantic type. Two kinds of failure are
handled differently:
- *transient* (429, 5xx, timeouts, dropped connections): the same request is sent again after an
  exponential backoff with jitter (`backoff_delay`), honouring a server's ``Retry-After``;
- *the answer is wrong* (not JSON, wrong shape, or values the table cannot hold — the caller's ``check``):
  the answer and its problems are shown to the model and it is asked again, ``attempts`` times in all.
Whatever happens, the raw text of every answer is kept in the `CallOutcome`; after the last attempt the
caller records it as a failure. Errors a retry cannot fix (401, 404, a bad request) raise `BackendError`.

Example:
    >>> backoff_delay(0, base=1.0, cap=60.0, u=0.5), backoff_delay(3, base=1.0, cap=60.0, u=0.0)
    (0.75, 4.0)
    >>> backoff_delay(10, base=1.0, cap=60.0, u=1.0, retry_after=5.0)
    60.0
    >>> extract_json('Sure! ```json\\n{"a": 1}\\n``` Hope this helps.')
    '{"a": 1}'
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

from tabline.agents.llm.backends import BackendError, ModelRef

T = TypeVar("T", bound=BaseModel)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


_request_gate: Callable[[], Any] = contextlib.nullcontext  # see use_request_gate


def use_request_gate(gate: Callable[[], Any] | None) -> None:
    """Make every LLM request of this process also hold ``gate()`` (an async context manager) while it runs:
    how a Ray replica shares one cluster-wide budget (`tabline.cluster.budget`). None: no gate.

    Example:
        >>> use_request_gate(None)
    """
    global _request_gate
    _request_gate = gate or contextlib.nullcontext


def backoff_delay(retry: int, *, base: float, cap: float, u: float, retry_after: float | None = None) -> float:
    """Seconds to wait before transient retry ``retry`` (0-based): "equal jitter" — half of the doubled
    delay is fixed, half is random (``u`` in [0, 1)) — so a crowd of workers does not retry in step; a
    server's ``Retry-After`` is a floor. Never more than ``cap``."""
    d = min(cap, base * 2.0 ** retry)
    d = d / 2 + u * d / 2
    if retry_after is not None:
        d = max(d, retry_after)
    return min(cap, d)


def extract_json(text: str) -> str:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost ``{...}``."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return stripped
    fenced = _FENCE.search(text)
    if fenced:
        return fenced.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    return text[start:end + 1] if 0 <= start < end else stripped


@dataclass
class Usage:
    """What the calls of one agent cost since the last `take` (into a trace event)."""

    calls: int = 0  # requests answered by the backend (cache hits not counted)
    cached: int = 0  # answers served from the cache
    input_tokens: int = 0
    output_tokens: int = 0
    retries: int = 0  # transient retries (429 / 5xx / timeout)
    repairs: int = 0  # re-asks after an answer that did not parse or validate
    failures: int = 0  # items given up after the last attempt (their raw text is kept)
    cost_usd: float | None = None
    model: str | None = None  # the model that answered, as the backend named it (else as it was asked for)
    system: str | None = None  # who serves it, in OpenTelemetry's GenAI words (`ModelRef.system`)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for k, v in counts.items():
                if k == "cost_usd":
                    self.cost_usd = (self.cost_usd or 0.0) + v
                else:
                    setattr(self, k, getattr(self, k) + int(v))

    def name(self, model: str, system: str) -> None:
        """Which model the counts are for (the last one named wins: one agent asks one model)."""
        with self._lock:
            self.model, self.system = model, system

    def take(self) -> dict[str, Any] | None:
        """The counts so far as a dict (None when nothing happened), then zero them. ``model`` and ``system``
        are in it once a call named them."""
        with self._lock:
            out = {k: getattr(self, k) for k in ("calls", "cached", "input_tokens", "output_tokens", "retries",
                                                  "repairs", "failures")}
            out["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 6)
            out.update({k: getattr(self, k) for k in ("model", "system") if getattr(self, k)})
            for k in (*out, "model", "system"):
                setattr(self, k, None if k in ("cost_usd", "model", "system") else 0)
        return out if any(out[k] for k in ("calls", "cached", "failures")) else None

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        self.__init__()


def merge_usage(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Sum several `Usage.take` results (None entries skipped); the models (and systems) they name are listed
    once each, comma-separated.

    Example:
        >>> a = {"calls": 1, "input_tokens": 10, "cost_usd": None, "model": "m1", "system": "openai"}
        >>> merge_usage([a, None, {**a, "model": "m2"}])
        {'calls': 2, 'input_tokens': 20, 'cost_usd': None, 'model': 'm1, m2', 'system': 'openai'}
    """
    parts = [p for p in parts if p]
    if not parts:
        return None
    names = ("cost_usd", "model", "system")
    out = {k: sum(p.get(k, 0) for p in parts) for k in parts[0] if k not in names}
    costs = [p["cost_usd"] for p in parts if p.get("cost_usd") is not None]
    out["cost_usd"] = round(sum(costs), 6) if costs else None
    for k in ("model", "system"):
        seen = dict.fromkeys(n for p in parts for n in str(p.get(k) or "").split(", ") if n)
        if seen:
            out[k] = ", ".join(seen)
    return out


@dataclass
class CallOutcome:
    """The parsed answer (None when every attempt failed), the raw text of each attempt and its problems."""

    value: Any
    raw: list[str]
    errors: list[str]

    @property
    def ok(self) -> bool:
        return self.value is not None

    def record(self) -> dict[str, Any]:
        return {"ok": self.ok, "attempts": len(self.raw), "errors": self.errors, "raw": self.raw}


class _Transient(Exception):
    pass


class _BadAnswer(Exception):
    pass


def classify(exc: BaseException) -> tuple[str, float | None]:
    """("transient" | "answer" | "fatal", retry-after seconds) for an exception raised by a chat model call."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "transient", None
    try:
        import openai
    except ImportError:  # pragma: no cover
        openai = None
    if openai is not None:
        if isinstance(exc, (openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)):
            return "answer", None  # the answer was cut off or filtered: a problem to show the model
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            after = _retry_after(exc)
            return ("transient" if status == 429 or status >= 500 else "fatal"), after
        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return "transient", None
    name = type(exc).__name__
    if "Timeout" in name or "Connect" in name:
        return "transient", None
    return "fatal", None


def _retry_after(exc: Any) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"HTTP {status}: {text}" if status else f"{type(exc).__name__}: {text}"


class StructuredCaller:
    """Structured calls of one agent to one model; holds the agent's `Usage`.

    Example:
        >>> caller = StructuredCaller(ModelRef("openai-compatible:http://127.0.0.1:9/v1:m"), role="judge")
        >>> caller.usage.take() is None
        True
    """

    def __init__(self, ref: ModelRef, *, role: str):
        self.ref, self.role = ref, role
        self.usage = Usage()

    async def ask(self, messages: list[BaseMessage], output: type[T], *, semaphore: asyncio.Semaphore,
                  check: Callable[[Any], list[str]] | None = None, seed: int | None = None,
                  parse_as: type[BaseModel] | None = None) -> CallOutcome:
        """Ask until the answer parses and ``check`` finds no problem (``attempts`` at most). The model is
        shown ``output``'s JSON schema; the answer is parsed as ``parse_as`` (default ``output``): a looser
        type lets ``check`` keep the good rows of an answer with a few bad ones."""
        settings = self.ref.settings
        history = list(messages)
        raw: list[str] = []
        errors: list[str] = []
        for attempt in range(settings.attempts):
            try:
                text = await self._invoke(history, output, semaphore, seed)
                parsed = (parse_as or output).model_validate_json(extract_json(text))
            except _Transient as exc:
                errors.append(str(exc))
                raw.append("")
                break  # the backend is not answering; re-asking would only wait longer
            except _BadAnswer as exc:
                text, problems = "", [str(exc)]
            except ValidationError as exc:
                problems = [_validation_summary(exc)]
            else:
                problems = check(parsed) if check else []
                if not problems:
                    raw.append(text)
                    return CallOutcome(parsed, raw, errors)
            raw.append(text)
            errors.append("; ".join(problems))
            if attempt + 1 < settings.attempts:
                self.usage.add(repairs=1)
                history = [*history, AIMessage(text), HumanMessage(repair_message(problems))]
        return CallOutcome(None, raw, errors)

    def ask_sync(self, messages: list[BaseMessage], output: type[T], **kwargs: Any) -> CallOutcome:
        """`ask` for one call from synchronous code (the coordinator, an evolver, a probe)."""
        async def go() -> CallOutcome:
            return await self.ask(messages, output, semaphore=asyncio.Semaphore(1), **kwargs)

        return run_sync(go)

    async def _invoke(self, history: list[BaseMessage], output: type[BaseModel], semaphore: asyncio.Semaphore,
                      seed: int | None) -> str:
        settings = self.ref.settings
        model = self.ref.get()
        kwargs: dict[str, Any] = {}
        if self.ref.structured == "json_schema":
            kwargs["response_format"] = {"type": "json_schema", "json_schema": {
                "name": output.__name__, "schema": output.model_json_schema()}}
        if seed is not None and self.ref.spec not in getattr(self.ref, "_registry", {}):
            kwargs["seed"] = seed
        jitter = random.Random()
        last = ""
        self.usage.name(self.ref.model_name, self.ref.system)
        for retry in range(settings.transient_retries + 1):
            try:
                async with semaphore, _request_gate():
                    message = await asyncio.wait_for(model.ainvoke(history, **kwargs), settings.timeout_s)
            except Exception as exc:  # providers raise many types; `classify` sorts them
                kind, after = classify(exc)
                if kind == "answer":
                    self._count_usage(getattr(exc, "completion", None))
                    cut = "cut off at the token limit" if "Length" in type(exc).__name__ else "blocked by a content filter"
                    raise _BadAnswer(f"the answer was {cut}; answer more briefly") from None
                if kind == "fatal":
                    raise BackendError(f"{self.role} model {self.ref.label}: {_describe(exc)}") from None
                last = "timeout" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else _describe(exc)
                if retry == settings.transient_retries:
                    break
                self.usage.add(retries=1)
                await asyncio.sleep(backoff_delay(retry, base=settings.backoff_s, cap=settings.backoff_max_s,
                                                  u=jitter.random(), retry_after=after))
                continue
            self._count(message)
            return _text(message)
        raise _Transient(f"gave up after {settings.transient_retries + 1} tries: {last}")

    def _count_usage(self, completion: Any) -> None:
        usage = getattr(completion, "usage", None)
        if usage is not None:
            self.usage.add(calls=1, input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
                           output_tokens=getattr(usage, "completion_tokens", 0) or 0)

    def _count(self, message: AIMessage) -> None:
        reported = message.response_metadata.get("model_name")
        if reported:
            self.usage.name(str(reported), self.ref.system)
        if message.response_metadata.get("cache_hit"):
            self.usage.add(cached=1)
            return
        usage = message.usage_metadata or {}
        tin, tout = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
        self.usage.add(calls=1, input_tokens=tin, output_tokens=tout)
        price = self.ref.settings.prices.get(self.ref.spec)
        if price is not None:
            self.usage.add(cost_usd=(tin * price[0] + tout * price[1]) / 1e6)


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, list):  # content blocks (some providers): keep the text ones
        content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "the answer"
        parts.append(f"{where}: {err.get('msg')}")
    more = len(exc.errors()) - 8
    return "the answer is not valid JSON of the requested shape (" + "; ".join(parts) + \
        (f"; and {more} more" if more > 0 else "") + ")"


def repair_message(problems: list[str]) -> str:
    from tabline.agents.llm.prompts import load_prompt

    return load_prompt("repair").user({"problems": "\n".join(f"- {p}" for p in problems)})


def run_sync(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run a coroutine from synchronous code (the graph's nodes are synchronous), also when the caller
    already runs an event loop (a notebook): then it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(make())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def json_lines(rows: list[dict[str, Any]]) -> str:
    """Rows as one JSON object per line (compact, what the prompts show the model)."""
    return "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows)


class _Probe(BaseModel):
    capital: str
    letters: int


def probe(ref: ModelRef) -> dict[str, Any]:
    """One small structured call to see that a backend answers: seconds, tokens, the parsed answer."""
    import time

    caller = StructuredCaller(ref, role="probe")
    question = [HumanMessage('What is the capital of France, and how many letters does it have? Answer as JSON '
                             '{"capital": "<city>", "letters": <number>} and nothing else.')]

    started = time.perf_counter()
    outcome = caller.ask_sync(question, _Probe)
    return {"model": ref.label, "ok": outcome.ok, "seconds": round(time.perf_counter() - started, 2),
            "answer": outcome.value.model_dump() if outcome.ok else None, "errors": outcome.errors,
            "raw": outcome.raw[-1] if outcome.raw else "", "usage": caller.usage.take(), "structured": ref.structured}


def gather_chunks(n_rows: int, size: int, concurrency: int,
                  make: Callable[[int, list[int], asyncio.Semaphore], Coroutine[Any, Any, Any]]) -> list[Any]:
    """Split row positions 0..n_rows-1 into chunks of ``size`` and run ``make(k, chunk, semaphore)`` for
    each concurrently (at most ``concurrency`` requests in flight); results in chunk order."""
    chunks = [list(range(i, min(i + size, n_rows))) for i in range(0, n_rows, size)]

    async def run_all() -> list[Any]:
        semaphore = asyncio.Semaphore(concurrency)
        return await asyncio.gather(*[make(k, chunk, semaphore) for k, chunk in enumerate(chunks)])

    return run_sync(run_all)


def settle(results: list[tuple[dict, dict, dict]], index: Any, usage: Usage) -> tuple[dict, dict, list[dict]]:
    """Merge per-chunk ``(got, failed, record)`` results: values by row position, failure reasons by the
    batch's ``index`` labels, and the call records; the failures are counted in ``usage``."""
    got: dict = {}
    failures: dict = {}
    calls: list[dict] = []
    for chunk_got, failed, record in results:
        got.update(chunk_got)
        failures.update({index[pos]: reason for pos, reason in failed.items()})
        calls.append(record)
    if failures:
        usage.add(failures=len(failures))
    return got, failures, calls
