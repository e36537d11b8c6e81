"""One fuzz input over a raw socket: write its bytes, read the answers with h11, and tell an
answer from a close, a hang or a reset."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

import h11

from fuzz.rawgen import Case
from fuzz.stack import MARK, ROUTE_TIMEOUT

HANG_LIMIT = 2.5 * ROUTE_TIMEOUT  # no answer (or close) after this long is a hang
WAIT_LIMIT = 1.0  # how long an input the server may legitimately wait on is given


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass
class Outcome:
    responses: list[Response]
    raw: bytes
    closed: bool
    hang: bool
    unparsed: str = ""
    gave_up: bool = False  # an input the server may wait on: the client stopped waiting


def _dummy_request(method: str) -> h11.Request:
    headers = [("host", "x")]
    if method in ("POST", "PUT", "PATCH"):
        headers.append(("content-length", "0"))
    return h11.Request(method=method, target="/", headers=headers)


async def exchange(case: Case, port: int, limit: float = HANG_LIMIT,
                   forwarded: Callable[[str], int] | None = None) -> Outcome:
    """Write the input, read the answers (parsed by h11) until every request is answered,
    the gateway closes, or ``limit`` seconds pass without either (a hang). ``forwarded``
    counts the upstream's records of this input: while one is still owed an answer, an
    input the server may wait on is given the full HANG_LIMIT, not just ``limit``."""
    raw = b""
    responses: list[Response] = []
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=1 << 20)
    pending = list(case.methods)
    current: Response | None = None
    started = time.monotonic()
    deadline = started + limit
    extended = False
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), limit)
    closed = hang = aborted = False
    unparsed = ""
    try:
        async def write_all() -> None:
            for chunk in case.chunks:
                writer.write(chunk)
                await writer.drain()
            if case.half_close and writer.can_write_eof():
                writer.write_eof()

        writer_task = asyncio.create_task(write_all())
        conn.send(_dummy_request(pending.pop(0)))
        conn.send(h11.EndOfMessage())
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                unparsed = str(exc)
                break
            if event is h11.NEED_DATA:
                if case.abort_after is not None and len(raw) >= case.abort_after:
                    aborted = True
                    break
                remaining = deadline - time.monotonic()
                try:
                    data = await asyncio.wait_for(reader.read(65536), max(0.0, remaining))
                except TimeoutError:
                    marked = sum(1 for r in responses if r.get(MARK))
                    if not extended and forwarded is not None and \
                            forwarded(case.case_id) > marked:
                        extended = True
                        deadline = started + HANG_LIMIT
                        continue
                    hang = True
                    break
                except (ConnectionError, OSError):
                    data = b""
                raw += data
                if not data:
                    closed = True
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                current = Response(event.status_code,
                                   [(k.decode("latin-1"), v.decode("latin-1"))
                                    for k, v in event.headers])
            elif isinstance(event, h11.EndOfMessage) and current is not None:
                responses.append(current)
                current = None
                if not pending or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
                conn.send(_dummy_request(pending.pop(0)))
                conn.send(h11.EndOfMessage())
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                closed = True
                break
        writer_task.cancel()
        with contextlib.suppress(BaseException):
            await writer_task
    finally:
        if aborted:  # a reset (RST), not a graceful close: as a browser tab killed mid-way
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1)
    if unparsed:  # still see what came back: status lines in the raw bytes
        for line in raw.split(b"\r\n"):
            if line.startswith(b"HTTP/1.") and line[9:12].isdigit():
                responses.append(Response(int(line[9:12]), []))
    return Outcome(responses, raw, closed, hang and not case.may_wait, unparsed,
                   gave_up=(hang and case.may_wait) or aborted)
