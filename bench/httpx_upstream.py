"""The upstream client the gateway was compared with in proxy_bench.py: the same
``UpstreamClient`` contract as ``bffgate.proxy.forward.AiohttpUpstream``, over httpx
(httpcore's pool, or the httpx-aiohttp transport). Not shipped: bench only."""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator

import httpx

from bffgate.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy.forward import OutgoingBody
from bffgate.proxy.timeouts import Timeouts


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
                   body: AsyncIterator[bytes] | None,
                   timeout: Timeouts | float) -> _HttpxResponse:
        t = timeout if isinstance(timeout, Timeouts) else Timeouts.of(timeout)
        outgoing = OutgoingBody(body, headers)
        # httpx has one read timeout: the response timeout (a bench route has no idle one).
        req = self._client.build_request(method, url, headers=headers, content=outgoing.chunks(),
                                         timeout=httpx.Timeout(t.response, connect=t.connect))
        try:
            resp = await self._client.send(req, stream=True)
        except GatewayError:
            raise
        except httpx.TimeoutException as exc:
            raise outgoing.error or UpstreamTimeout(reason="upstream_timeout") from exc
        except httpx.HTTPError as exc:
            raise outgoing.error or UpstreamUnavailable(reason="upstream_connect_error") from exc
        return _HttpxResponse(resp)

    async def close(self) -> None:
        await self._client.aclose()
