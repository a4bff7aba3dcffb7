"""The tests' network guard (tests/netguard): every way out is refused, loopback still works, child Pythons are
guarded too, and a test whose code hides a refusal fails anyway.

Without the guard, each refusal below would be a gaierror, an OSError or a timeout instead of
`NetworkBlockedError` naming the address, so every test here fails if the guard is removed.
"""
from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

from tabline_netguard import NetworkBlockedError


def _getaddrinfo():
    socket.getaddrinfo("example.com", 80)


def _gethostbyname():
    socket.gethostbyname("example.com")


def _connect_ex():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.connect_ex(("10.255.255.1", 80))


def _udp_sendto():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("192.0.2.1", 53))


def _udp_sendmsg():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendmsg([b"x"], [], 0, ("192.0.2.1", 53))


def _create_connection():
    socket.create_connection(("93.184.216.34", 80), timeout=1)


def _ipv6_connect():
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.connect(("2001:db8::1", 80))


@pytest.mark.network_attempts_expected
@pytest.mark.parametrize("attempt, address", [
    pytest.param(_getaddrinfo, "example.com", id="getaddrinfo"),
    pytest.param(_gethostbyname, "example.com", id="gethostbyname"),
    pytest.param(_connect_ex, "10.255.255.1", id="connect_ex"),
    pytest.param(_udp_sendto, "192.0.2.1", id="udp-sendto"),
    pytest.param(_udp_sendmsg, "192.0.2.1", id="udp-sendmsg"),
    pytest.param(_create_connection, "93.184.216.34", id="create_connection"),
    pytest.param(_ipv6_connect, "2001:db8::1", id="ipv6-connect"),
])
def test_every_way_out_is_refused_naming_the_address(attempt, address):
    with pytest.raises(NetworkBlockedError, match=address.replace(".", r"\.")):
        attempt()


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(self.request.recv(64).upper())


def test_loopback_and_unix_sockets_still_work():
    # Setup: a real TCP echo server on 127.0.0.1
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        # Run / Assert: by address and by name, through the same calls the guard wraps
        for host in ("127.0.0.1", "localhost"):
            with socket.create_connection((host, port), timeout=5) as conn:
                conn.sendall(b"ping")
                assert conn.recv(64) == b"PING"
        server.shutdown()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        tx.sendto(b"udp", rx.getsockname())
        assert rx.recv(16) == b"udp"
    with tempfile.TemporaryDirectory() as tmp, socket.socket(socket.AF_UNIX) as listener:
        path = os.path.join(tmp, "s")
        listener.bind(path)
        listener.listen(1)
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
            peer, _ = listener.accept()
            client.sendall(b"unix")
            assert peer.recv(16) == b"unix"
            peer.close()


def test_a_child_python_is_guarded_too():
    # Setup: a child started the way tests start them (sys.executable, the test process's environment)
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    # Run
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    # Assert: refused by the guard, at once, naming the address — not a timeout or an unreachable network
    assert proc.returncode != 0
    assert "NetworkBlockedError" in proc.stderr and "192.0.2.1" in proc.stderr, proc.stderr
    assert time.monotonic() - began < 30


def test_a_test_that_swallows_the_refusal_still_fails(tmp_path):
    # Setup: a test whose code catches everything, as an HTTP client that retries or a broad `except` would
    (tmp_path / "test_hides.py").write_text(textwrap.dedent("""
        import socket

        def test_hides_the_error():
            try:
                socket.create_connection(("192.0.2.7", 80), timeout=1)
            except Exception:
                pass
    """))
    # Run: a separate pytest session with only the guard's plugin
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "pytest_netguard", "-p", "no:cacheprovider",
                           "test_hides.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    # Assert: the test failed, and the failure says what it tried to reach
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed" in proc.stdout and "swallowed the guard's error" in proc.stdout, proc.stdout
    assert "192.0.2.7" in proc.stdout
