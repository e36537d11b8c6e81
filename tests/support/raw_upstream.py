"""A tiny raw-socket HTTP/1.1 upstream that answers *before* reading the request body, like
any 401/404 handler does, and then, like a correct server, skips the body it still owes
before reading the next request on the connection. Behind a forwarder that sends fewer
body bytes than its Content-Length and reuses the connection, the next request's first
bytes are eaten and the rest is parsed as a request of its own: what the smuggling tests
look for. Records every request head it parsed, with the connection it came on.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field

from support.socket_server import ThreadedSocketServer


@dataclass
class SeenRequest:
    connection: int
    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class RawUpstream(ThreadedSocketServer):
    def __init__(self, status: int = 401) -> None:
        super().__init__()
        self.status = status
        self.seen: list[SeenRequest] = []

    def targets(self) -> list[str]:
        return [r.target for r in self.seen]

    def _serve(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(0.2)
        buf = b""
        owed = 0  # body bytes of an answered request still to skip
        with conn:
            while not self._stop.is_set():
                if owed and buf:
                    skipped = min(owed, len(buf))
                    buf, owed = buf[skipped:], owed - skipped
                    continue
                end = buf.find(b"\r\n\r\n")
                if end < 0 or owed:
                    try:
                        data = conn.recv(65536)
                    except TimeoutError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                    continue
                head, buf = buf[:end], buf[end + 4:]
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                headers = [(n.strip().lower(), v.strip()) for n, _, v in
                           (line.partition(":") for line in lines[1:])]
                req = SeenRequest(number, parts[0], parts[1] if len(parts) > 1 else "", headers)
                self.seen.append(req)
                body = json.dumps({"method": req.method, "target": req.target}).encode()
                # Answer at once, body unread (early 401), keep the connection open.
                conn.sendall(b"HTTP/1.1 %d Early\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (self.status, len(body), body))
                owed = int(dict(headers).get("content-length", "0") or 0)
