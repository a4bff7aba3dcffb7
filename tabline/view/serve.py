"""`tabline view RUN_DIR --serve`: the run's page on 127.0.0.1, refreshed as the run writes new events.

The page is the same self-contained page `write_view` writes, plus a few lines of script that ask the
server every ``poll_seconds`` for the folder's version — sizes and modification times of the files the
page reads — and reload (keeping the scroll position) when it changed. The page is rendered again only
when the version changed, so an idle run costs one `stat` per poll. Only 127.0.0.1 is bound: a run folder
can hold the user's real rows.

Example:
    >>> import tempfile, urllib.request
    >>> from tabline.demo import load_demo_table
    >>> from tabline.agents.team import Team
    >>> from tabline.line.assembly import AssemblyLine
    >>> run_dir = tempfile.mkdtemp()
    >>> team = Team(lm={"max_epochs": 1, "n_layer": 1, "n_embd": 32}, batch_rows=100)
    >>> _ = AssemblyLine(team).run(100, run_dir, data=load_demo_table().head(300), progress=False)
    >>> with ViewServer(run_dir, port=0) as server:
    ...     html = urllib.request.urlopen(server.url).read().decode()
    ...     version = urllib.request.urlopen(server.url + "version").read().decode()
    >>> "QC funnel" in html, version == folder_version(run_dir)
    (True, True)
"""
from __future__ import annotations

import errno
import hashlib
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tabline.errors import InvalidArgumentError
from tabline.view.run_data import read_run, run_files_dir

HOST = "127.0.0.1"
DEFAULT_PORT = 8765

# Files whose change changes the page; batches/ is covered by its own mtime (a new file changes it).
_WATCHED = ("trace.jsonl", "report.json", "run.json", "plan.json", "data.csv", "rejected.csv", "align.json",
            "evaluation.json", "batches", "../report.json", "rounds", "dataset.jsonl")


def folder_version(run_dir: str | Path) -> str:
    """A short token that changes whenever a file the page reads changes (size or modification time).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> before = folder_version(d); _ = (d / "trace.jsonl").write_text("{}\\n")
        >>> before == folder_version(d)
        False
    """
    path = run_files_dir(run_dir)
    stamp = []
    for name in _WATCHED:
        try:
            st = (path / name).stat()
            stamp.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            stamp.append(f"{name}:-")
    return hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]


def live_script(version: str, poll_seconds: float) -> str:
    """The script the served page carries: poll ``/version``, reload when it differs from ``version``."""
    return ("(function(){var v=%s,k='tabline-view-scroll',y=sessionStorage.getItem(k);"
            "if(y!==null){sessionStorage.removeItem(k);window.scrollTo(0,+y);}"
            "setInterval(function(){fetch('/version',{cache:'no-store'}).then(function(r){return r.ok?r.text():v;})"
            ".then(function(t){if(t!==v){sessionStorage.setItem(k,String(window.scrollY));location.reload();}})"
            ".catch(function(){});},%d);})();" % (json.dumps(version), int(poll_seconds * 1000)))


class ViewServer:
    """Serve the page of ``run_dir`` on 127.0.0.1:``port`` (0: any free port) in a background thread.

    ``/`` is the page (rendered again when the folder's version changed), ``/version`` the version token.
    Use it as a context manager, or `start` / `close`; `serve_forever` blocks (the CLI)."""

    def __init__(self, run_dir: str | Path, port: int = DEFAULT_PORT, *, poll_seconds: float = 2.0) -> None:
        from tabline.view import render_view

        read_run(run_dir)  # a folder that holds no run fails here, before a port is taken
        self.run_dir, self.poll_seconds = Path(run_dir), poll_seconds
        self._render = render_view
        self._lock = threading.Lock()
        self._page: tuple[str, bytes] | None = None
        self.renders = 0
        self.hits: Counter[str] = Counter()  # requests per route, for the curious and for tests
        try:
            self._httpd = ThreadingHTTPServer((HOST, port), self._handler())
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise InvalidArgumentError(f"port {port} on {HOST} is in use; pick another with --port "
                                           "(or --port 0 for any free one)") from exc
            raise
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._httpd.server_address[1]}/"

    def page(self) -> bytes:
        """The page for the folder as it is now (rendered once per version)."""
        with self._lock:  # two tabs polling at once must not render twice
            version = folder_version(self.run_dir)
            if self._page is None or self._page[0] != version:
                html = self._render(self.run_dir, live=live_script(version, self.poll_seconds))
                self._page = (version, html.encode("utf-8"))
                self.renders += 1
            return self._page[1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 — the name http.server calls
                route = self.path.split("?", 1)[0]
                server.hits[route] += 1
                if route == "/":
                    self._send(200, "text/html; charset=utf-8", server.page())
                elif route == "/version":
                    self._send(200, "text/plain", folder_version(server.run_dir).encode())
                else:
                    self._send(404, "text/plain", b"not found: the page is at /")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 — http.server's name
                pass  # a poll every two seconds would flood the terminal

        return Handler

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "ViewServer":
        self._thread = threading.Thread(target=self.serve_forever, name="tabline-view", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:  # shutdown() waits for serve_forever, which never ran otherwise
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "ViewServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_PORT", "ViewServer", "folder_version", "live_script"]
