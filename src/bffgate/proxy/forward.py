"""The streaming upstream client behind one small interface (``UpstreamClient``).

``AiohttpUpstream`` is what the gateway ships: on this project's benchmark its pool is
several times faster than httpcore's under concurrency (bench/httpx_upstream.py keeps the
httpx client it was compared with). It streams the request body in and the response body
out, never follows redirects, never decompresses (bytes pass through as the upstream sent
them), and turns transport failures into ``UpstreamUnavailable`` / ``UpstreamTimeout`` (by
kind: ``upstream_connect_timeout``, ``upstream_timeout`` for no response headers in time,
``upstream_idle_timeout`` between body reads). Body chunks are yielded as they arrive
(``iter_any``), so a Server-Sent Events stream is never held back. It
sends exactly the Content-Length it forwards or aborts the request (``OutgoingBody``); its
pooled connection is reused only after a request sent whole and a response read whole.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import yarl

from bffgate.errors import BadRequest, GatewayError, UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy.headers import declared_length
from bffgate.proxy.timeouts import Timeouts


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def body(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class UpstreamClient(Protocol):
    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None,
                   timeout: Timeouts | float) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class OutgoingBody:
    """The request body on its way to the upstream, counted against the Content-Length it
    is forwarded with: the gateway never sends a length it has not verified against the
    bytes it sends (RFC 9112 §6.2; a body shorter than its length leaves the upstream
    connection owing bytes, and the next request on it is read from the wrong offset).

    A mismatch, or a GatewayError raised while reading the client's body (too large, client
    gone), aborts the upload; ``error`` keeps it, because HTTP clients wrap such errors into
    their own transport errors. ``whole`` says the body went out complete.
    """

    def __init__(self, body: AsyncIterator[bytes] | None,
                 headers: list[tuple[bytes, bytes]]) -> None:
        self.error: GatewayError | None = None
        try:
            self._declared = declared_length(headers)
        except ValueError:
            raise BadRequest("invalid Content-Length",
                             reason="framing:bad_content_length") from None
        if body is None and self._declared:
            raise BadRequest("Content-Length without a body",
                             reason="framing:body_length_mismatch")
        self._body = body
        self.whole = body is None

    @property
    def chunked(self) -> bool:
        """A body without a Content-Length: it goes out chunked."""
        return self._body is not None and self._declared is None

    def chunks(self) -> AsyncIterator[bytes] | None:
        return None if self._body is None else self._counted(self._body)

    async def _counted(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        sent, declared = 0, self._declared
        try:
            async for chunk in body:
                sent += len(chunk)
                if declared is not None and sent > declared:
                    raise self._mismatch("longer")
                yield chunk
            if declared is not None and sent != declared:
                raise self._mismatch("shorter")
        except GatewayError as exc:
            self.error = exc
            raise
        self.whole = True

    @staticmethod
    def _mismatch(how: str) -> BadRequest:
        return BadRequest(f"the request body is {how} than its Content-Length",
                          reason="framing:body_length_mismatch")


class _AiohttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse, sent: OutgoingBody,
                 idle: float | None) -> None:
        self._resp = resp
        self._sent = sent
        self._read_whole = False
        self.status = resp.status
        self.headers = [(k.lower(), v) for k, v in resp.raw_headers]
        self._idle_from_now(idle)

    def _idle_from_now(self, idle: float | None) -> None:
        """The headers are in: from here the socket's read timeout is the idle timeout
        (aiohttp has one read timeout per request, sock_read, which was the response
        timeout until now). Restarted now, so the wait for the first body byte is idle
        time too; nothing to do once the body is read whole (no timer left to move)."""
        conn = self._resp.connection
        if conn is None or conn.protocol is None or self._resp.content.is_eof():
            return
        conn.protocol.read_timeout = idle
        conn.protocol.start_timeout()

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(reason="upstream_idle_timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(reason="upstream_read_error") from exc
        self._read_whole = True

    async def close(self) -> None:
        # Back to the pool only when both messages went through whole; otherwise the
        # connection is in an unknown place of the byte stream (an upstream that answered
        # before reading the body, a response cut short) and is closed, never reused.
        if self._read_whole and self._sent.whole:
            self._resp.release()
        else:
            self._resp.close()


@functools.lru_cache(maxsize=256)  # one per route's Timeouts, not one per request
def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, connect=timeouts.connect,
                                 sock_connect=timeouts.connect, sock_read=timeouts.response)


class AiohttpUpstream:
    """One pooled aiohttp session per upstream origin, created at startup."""

    def __init__(self, limit: int = 512) -> None:
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=60,
                                         enable_cleanup_closed=True, force_close=False)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type", "Accept"),
        )

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None,
                   timeout: Timeouts | float) -> _AiohttpResponse:
        """Send one request; ``timeout`` is a route's Timeouts, or one number meaning what
        a route's ``timeout`` alone means (Timeouts.of)."""
        timeouts = timeout if isinstance(timeout, Timeouts) else Timeouts.of(timeout)
        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        outgoing = OutgoingBody(body, headers)
        # The path was checked byte for byte: send it so. Left to yarl, "%41" would go out
        # as "A" and "%25%32%65" as "%252e", a path the check never saw.
        target = yarl.URL(url, encoded=True) if url.isascii() and url.isprintable() else url
        try:
            resp = await self._session.request(
                method, target, headers=hdrs, data=outgoing.chunks(), allow_redirects=False,
                timeout=_client_timeout(timeouts),
                compress=None, chunked=None,
            )
        except GatewayError:
            raise
        except aiohttp.ConnectionTimeoutError as exc:
            raise UpstreamTimeout(reason="upstream_connect_timeout") from exc
        except TimeoutError as exc:
            raise outgoing.error or UpstreamTimeout(reason="upstream_timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise outgoing.error or UpstreamUnavailable(reason="upstream_connect_error") from exc
        except ValueError as exc:
            # aiohttp refuses to write what the client sent (a control character in a header
            # value, which h11 lets through): the client's request is bad, not the gateway.
            raise BadRequest("the request cannot be forwarded as sent (a control character "
                             "in a header value?)", reason="unsendable_request") from exc
        return _AiohttpResponse(resp, outgoing, timeouts.idle)

    async def close(self) -> None:
        await self._session.close()
