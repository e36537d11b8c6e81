"""bffgate.listeners.bind_listeners: the workers' sockets, bound once by the supervisor."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bffgate.listeners import ListenerUnavailable, bind_listeners, close_listeners
from support.idp import free_port


def test_one_reuseport_socket_per_worker_on_the_same_port() -> None:
    port = free_port()
    listen = f"127.0.0.1:{port}"
    copies = bind_listeners([listen, listen], 3)  # an address named twice is bound once
    try:
        assert len(copies) == 3 and all(list(c) == [listen] for c in copies)
        socks = [s for c in copies for s in c[listen]]
        assert len({s.fileno() for s in socks}) == 3
        for s in socks:
            assert s.getsockname() == ("127.0.0.1", port)
            assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
            assert s.get_inheritable()
        with socket.create_connection(("127.0.0.1", port), 1):
            pass  # listening already: connections wait for a worker in the backlog
    finally:
        close_listeners(copies)


def test_a_busy_port_is_the_check_listeners_message_and_nothing_stays_bound() -> None:
    free, busy = free_port(), free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", busy))
        taken.listen()
        with pytest.raises(ListenerUnavailable) as exc:
            bind_listeners([f"127.0.0.1:{free}", f"127.0.0.1:{busy}"], 2)
    assert exc.value.problem == f"port {busy} is in use" and exc.value.in_use
    assert exc.value.listen == f"127.0.0.1:{busy}"
    with socket.socket() as again:  # the first address was released
        again.bind(("127.0.0.1", free))


def test_a_second_serve_cannot_join_the_workers_port() -> None:
    """SO_REUSEPORT lets only sockets that all set it share a port: a plain bind (what
    check_listeners and a single-process serve do) still finds the port busy."""
    port = free_port()
    copies = bind_listeners([f"127.0.0.1:{port}"], 2)
    try:
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError, match="in use"):
                other.bind(("127.0.0.1", port))
    finally:
        close_listeners(copies)


def test_a_unix_socket_is_one_socket_shared_by_all(tmp_path: Path) -> None:
    path = tmp_path / "gw.sock"
    path.write_bytes(b"")  # not a socket: left alone, so the bind fails and says so
    with pytest.raises(ListenerUnavailable, match="cannot listen on unix:"):
        bind_listeners([f"unix:{path}"], 2)
    path.unlink()
    copies = bind_listeners([f"unix:{path}"], 2)
    try:
        assert copies[0][f"unix:{path}"][0] is copies[1][f"unix:{path}"][0]
    finally:
        close_listeners(copies)
    copies = bind_listeners([f"unix:{path}"], 2)  # a stale socket file is replaced
    close_listeners(copies)
