"""A raw-socket server on 127.0.0.1 with one thread per connection, for test upstreams that
control every byte they write (``RawUpstream``, ``SseUpstream``): subclasses implement
``_serve(conn, number)``; ``number`` counts connections from 1."""

from __future__ import annotations

import socket
import threading
from typing import Any, Self

from support.idp import free_port


class ThreadedSocketServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._sock = socket.create_server(("127.0.0.1", self.port))
        self._sock.settimeout(0.2)
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2)
        if self._sock is not None:
            self._sock.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._spawn(self._serve, conn, self.connections)

    def _serve(self, conn: socket.socket, number: int) -> None:
        raise NotImplementedError
