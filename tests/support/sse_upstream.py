"""Upstreams for the stream tests, on raw sockets so every byte's timing is the test's own.

``SseUpstream`` (one thread per connection):

- ``GET .../events?gap=S&id=X``: answers 200 ``text/event-stream`` (chunked, with
  ``X-Accel-Buffering: no``), sends event ``first`` at once, stays quiet ``S`` seconds,
  sends event ``second`` and ends the stream. It records (by ``id``) when each event was
  sent and whether the second could be written (the gateway may have hung up);
- ``GET .../silent``: reads the request and never answers (held 30 s, then closed);
- ``GET .../page``: an HTML page whose script opens an ``EventSource`` on ``?src=`` and
  records what it receives in ``window.sse`` (the browser test); any other path: an empty
  HTML page.

``BlackHole``: a listening socket that never accepts, its accept queue filled first, so
Linux drops every further SYN and a connect to it hangs until the client gives up: a
deterministic connect timeout on 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from support.socket_server import ThreadedSocketServer

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>sse</title></head><body>
<script>
window.sse = {events: [], errors: 0, opened: 0};
const src = new URLSearchParams(location.search).get("src");
const es = new EventSource(src);
es.onopen = () => { window.sse.opened += 1; };
es.onmessage = (e) => {
  window.sse.events.push({data: e.data, at: Date.now()});
  if (e.data === "second") es.close();
};
es.onerror = () => { window.sse.errors += 1; es.close(); };
</script></body></html>
"""


@dataclass
class StreamRecord:
    first_sent: float = 0.0  # time.monotonic() when the first event was written
    second_sent: float = 0.0  # when the second was about to be written
    second_written: bool = False
    request_headers: dict[str, str] = field(default_factory=dict)


class SseUpstream(ThreadedSocketServer):
    def __init__(self) -> None:
        super().__init__()
        self.streams: dict[str, StreamRecord] = {}
        self.silent_requests = 0

    def _serve(self, conn: socket.socket, number: int) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head:
                try:
                    piece = conn.recv(65536)
                except OSError:
                    return
                if not piece:
                    return
                head += piece
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = lines[0].split(" ")[1]
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            path = urlsplit(target).path
            query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
            if path.endswith("/events"):
                self._events(conn, float(query.get("gap", "1")), query.get("id", ""), headers)
            elif path.endswith("/silent"):
                self.silent_requests += 1
                self._stop.wait(30)
            elif path.endswith("/page"):
                body = PAGE.encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                             + body)
            else:  # any other path: an empty page (a landing page after login)
                body = b"<!doctype html><title>upstream</title>"
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
                             + body)

    def _events(self, conn: socket.socket, gap: float, stream_id: str,
                headers: dict[str, str]) -> None:
        rec = self.streams[stream_id] = StreamRecord(request_headers=headers)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"cache-control: no-cache\r\nx-accel-buffering: no\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        rec.first_sent = time.monotonic()
        conn.sendall(_chunk(b"retry: 600000\ndata: first\n\n"))
        if self._stop.wait(gap):
            return
        rec.second_sent = time.monotonic()
        try:
            conn.sendall(_chunk(b"data: second\n\n") + b"0\r\n\r\n")
            time.sleep(0.3)  # a peer that hung up shows as a reset on the next write
            conn.sendall(b"")
            rec.second_written = _peer_open(conn)
        except OSError:
            rec.second_written = False


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _peer_open(conn: socket.socket) -> bool:
    """False when the peer has closed its side (EOF or reset pending)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return True
    try:
        return conn.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


class BlackHole:
    """A port whose connects hang: listen(0), never accept, accept queue filled."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        self.port = self._sock.getsockname()[1]
        self._fillers: list[socket.socket] = []
        for _ in range(16):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(c)
            _, writable, _ = select.select([], [c], [], 0.3)
            if not writable:  # this one hangs: the queue is full, so will the gateway's
                return
        raise RuntimeError("could not fill the accept queue of a listen(0) socket")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        for c in self._fillers:
            c.close()
        self._sock.close()
