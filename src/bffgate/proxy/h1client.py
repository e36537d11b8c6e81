"""``H1Upstream``: the gateway's HTTP/1.1 upstream client, a keep-alive pool of
``H1Connection`` (httptools' llhttp parses every response), behind ``UpstreamClient``.

Why not aiohttp's client (``AiohttpUpstream``, still selectable with
``server.upstream_client = "aiohttp"``): a proxied call through it cost ~200 µs of CPU in
aiohttp's request machinery against ~50 µs here (bench/README.md, stack_candidates.py,
"What was adopted instead"), the largest single cost of a call. The parser is not ours;
what is here is what a forwarding proxy must decide anyway, and the same rules as before:

* the request goes out as received: the target byte for byte (bytes above 0x7f
  percent-encoded, a control character refused as ``unsendable_request``), the headers
  the header policy kept, the body streamed with exactly the Content-Length it declares
  (``OutgoingBody``) or, without one, chunked;
* never a redirect followed, never a body decompressed;
* a connection goes back to the pool only after a request sent whole and a response read
  whole on a connection both sides keep alive; idle ones are dropped after
  ``h1pool.KEEPALIVE_SECONDS``, and an idempotent request without a body that finds its pooled
  connection closed under it (the keep-alive race) is sent once more on a new one;
* failures become ``UpstreamTimeout`` / ``UpstreamUnavailable`` with the same reasons:
  ``upstream_connect_timeout`` (connect, or the wait for a pooled connection),
  ``upstream_timeout`` (no response head in time), ``upstream_idle_timeout`` (between body
  reads), ``upstream_connect_error``, ``upstream_read_error``.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import AsyncIterator

from bffgate.errors import BadRequest, GatewayError, UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy.forward import OutgoingBody
from bffgate.proxy.h1conn import H1Connection, UpstreamClosed
from bffgate.proxy.h1pool import Pool, origin_of
from bffgate.proxy.timeouts import Timeouts

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# What a header may hold, as bytes.translate's delete set (what is left over is refused:
# C speed, several times a regex's): values, anything but a control other than HTAB; names,
# token characters (RFC 9110 5.6.2).
_VALUE_BYTES = bytes([b for b in range(256) if b == 0x09 or (0x20 <= b != 0x7f)])
_NAME_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_TARGET_BAD = re.compile(r"[\x00-\x20\x7f]")


def _split(url: str) -> tuple[str, str]:
    """(origin, request target) of an absolute URL."""
    start = url.find("/", url.find("//") + 2)
    if start < 0:
        query = url.find("?")
        return (url, "/") if query < 0 else (url[:query], "/" + url[query:])
    return url[:start], url[start:]


def _target_bytes(target: str) -> bytes:
    if target.isascii():
        if _TARGET_BAD.search(target) is None:
            return target.encode("ascii")
    else:
        target = "".join(c if ord(c) < 0x80 else f"%{ord(c):02X}" for c in target)
        if _TARGET_BAD.search(target) is None:
            return target.encode("ascii")
    raise _unsendable()


def _unsendable() -> BadRequest:
    return BadRequest("the request cannot be forwarded as sent (a control character "
                      "in a header value?)", reason="unsendable_request")


class H1Response:
    def __init__(self, pool: Pool, conn: H1Connection, sent: OutgoingBody,
                 upload: asyncio.Task[None] | None, idle: float | None) -> None:
        self._pool = pool
        self._conn = conn
        self._sent = sent
        self._upload = upload
        self._idle = idle
        self._read_whole = False
        self.status = conn.status
        self.headers = conn.headers

    async def body(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            data = conn.take()
            if data:
                yield data
                continue
            if conn.complete:
                break
            if conn.error is not None:
                raise UpstreamUnavailable(reason="upstream_read_error") from conn.error
            try:
                await conn.wait(self._idle)
            except TimeoutError as exc:
                raise UpstreamTimeout(reason="upstream_idle_timeout") from exc
        self._read_whole = True

    async def close(self) -> None:
        conn = self._conn
        upload_done = self._upload is None or self._upload.done()
        if self._upload is not None and not upload_done:
            self._upload.cancel()
        if (self._read_whole and upload_done and self._sent.whole and conn.keep_alive
                and conn.reusable and not conn.closed):
            self._pool.release(conn)
        else:
            self._pool.discard(conn)


class H1Upstream:
    """Pooled HTTP/1.1 connections per upstream origin (one gateway client per origin)."""

    def __init__(self, limit: int = 512) -> None:
        self._limit = limit
        self._pools: dict[str, Pool] = {}
        self._tls: ssl.SSLContext | None = None

    def _pool(self, origin: str) -> Pool:
        pool = self._pools.get(origin)
        if pool is None:
            try:
                o = origin_of(origin)
            except ValueError as exc:
                raise UpstreamUnavailable(reason="upstream_connect_error") from exc
            if o.tls and self._tls is None:
                self._tls = ssl.create_default_context()
            pool = self._pools[origin] = Pool(o, self._limit, self._tls if o.tls else None)
        return pool

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None,
                   timeout: Timeouts | float) -> H1Response:
        timeouts = timeout if isinstance(timeout, Timeouts) else Timeouts.of(timeout)
        outgoing = OutgoingBody(body, headers)
        origin, target = _split(url)
        pool = self._pool(origin)
        head = self._head(method, target, pool, headers, chunked=outgoing.chunked)
        retry = body is None and method in _IDEMPOTENT
        while True:
            conn, reused = await pool.acquire(timeouts.connect)
            try:
                return await self._exchange(pool, conn, method, head, outgoing, timeouts)
            except UpstreamClosed as exc:
                pool.discard(conn)
                if retry and reused and exc.before_response:
                    retry = False  # the keep-alive race: once more, on a new connection
                    continue
                raise outgoing.error or UpstreamUnavailable(reason=(
                    "upstream_connect_error" if exc.before_response
                    else "upstream_read_error")) from exc
            except BaseException:
                pool.discard(conn)
                raise

    @staticmethod
    def _head(method: str, target: str, pool: Pool, headers: list[tuple[bytes, bytes]], *,
              chunked: bool) -> bytes:
        names = [name for name, _ in headers]
        # All names at once ('-' joins them: a token character), all values at once (HTAB
        # joins them: the one control a value may hold).
        if (b"-".join(names).translate(None, _NAME_BYTES) or not all(names)
                or b"\t".join([v for _, v in headers]).translate(None, _VALUE_BYTES)):
            raise _unsendable()
        fields = b"".join([b"%s: %s\r\n" % field for field in headers])
        return b"%s %s HTTP/1.1\r\nhost: %s\r\n%s%s\r\n" % (
            method.encode("ascii"), _target_bytes(target), pool.origin.host_header, fields,
            b"transfer-encoding: chunked\r\n" if chunked else b"")

    async def _exchange(self, pool: Pool, conn: H1Connection, method: str, head: bytes,
                        outgoing: OutgoingBody, timeouts: Timeouts) -> H1Response:
        loop = asyncio.get_running_loop()
        chunks = outgoing.chunks()
        status = conn.start(head, head_only=method == "HEAD", body_follows=chunks is not None)
        upload = None if chunks is None else loop.create_task(
            _upload(conn, chunks, chunked=outgoing.chunked))
        if upload is not None:
            upload.add_done_callback(functools.partial(_upload_done, conn))
        timer = loop.call_later(timeouts.response, conn.fail_head, TimeoutError())
        try:
            await status
        except BaseException as exc:  # no response: the upload has nothing left to do
            if upload is not None:
                upload.cancel()
            if isinstance(exc, TimeoutError):
                raise outgoing.error or UpstreamTimeout(reason="upstream_timeout") from None
            raise
        finally:
            timer.cancel()
        return H1Response(pool, conn, outgoing, upload, timeouts.idle)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


async def _upload(conn: H1Connection, chunks: AsyncIterator[bytes], *, chunked: bool) -> None:
    """The body after the head (which goes out with its first bytes, or with its end when
    it is empty). A body that breaks raises before the end is written: the upstream never
    sees a cut body as a whole one."""
    async for chunk in chunks:
        if chunk:
            conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            await conn.drain()
    conn.write(b"0\r\n\r\n" if chunked else b"")


def _upload_done(conn: H1Connection, task: asyncio.Task[None]) -> None:
    """A failed upload (the client's body broke, too long or short, the upstream went away)
    ends the exchange: the connection is closed, so a response not yet in fails."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        conn.close()
        if isinstance(exc, GatewayError | UpstreamClosed):
            conn.fail_head(exc)
