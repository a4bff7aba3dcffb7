"""No network in tests: every way a socket can leave the machine raises `NetworkBlockedError`.

Loopback (127.0.0.0/8, ::1, ``localhost``) and AF_UNIX stay allowed, so tests can run real servers on
127.0.0.1. Guarded: ``connect``, ``connect_ex``, ``sendto`` and ``sendmsg`` of `socket.socket` (which also
covers `ssl.SSLSocket`, asyncio and every HTTP client built on them), and the name lookups
``getaddrinfo`` (hence ``create_connection``), ``gethostbyname[_ex]``, ``gethostbyaddr`` and ``getnameinfo``.

The test process installs it through ``pytest_netguard`` (loaded by the repository's conftest.py); every
child Python a test starts installs it through ``sitecustomize.py`` next to this file, because the plugin
puts this folder on PYTHONPATH and sets ``TABLINE_TEST_NO_NETWORK=1`` in ``os.environ``, which children
inherit.
Not covered: ``python -I``/``-S`` children (they skip PYTHONPATH or site) and raw ``_socket.socket`` objects.

This module imports nothing from pytest: it runs at the start of every child interpreter.

Example:
    >>> is_local_host("127.0.0.1"), is_local_host("localhost"), is_local_host("example.com")
    (True, True, False)
"""
from __future__ import annotations

import functools
import ipaddress
import os
import socket

import _socket

ENV = "TABLINE_TEST_NO_NETWORK"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}

blocked: list[str] = []
"""Every attempt refused in this process, in order: a test whose code catches the error (an HTTP client
that retries, a broad ``except``) still leaves its trace here, and ``pytest_netguard`` fails that test."""


class NetworkBlockedError(RuntimeError):
    """A test tried to reach a non-loopback address."""


def is_local_host(host: object) -> bool:
    """True for loopback addresses and names that never leave the machine.

    Example:
        >>> is_local_host("::1"), is_local_host("::ffff:127.0.0.1"), is_local_host("10.0.0.1")
        (True, True, False)
    """
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().rstrip(".").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):  # RFC 6761: *.localhost is loopback
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_numeric(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
        return True
    except ValueError:
        return False


def _refuse(what: str) -> NetworkBlockedError:
    blocked.append(what)
    return NetworkBlockedError(f"test tried to reach the network: {what}; only loopback (127.0.0.1, ::1, localhost) "
                               "and AF_UNIX sockets are allowed (tests/netguard)")


def _check_address(sock: socket.socket, address: object, call: str) -> None:
    family = sock.family
    if family == socket.AF_UNIX:
        return
    if family in (socket.AF_INET, socket.AF_INET6):
        host = address[0] if isinstance(address, tuple) and address else address
        if is_local_host(host):
            return
    kind = family.name if isinstance(family, socket.AddressFamily) else f"family {family}"
    raise _refuse(f"{call} to {address!r} ({kind})")


def _check_lookup(host: object, call: str, *, numeric_ok: bool) -> None:
    # A numeric host is answered without a query, so it is allowed where no query would be sent: the connect
    # that follows is what gets checked (and a server binding 0.0.0.0 still works).
    if host is None or host in ("", b"") or is_local_host(host) or (numeric_ok and _is_numeric(host)):
        return
    raise _refuse(f"{call}({host!r})")


# A numeric host is answered without a query, except by a reverse lookup.
_LOOKUPS = {"getaddrinfo": True, "gethostbyname": True, "gethostbyname_ex": True, "gethostbyaddr": False}


def _guard_lookup(module, name: str, numeric_ok: bool) -> None:
    real = getattr(module, name)

    @functools.wraps(real)
    def guarded(host, *args, **kwargs):
        _check_lookup(host, name, numeric_ok=numeric_ok)
        return real(host, *args, **kwargs)

    setattr(module, name, guarded)


def _guard_getnameinfo(module) -> None:
    real = module.getnameinfo

    @functools.wraps(real)
    def getnameinfo(sockaddr, flags):
        if not flags & socket.NI_NUMERICHOST:
            _check_lookup(sockaddr[0], "getnameinfo", numeric_ok=False)
        return real(sockaddr, flags)

    module.getnameinfo = getnameinfo


def install() -> None:
    """Patch the socket module in this process; calling it again changes nothing."""
    if getattr(socket, "_tabline_netguard", False):
        return
    cls = socket.socket
    real = {name: getattr(cls, name) for name in ("connect", "connect_ex", "sendto", "sendmsg")}

    def connect(self, address):
        _check_address(self, address, "connect")
        return real["connect"](self, address)

    def connect_ex(self, address):
        _check_address(self, address, "connect_ex")
        return real["connect_ex"](self, address)

    def sendto(self, data, *args):  # sendto(data, address) or sendto(data, flags, address)
        if args:
            _check_address(self, args[-1], "sendto")
        return real["sendto"](self, data, *args)

    def sendmsg(self, buffers, ancdata=(), flags=0, address=None):
        if address is not None:  # None: a connected socket, whose connect was checked
            _check_address(self, address, "sendmsg")
            return real["sendmsg"](self, buffers, ancdata, flags, address)
        return real["sendmsg"](self, buffers, ancdata, flags)

    for name, fn in (("connect", connect), ("connect_ex", connect_ex), ("sendto", sendto), ("sendmsg", sendmsg)):
        fn.__qualname__ = f"socket.{name}"
        fn.__doc__ = f"`socket.socket.{name}`, refused for non-loopback addresses in tests."
        setattr(cls, name, fn)

    # socket's Python wrappers call _socket's functions: each module gets its own guard around its own original,
    # and _socket is guarded too because `from _socket import getaddrinfo` would otherwise bypass the guard.
    for module in (socket, _socket):
        for name, numeric_ok in _LOOKUPS.items():
            _guard_lookup(module, name, numeric_ok)
        _guard_getnameinfo(module)
    socket._tabline_netguard = True


def install_if_asked() -> bool:
    """Install when ``TABLINE_TEST_NO_NETWORK=1``; returns whether the guard is active."""
    if os.environ.get(ENV) == "1":
        install()
    return bool(getattr(socket, "_tabline_netguard", False))
