"""Streaming upstream clients behind one small interface.

``AiohttpUpstream`` is what the gateway ships: on this project's benchmark (bench/) its
pool is several times faster than httpcore's under concurrency. ``HttpxUpstream`` stays
for comparison in bench/. Both stream the request body in and the response body out,
never follow redirects, never decompress (bytes pass through as the upstream sent them),
and turn transport failures into ``UpstreamUnavailable`` / ``UpstreamTimeout``.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import httpx

from bffgate.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable


class UpstreamResponse(Protocol):
    status: int
    headers: list[tuple[bytes, bytes]]

    def body(self) -> AsyncIterator[bytes]: ...

    async def close(self) -> None: ...


class UpstreamClient(Protocol):
    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: float) -> UpstreamResponse: ...

    async def close(self) -> None: ...


class _BodyFailure:
    """Remembers a GatewayError raised while reading the client's body (e.g. too large,
    client gone), because HTTP clients wrap such errors into their own transport errors."""

    def __init__(self) -> None:
        self.error: GatewayError | None = None

    def wrap(self, body: AsyncIterator[bytes] | None) -> AsyncIterator[bytes] | None:
        if body is None:
            return None

        async def guarded() -> AsyncIterator[bytes]:
            try:
                async for chunk in body:
                    yield chunk
            except GatewayError as exc:
                self.error = exc
                raise

        return guarded()


class _AiohttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse, timeout: float) -> None:
        self._resp = resp
        self._timeout = timeout
        self.status = resp.status
        self.headers = [(k.lower(), v) for k, v in resp.raw_headers]

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout(reason="upstream_read_timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(reason="upstream_read_error") from exc

    async def close(self) -> None:
        self._resp.release()


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
                   body: AsyncIterator[bytes] | None, timeout: float) -> _AiohttpResponse:
        hdrs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        failure = _BodyFailure()
        try:
            resp = await self._session.request(
                method, url, headers=hdrs, data=failure.wrap(body), allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=min(5.0, timeout),
                                              sock_read=timeout),
                compress=None, chunked=None,
            )
        except GatewayError:
            raise
        except TimeoutError as exc:
            raise failure.error or UpstreamTimeout(reason="upstream_timeout") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise failure.error or UpstreamUnavailable(reason="upstream_connect_error") from exc
        return _AiohttpResponse(resp, timeout)

    async def close(self) -> None:
        await self._session.close()


class _HttpxResponse:
    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self.status = resp.status_code
        self.headers = [(k.lower(), v) for k, v in resp.headers.raw]

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout(reason="upstream_read_timeout") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(reason="upstream_read_error") from exc

    async def close(self) -> None:
        await self._resp.aclose()


class HttpxUpstream:
    """The same contract over httpx (kept for benchmarks and comparison)."""

    def __init__(self, limit: int = 512, transport: httpx.AsyncBaseTransport | None = None) -> None:
        # A jar that never stores: a shared client must not replay one user's upstream
        # cookie on everybody's requests; and no default headers the browser didn't send.
        jar = http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            follow_redirects=False, transport=transport, trust_env=False, cookies=jar)
        self._client.headers.clear()

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: float) -> _HttpxResponse:
        failure = _BodyFailure()
        req = self._client.build_request(method, url, headers=headers, content=failure.wrap(body),
                                         timeout=httpx.Timeout(timeout, connect=5.0))
        try:
            resp = await self._client.send(req, stream=True)
        except GatewayError:
            raise
        except httpx.TimeoutException as exc:
            raise failure.error or UpstreamTimeout(reason="upstream_timeout") from exc
        except httpx.HTTPError as exc:
            raise failure.error or UpstreamUnavailable(reason="upstream_connect_error") from exc
        return _HttpxResponse(resp)

    async def close(self) -> None:
        await self._client.aclose()
