"""One HTTP/1.1 keep-alive connection to an upstream, one exchange at a time: the request
head is written by the caller, the response is parsed by httptools (llhttp, the parser of
Node.js), its body buffered with back-pressure (reading pauses above ``HIGH_WATER`` bytes).

The pool (bffgate.proxy.h1client) owns these. What the connection decides:

* the response's framing is llhttp's (Content-Length, chunked, or the end of the
  connection); a response that ends before its framing says it is whole is an error,
  never a short body taken as whole;
* 1xx responses are skipped (the gateway never asks for an upgrade);
* the response to a HEAD request ends with its head (llhttp cannot know the request);
* any byte the upstream sends outside an exchange, or after a whole response, makes the
  connection unusable (it is closed, never pooled): the next response would be read from
  the wrong offset.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Callable

import httptools

HIGH_WATER = 256 * 1024  # buffered response bytes above which reading pauses
# A response head larger than this is refused (llhttp sets no bound of its own; aiohttp's
# client allows 8 KiB a line): an upstream cannot make the gateway buffer headers forever.
MAX_HEAD_BYTES = 64 * 1024


class UpstreamClosed(ConnectionError):
    """The upstream closed the connection (or its bytes could not be parsed as a response)
    before the response was whole. ``before_response``: no byte of a response had come."""

    def __init__(self, message: str, *, before_response: bool) -> None:
        super().__init__(message)
        self.before_response = before_response


class H1Connection(asyncio.Protocol):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.discarded = False  # counted out of its pool
        self.on_lost: Callable[[H1Connection], None] | None = None  # set by the pool
        self._parser: httptools.HttpResponseParser | None = None
        self._head: asyncio.Future[int] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamClosed | None = None
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._head_only = False
        self._informational = False
        self._until_eof = False
        self._received = False
        self._head_bytes = 0
        self._held = b""  # a request head not sent yet (start's body_follows)
        self.reusable = True

    # --- the exchange, as the pool drives it -------------------------------------------

    def start(self, head: bytes, *, head_only: bool, body_follows: bool = False
              ) -> asyncio.Future[int]:
        """Send a request head; the future is the response's status, set when its head is in.

        With ``body_follows`` the head is held and goes out with the body's first ``write``
        (one write instead of two), so a request whose body breaks before its first byte
        reaches the upstream not at all, not as a head followed by a closed connection."""
        self._reset()
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._loop.create_future()
        assert self.transport is not None
        if body_follows:
            self._held = head
        else:
            self.transport.write(head)
        return self._head

    def write(self, data: bytes) -> None:
        """Body bytes (after the held head, if it has not gone out yet); ``b""`` sends just
        the held head."""
        if self._held:
            data, self._held = self._held + data, b""
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    async def drain(self) -> None:
        if self.closed:
            raise UpstreamClosed("the upstream closed the connection during the upload",
                                 before_response=not self._received)
        if self._write_paused:
            self._drain = self._loop.create_future()
            await self._drain

    def take(self) -> bytes:
        """The body bytes buffered so far (reading resumes if it was paused)."""
        chunks = self._chunks
        if not chunks:
            return b""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._buffered = 0
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, timeout: float | None) -> None:
        """Until more body bytes, the body's end or an error; TimeoutError after ``timeout``
        seconds of nothing."""
        waiter = self._waiter = self._loop.create_future()
        timer = None if timeout is None else self._loop.call_later(
            timeout, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def fail_head(self, error: BaseException) -> None:
        """The exchange failed before the response's head came (the upload broke, or the
        response timeout ran out: TimeoutError): the head future fails with ``error``."""
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = typing.cast(asyncio.Transport, transport)  # uvloop's is no subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._parser is None or (self.complete and not self._head_only):
            self.reusable = False  # bytes outside an exchange
            self.close()
            return
        self._received = True
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(UpstreamClosed(f"unparsable response from the upstream: {exc}",
                                      before_response=self._head is not None
                                      and not self._head.done()))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._parser is not None and not self.complete:
            if self._until_eof and self._head is not None and self._head.done():
                self.complete = True  # a body delimited by the end of the connection
                self._wake()
            else:
                self._fail(UpstreamClosed("the upstream closed the connection before the "
                                          "response was whole",
                                          before_response=not self._received))
        for fut in (self._drain, self._head):
            if fut is not None and not fut.done():
                fut.set_exception(UpstreamClosed("the upstream closed the connection",
                                                 before_response=not self._received))
        if self.on_lost is not None:
            self.on_lost(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # --- httptools callbacks -------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:  # a second response: nothing asked for it
            self.reusable = False
            return
        if self.status:  # trailers of a chunked body: not forwarded (as aiohttp's client)
            return
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            raise UpstreamClosed(f"response head over {MAX_HEAD_BYTES} bytes",
                                 before_response=False)
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        assert self._head is not None
        if self.complete:
            self.reusable = False
            return
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: not the response
            self._informational = True
            self.headers = []
            return
        self.status = status
        if self._head_only:
            self.complete = True
            self.keep_alive = self._parser.should_keep_alive()
        else:
            self._until_eof = status not in (204, 304) and not any(
                k in (b"content-length", b"transfer-encoding") for k, _ in self.headers)
        if not self._head.done():
            self._head.set_result(status)

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body after a HEAD response's head
            self.reusable = False
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._read_paused and self.transport:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if self.complete:
            return
        assert self._parser is not None
        self.complete = True
        self.keep_alive = self._parser.should_keep_alive()
        self._wake()

    # --- helpers -------------------------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: UpstreamClosed) -> None:
        self.error = error
        self.reusable = False
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
