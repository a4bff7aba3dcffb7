"""A scripted OpenAI-compatible server on 127.0.0.1 for tests.

Mocking the ``openai`` client tests only our idea of what it does. This server lets the tests drive the
real ``openai.OpenAI`` and ``langchain_openai.ChatOpenAI`` clients over real HTTP, so retries, timeouts,
error classes, headers and usage accounting are the clients' own, and no test needs a network or a key.

Usage::

    with ScriptedOpenAIServer([Reply("hello"), Reply(status=429)]) as server:
        client = openai.OpenAI(base_url=server.url, api_key="test-key", max_retries=0)
        ...
        assert server.requests[0]["model"] == "m" and server.unplanned == 0

Only ``POST /v1/chat/completions`` without streaming is spoken; anything else gets an OpenAI-style
error body, so a client that wanders off the script fails loudly instead of hanging.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

__all__ = ["Reply", "ScriptedOpenAIServer"]

# (type, code) the real API uses for each status, so clients pick the same exception class and tests
# that look at ``error.type`` see realistic values.
_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    500: ("server_error", None),
    502: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


@dataclass
class Reply:
    """One scripted answer. A non-200 ``status`` sends an OpenAI error body whose message is ``content``
    (or a stock one); ``delay_s`` holds the answer back, to provoke client timeouts. ``model``: the name the
    answer says it came from (default: the one asked for; OpenAI answers "gpt-4o" with a dated version)."""

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    prompt_tokens: int = 11
    completion_tokens: int = 7
    finish_reason: str = "stop"
    model: str | None = None

    @classmethod
    def json(cls, obj: Any, **kw: Any) -> "Reply":
        """A reply whose content is ``obj`` serialised, as a model answering in JSON mode would send."""
        return cls(content=json.dumps(obj), **kw)


Script = Sequence[Reply] | Callable[[dict, int], Reply]


def _error_body(status: int, message: str) -> dict:
    kind, code = _ERROR_KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes every request to stderr, which buries pytest's own output.
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._drain()
            return self._send_error(404, f"Unknown path {self.path!r}: this server only speaks "
                                         "POST /v1/chat/completions")
        raw = self._drain()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return self._send_error(400, "Request body is not valid JSON")
        if not isinstance(body, dict):
            return self._send_error(400, "Request body must be a JSON object")
        owner = self.server.owner
        if body.get("stream"):
            owner._record(body, dict(self.headers), consume=False)
            return self._send_error(400, "stream=true is not supported by the scripted test server")
        index = owner._record(body, dict(self.headers), consume=True)
        try:
            reply = owner._reply_for(body, index)
        except Exception as exc:  # a failing scripted callable must show up in the test, not just as a 500
            owner._note_error(exc)
            return self._send_error(500, f"script raised {type(exc).__name__}: {exc}")
        if reply is None:
            return self._send_error(500, "script exhausted")
        if reply.delay_s > 0 and owner._stop.wait(reply.delay_s):
            # Shutting down: the client has long given up, and answering would only delay close().
            self.close_connection = True
            return
        if reply.status != 200:
            default = "Rate limit reached" if reply.status == 429 else f"Scripted error {reply.status}"
            return self._send_json(reply.status, _error_body(reply.status, reply.content or default),
                                   reply.headers)
        self._send_json(200, owner._completion(body, reply), reply.headers)

    def do_GET(self) -> None:
        self._send_error(404, f"Unknown path {self.path!r}: this server only speaks POST /v1/chat/completions")

    do_PUT = do_DELETE = do_PATCH = do_GET

    def _drain(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_error(self, status: int, message: str) -> None:
        self._send_json(status, _error_body(status, message))

    def _send_json(self, status: int, obj: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up; that is what the test wanted


class _HTTPServer(ThreadingHTTPServer):
    # Daemon handler threads: a sleeping handler must never keep the test process alive.
    daemon_threads = True
    owner: "ScriptedOpenAIServer"


class ScriptedOpenAIServer:
    """An OpenAI Chat Completions endpoint that answers from ``script``.

    ``script`` is a list of :class:`Reply` consumed one per request (when it runs out the request gets
    a 500 "script exhausted" and ``unplanned`` counts it), or ``fn(request_json, call_index) -> Reply``.
    ``requests`` / ``headers`` hold, in arrival order, every chat-completions body and its headers;
    ``call_index`` counts only the requests handed to the script (stream=true requests are recorded but
    rejected before the script). ``errors`` holds exceptions raised by a callable script.
    """

    def __init__(self, script: Script):
        self._script = script
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._requests: list[dict] = []
        self._headers: list[dict[str, str]] = []
        self._errors: list[BaseException] = []
        self._calls = 0
        self._unplanned = 0
        self._closed = False
        self._ids = itertools.count(1)
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        # A short poll interval keeps close() fast; the default 0.5 s would dominate a quick test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name=f"scripted-openai-{self.port}", daemon=True)
        self._thread.start()

    # -- what the test looks at; copies, so a test never iterates a list a handler is appending to --
    @property
    def requests(self) -> list[dict]:
        with self._lock:
            return list(self._requests)

    @property
    def headers(self) -> list[dict[str, str]]:
        with self._lock:
            return list(self._headers)

    @property
    def unplanned(self) -> int:
        with self._lock:
            return self._unplanned

    @property
    def errors(self) -> list[BaseException]:
        with self._lock:
            return list(self._errors)

    # -- lifecycle --
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()  # wakes every handler sleeping on a delay_s
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "ScriptedOpenAIServer":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # -- used by the handler threads --
    def _record(self, body: dict, headers: dict[str, str], *, consume: bool) -> int:
        with self._lock:
            self._requests.append(body)
            # Header names are case-insensitive on the wire; lower-case them so tests need not guess.
            self._headers.append({k.lower(): v for k, v in headers.items()})
            if not consume:
                return -1
            index = self._calls
            self._calls += 1
            return index

    def _reply_for(self, body: dict, index: int) -> Reply | None:
        if callable(self._script):
            reply = self._script(body, index)
            if not isinstance(reply, Reply):
                raise TypeError(f"script callable returned {type(reply).__name__}, not Reply")
            return reply
        if index < len(self._script):
            return self._script[index]
        with self._lock:
            self._unplanned += 1
        return None

    def _note_error(self, exc: BaseException) -> None:
        with self._lock:
            self._errors.append(exc)

    def _completion(self, body: dict, reply: Reply) -> dict:
        return {
            "id": f"chatcmpl-scripted-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or body.get("model") or "scripted",
            "system_fingerprint": None,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }
