"""E2E: what the upstream client's shared pool must never do, through `bffgate serve`, a real
oidc-provider and the echo upstream (until issue 9 these were checked only by
bench/proxy_bench.py): buffer a chunked request body instead of streaming it, or replay one
user's upstream Set-Cookie on another user's request.

The route's upstream is addressed as ``localhost``, not 127.0.0.1: aiohttp's default cookie
jar ignores cookies from IP-address hosts, so only a named host shows a jar that stores."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login
from support.gateway import GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.redis import RedisServer
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
CLIENT = "bff-pool"
PIECES, PIECE_DELAY = 4, 0.25


@pytest.fixture(scope="module")
def pool_gateway(redis_server: RedisServer, upstream: EchoUpstream) -> Iterator[GatewayProcess]:
    port, admin_port = new_ports()
    named_upstream = f"http://localhost:{upstream.port}"
    op = OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{port}/bff/callback"],
        "post_logout_redirect_uris": [f"http://localhost:{port}/"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }]).start()
    gw = GatewayProcess(gateway_config(
        port=port, admin_port=admin_port, issuer=op.issuer, client_id=CLIENT,
        client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=named_upstream,
        cookie_key=COOKIE_KEY,
        routes=[{"prefix": "/api", "upstream": named_upstream, "token": "user"},
                {"prefix": "/public", "upstream": named_upstream, "token": "none"}]))
    try:
        yield gw.start()
    finally:
        gw.terminate()
        op.close()


async def _user(gw: GatewayProcess, name: str) -> Browser:
    browser = Browser(gw.url)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
        assert (await login(browser, idp_client, user=name)).status_code == 302
    return browser


async def test_chunked_request_body_streams_to_the_upstream(pool_gateway: GatewayProcess,
                                                            upstream: EchoUpstream) -> None:
    """A chunked upload sent in pieces 0.25 s apart reaches the upstream intact and in
    pieces as they come: its first and last piece arrive >= 0.4 s apart (a gateway that
    buffered the body would deliver them together)."""
    alice = await _user(pool_gateway, "alice")
    payload = os.urandom(256 * 1024 * PIECES)

    async def slowly() -> AsyncIterator[bytes]:
        step = len(payload) // PIECES
        for i in range(PIECES):
            if i:
                await asyncio.sleep(PIECE_DELAY)
            yield payload[i * step:(i + 1) * step]

    try:
        r = await alice.api("POST", "/api/stream-in", content=slowly())
    finally:
        await alice.aclose()
    assert r.status_code == 200, r.text
    seen = upstream.last_for("/api/stream-in")
    assert header_values(seen, "transfer-encoding") == ["chunked"]
    assert (seen["body_len"], seen["body_sha256"]) == (len(payload),
                                                       hashlib.sha256(payload).hexdigest())
    assert seen["body_spread"] >= (PIECES - 1) * PIECE_DELAY * 0.5, seen["body_spread"]


async def test_upstream_set_cookie_is_never_replayed_to_another_user(
        pool_gateway: GatewayProcess, upstream: EchoUpstream) -> None:
    """The upstream client and its pool are shared by all users: a Set-Cookie the upstream
    sends on alice's request must reach neither her browser nor any later upstream request
    (bob's, an anonymous one, or alice's own)."""
    alice, bob = await _user(pool_gateway, "alice"), await _user(pool_gateway, "bob")
    anonymous = Browser(pool_gateway.url)
    try:
        first = await alice.api("GET", "/api/pool/alice-gets-a-cookie")
        assert first.status_code == 200, first.text
        assert "set-cookie" not in first.headers
        assert header_values(upstream.last_for("/api/pool/alice-gets-a-cookie"),
                             "set-cookie") == []  # (a request header: never)
        later: list[tuple[Browser, str]] = [(bob, "/api/pool/bob-after-alice"),
                                            (anonymous, "/public/pool/anonymous-after-alice"),
                                            (alice, "/api/pool/alice-again")]
        for browser, path in later:
            r = await browser.api("GET", path)
            assert r.status_code == 200, r.text
            seen: dict[str, Any] = upstream.last_for(path)
            assert header_values(seen, "cookie") == [], (path, seen["headers"])
    finally:
        for b in (alice, bob, anonymous):
            await b.aclose()
