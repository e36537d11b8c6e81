"""Try each listen address before serving, so a busy port is one line naming it, not
uvicorn's startup traceback."""

from __future__ import annotations

import errno
import socket
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
        host, _, port_text = listen.rpartition(":")
        port = int(port_text)
        _try_bind(listen, host.strip("[]") or None, port)


def _try_bind(listen: str, host: str | None, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenerUnavailable(listen, port, f"cannot resolve {host!r}: {exc.strerror}",
                                  in_use=False) from None
    for family, kind, proto, _, addr in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                raise _unavailable(listen, port, host, exc) from None


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
