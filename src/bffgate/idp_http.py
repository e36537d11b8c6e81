"""The IdP client: httpx's API (requests, responses, authlib's client authentication) over
the gateway's own HTTP/1.1 client (bffgate.proxy.h1client, llhttp parsing) instead of
httpcore on anyio.

Why: a token-endpoint POST cost ~950 µs of the gateway's CPU through httpx's own transport
and ~350 µs through this one (httpx's request and response objects included; measured with
bench/idp_client.py, bench/README.md), which is most of what a login spends outside the
IdP. ``server.upstream_client`` picks it as it picks the proxy's client: ``auto`` (with
httptools installed) and ``httptools`` use it, ``aiohttp`` keeps httpx's own transport.

The client keeps no cookies (``_CookielessClient``). What the transport keeps of httpx's: no
redirect followed (the client's ``follow_redirects=False``), no proxy or environment
settings (``trust_env=False``), the client's timeouts (``connect`` bounds the connect and
the wait for a pooled connection, ``read`` the wait for the response head and each read of
its body), its connection limit, and its errors: a failure is the ``httpx.TransportError``
its own transport raises for it (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``ReadError``, ``LocalProtocolError``), so callers see no difference. TLS is verified with
Python's default context (the system's CA store, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
as for https upstreams. Content decoding (gzip) is httpx's, on the response.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from bffgate.errors import BadRequest, GatewayError, UpstreamTimeout
from bffgate.proxy.clients import CHOICES
from bffgate.proxy.timeouts import Timeouts
from bffgate.speedups import with_httptools

if TYPE_CHECKING:
    from bffgate.proxy.h1client import H1Response, H1Upstream

# What an unset (None) httpx timeout becomes: no practical limit.
_UNBOUNDED = 24 * 3600.0
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def idp_client(transport: httpx.AsyncBaseTransport, timeout: float) -> httpx.AsyncClient:
    """The gateway's one IdP client (``oidc.http_timeout``, connect at most 5 s of it)."""
    return _CookielessClient(
        timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), follow_redirects=False,
        trust_env=False, limits=LIMITS, transport=transport)


class _NoJar(http.cookiejar.CookieJar):
    """Stores nothing, whichever way a cookie is handed to it."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class _NoCookies(httpx.Cookies):
    """Never holds a cookie (its jar stores none); what a response sets is not even parsed."""

    def __init__(self) -> None:
        super().__init__(_NoJar())

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


_NO_COOKIES = _NoCookies()  # shared: it can hold nothing


class _CookielessClient(httpx.AsyncClient):
    """The IdP client keeps no cookie: it is shared by every user's logins and refreshes,
    so a cookie an IdP (or its load balancer) set in one user's token response must not go
    out with the next user's, and no OAuth endpoint needs one. Skipping the cookie jar also
    saves its parsing of every response (~5 % of a login's CPU)."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, _cookies: Any) -> None:
        pass


def idp_transport(choice: str, limits: httpx.Limits = LIMITS) -> httpx.AsyncBaseTransport:
    """The IdP client's transport for ``server.upstream_client`` = ``choice``."""
    plain: Callable[[httpx.Limits], httpx.AsyncBaseTransport] = _httpx_own
    make = with_httptools("server.upstream_client", choice, CHOICES, plain_name="aiohttp",
                          plain=plain, load=_h1)
    return make(limits)


def _httpx_own(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)


def _h1() -> Callable[[httpx.Limits], httpx.AsyncBaseTransport]:
    from bffgate.proxy.h1client import H1Upstream  # httptools: the speed extra

    return lambda limits: H1Transport(H1Upstream(limit=limits.max_connections or 100))


class H1Transport(httpx.AsyncBaseTransport):
    def __init__(self, client: H1Upstream) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        read = timeout.get("read") or _UNBOUNDED
        timeouts = Timeouts(connect=timeout.get("connect") or _UNBOUNDED, response=read,
                            idle=read)
        content = await request.aread()
        # The client writes the Host field from the URL itself.
        headers = [(name, value) for name, value in request.headers.raw
                   if name.lower() != b"host"]
        try:
            resp = await self._client.send(request.method, str(request.url), headers,
                                           _once(content) if content else None, timeouts)
        except GatewayError as exc:
            raise _transport_error(exc, request) from exc
        return httpx.Response(resp.status, headers=resp.headers, stream=_Body(resp, request),
                              extensions={"http_version": b"HTTP/1.1"})

    async def aclose(self) -> None:
        await self._client.close()


async def _once(content: bytes) -> AsyncIterator[bytes]:
    yield content


class _Body(httpx.AsyncByteStream):
    def __init__(self, resp: H1Response, request: httpx.Request) -> None:
        self._resp, self._request = resp, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.body():
                yield chunk
        except GatewayError as exc:
            raise _transport_error(exc, self._request) from exc

    async def aclose(self) -> None:
        await self._resp.close()


def _transport_error(exc: GatewayError, request: httpx.Request) -> httpx.TransportError:
    """The error httpx's own transport raises for the same failure."""
    kind: type[httpx.TransportError]
    if isinstance(exc, BadRequest):  # a header or target that cannot be sent as it is
        kind = httpx.LocalProtocolError
    elif isinstance(exc, UpstreamTimeout):
        kind = (httpx.ConnectTimeout if exc.reason == "upstream_connect_timeout"
                else httpx.ReadTimeout)
    elif exc.reason == "upstream_connect_error":
        kind = httpx.ConnectError
    else:
        kind = httpx.ReadError
    return kind(f"{request.method} {request.url}: {exc.reason}", request=request)
