"""Try each listen address before serving, so a busy port is one line naming it, not
uvicorn's startup traceback; with ``server.workers`` > 1, bind them once for all workers."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from collections.abc import Iterable


class ListenerUnavailable(Exception):
    """A ``host:port`` the gateway cannot listen on; ``problem`` says why in a few words."""

    def __init__(self, listen: str, port: int, problem: str, *, in_use: bool) -> None:
        super().__init__(f"{listen}: {problem}")
        self.listen, self.port, self.problem, self.in_use = listen, port, problem, in_use


def check_listeners(listens: Iterable[str]) -> None:
    """Raise ``ListenerUnavailable`` for the first address that cannot be bound now.

    Binds like asyncio's ``create_server`` (SO_REUSEADDR, IPv6-only for IPv6), so a port
    in TIME_WAIT is not reported busy, then closes at once. ``unix:`` paths are left to
    the server. A port taken between this check and the real bind still fails there."""
    for listen in listens:
        if not listen or listen.startswith("unix:"):
            continue
        for sock in _bind(listen):
            sock.close()


def bind_listeners(listens: Iterable[str], copies: int,
                   backlog: int = 2048) -> list[dict[str, list[socket.socket]]]:
    """Bind and listen on every address ``copies`` times, for ``copies`` worker processes
    to inherit: one mapping per worker, each address to its sockets (one per resolved
    address, as ``create_server`` binds them). TCP sockets carry SO_REUSEPORT, so the
    kernel spreads new connections evenly over the workers' own sockets (one shared
    socket would not: asyncio accepts up to ``backlog`` waiting connections per wake-up,
    so one worker takes a whole burst); a ``unix:`` path is one socket all share.
    ``ListenerUnavailable`` as ``check_listeners`` says it; nothing stays bound then."""
    out: list[dict[str, list[socket.socket]]] = [{} for _ in range(copies)]
    try:
        for listen in dict.fromkeys(listens):
            if not listen:
                continue
            shared = _bind_unix(listen) if listen.startswith("unix:") else None
            for mapping in out:
                mapping[listen] = shared or _bind(listen, reuse_port=True)
                for sock in mapping[listen]:
                    sock.listen(backlog)
                    sock.set_inheritable(True)
    except BaseException:
        close_listeners(out)
        raise
    return out


def close_listeners(sockets: list[dict[str, list[socket.socket]]]) -> None:
    for mapping in sockets:
        for socks in mapping.values():
            for sock in socks:
                sock.close()


def _bind(listen: str, *, reuse_port: bool = False) -> list[socket.socket]:
    host, _, port_text = listen.rpartition(":")
    host_or_none, port = host.strip("[]") or None, int(port_text)
    try:
        infos = socket.getaddrinfo(host_or_none, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenerUnavailable(listen, port, f"cannot resolve {host_or_none!r}: "
                                  f"{exc.strerror}", in_use=False) from None
    bound: list[socket.socket] = []
    for family, kind, proto, _, addr in dict.fromkeys(infos):
        sock = socket.socket(family, kind, proto)
        bound.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            for s in bound:
                s.close()
            raise _unavailable(listen, port, host_or_none, exc) from None
    return bound


def _bind_unix(listen: str) -> list[socket.socket]:
    """A ``unix:/path`` socket; a stale socket file is replaced, as asyncio does."""
    path = listen[5:]
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError as exc:
        sock.close()
        raise ListenerUnavailable(listen, 0, f"cannot listen on {listen}: {exc.strerror}",
                                  in_use=exc.errno == errno.EADDRINUSE) from None
    return [sock]


def _unavailable(listen: str, port: int, host: str | None, exc: OSError) -> ListenerUnavailable:
    if exc.errno == errno.EADDRINUSE:
        return ListenerUnavailable(listen, port, f"port {port} is in use", in_use=True)
    if exc.errno == errno.EACCES:
        return ListenerUnavailable(
            listen, port, f"port {port} needs privileges (ports below 1024 are reserved)",
            in_use=False)
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenerUnavailable(
            listen, port, f"address {host} is not an address of this machine", in_use=False)
    return ListenerUnavailable(listen, port, f"cannot listen on {listen}: {exc.strerror}",
                               in_use=False)
