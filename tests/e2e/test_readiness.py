"""E2E: what /readyz means. Ready = Redis answers; the IdP is probed live and reported, but an
IdP outage does not take a replica out of the load balancer (it still serves the sessions it
has). Real `bffgate serve`, its own redis-server and oidc-provider, stopped and started here.
(Before: /readyz read the cached IdP metadata, so it reported a stopped IdP as "ok".)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta, login
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def world(upstream: EchoUpstream) -> Iterator[dict[str, Any]]:
    port = free_port()
    meta = client_meta(port)
    meta.pop("backchannel_logout_uri")
    meta.pop("backchannel_logout_session_required")
    with RedisServer() as redis, OidcProviderProcess([meta]) as idp:
        gw = GatewayProcess(gateway_config(
            port=port, admin_port=free_port(), issuer=idp.issuer, client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=upstream.url,
            cookie_key=COOKIE_KEY)).start()
        try:
            yield {"redis": redis, "idp": idp, "gateway": gw}
        finally:
            gw.terminate()


async def ready(gw: GatewayProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        r = await c.get(gw.admin_url + "/readyz")
    body: dict[str, Any] = r.json()
    return r.status_code, body


async def test_readiness_is_never_cached(world: dict[str, Any]) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        r = await c.get(world["gateway"].admin_url + "/readyz")
    assert r.headers["cache-control"] == "no-store"


async def test_readiness_follows_redis_and_reports_the_idp(world: dict[str, Any]) -> None:
    gw, idp, redis = world["gateway"], world["idp"], world["redis"]
    assert await ready(gw) == (200, {"status": "ok",
                                     "checks": {"store": "ok", "idp_metadata": "ok"}})
    browser = Browser(gw.url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_jar:
            assert (await login(browser, idp_jar)).status_code == 302

        idp.stop()  # IdP down: still ready, the IdP reported down, sessions still served
        assert await ready(gw) == (200, {"status": "ok", "checks": {
            "store": "ok", "idp_metadata": "idp_unavailable"}})
        assert (await browser.api("GET", "/api/idp-down")).status_code == 200

        idp.restart()
        assert (await ready(gw))[1]["checks"]["idp_metadata"] == "ok"

        redis.stop()  # Redis down: not ready (no session can be read)
        assert await ready(gw) == (503, {"status": "unavailable", "checks": {
            "store": "unavailable", "idp_metadata": "ok"}})
        redis.start()
        assert (await ready(gw))[0] == 200
    finally:
        await browser.aclose()
