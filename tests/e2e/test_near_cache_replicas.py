"""E2E: the session near-cache across two real gateway processes (replicas A and B) sharing
one Redis, with the real oidc-provider. A session ended on A (logout) is refused by B within
the stated bound (1 s; pub/sub makes it milliseconds), and a hot session costs B no Redis
command per proxied call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e
CLIENT = "bff-near-cache"
BOUND_SECONDS = 1.0  # bffgate.session.near_cache.MAX_AGE_SECONDS, the README's figure


@pytest.fixture(scope="module")
def pair(upstream: EchoUpstream) -> Iterator[dict]:
    ports = [(free_port(), free_port()) for _ in range(2)]
    op = OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }]).start()
    store = RedisServer().start()
    gateways: list[GatewayProcess] = []
    try:
        for p, a in ports:
            gateways.append(GatewayProcess(gateway_config(
                port=p, admin_port=a, issuer=op.issuer, client_id=CLIENT,
                client_secret=CLIENT_SECRET, redis_url=store.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY, session={"store": "redis", "refresh_ahead": 2})).start())
        yield {"op": op, "redis": store, "a": gateways[0], "b": gateways[1]}
    finally:
        for gw in gateways:
            gw.terminate()
        op.close()
        store.close()


async def _login(pair: dict) -> tuple[Browser, str]:
    browser = Browser(pair["a"].url)
    async with httpx.AsyncClient(trust_env=False) as idp_client:
        r = await login(browser, idp_client, pair["redis"].url)
    assert r.status_code == 302
    cookie = browser.cookie("__Host-bffgate")
    assert cookie
    return browser, cookie


def _commands(redis_url: str) -> dict[str, int]:
    r = redis.Redis.from_url(redis_url)
    try:
        return {k.removeprefix("cmdstat_"): int(v["calls"])
                for k, v in r.info("commandstats").items()}
    finally:
        r.close()


async def test_logout_on_a_is_refused_on_b_within_the_bound(pair: dict) -> None:
    browser, cookie = await _login(pair)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        for _ in range(3):  # B reads the session once, then serves it from its near-cache
            assert (await c.get(f"{pair['b'].url}/api/warm", headers=headers)).status_code == 200
        user = (await browser.api("GET", "/bff/user")).json()
        out = await browser.get(user["logout_url"])
        assert out.status_code == 302
        ended = time.monotonic()
        while True:
            r = await c.get(f"{pair['b'].url}/api/after-logout", headers=headers)
            took = time.monotonic() - ended
            if r.status_code == 401:
                break
            assert r.status_code == 200
            assert took < BOUND_SECONDS, f"B still served the session {took:.3f} s after logout"
            await asyncio.sleep(0.005)
    print(f"refused on B {took * 1000:.1f} ms after the logout on A returned")
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_hot_session_costs_b_no_redis_command_per_call(pair: dict) -> None:
    _, cookie = await _login(pair)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        assert (await c.get(f"{pair['b'].url}/api/warm", headers=headers)).status_code == 200
        before = _commands(pair["redis"].url)
        started = time.monotonic()
        for i in range(200):
            r = await c.get(f"{pair['b'].url}/api/hot/{i}", headers=headers)
            assert r.status_code == 200
        elapsed = time.monotonic() - started
        after = _commands(pair["redis"].url)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    for own in ("info", "hello"):  # this test's own connection
        delta.pop(own, None)
    # Round trips: only the session read (EVALSHA; its GET and PEXPIRE run inside the
    # script and are counted by Redis too), at most once per second of traffic: the
    # near-cache's age bound. 200 calls, a handful of reads.
    reads = delta.get("evalsha", 0)
    assert set(delta) <= {"evalsha", "get", "pexpire"}, delta
    assert reads <= int(elapsed / BOUND_SECONDS) + 1, (delta, elapsed)
    print(f"200 calls in {elapsed:.2f} s: Redis commands {delta}")
