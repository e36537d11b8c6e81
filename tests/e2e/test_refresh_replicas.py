"""E2E: transparent refresh with rotating refresh tokens across THREE gateway processes
sharing one Redis, against the real oidc-provider (access tokens live 6 s). Grants are
counted at the IdP, never in the gateway."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login, read_session_tokens
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
CLIENT = "bff-replicas"
AT_TTL = 6


@pytest.fixture(scope="module")
def cluster(upstream: EchoUpstream) -> Iterator[dict]:
    ports = [(free_port(), free_port()) for _ in range(3)]
    state = Path(tempfile.mkdtemp(prefix="bffgate-op-")) / "state.json"
    op = OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }], access_token_ttl=AT_TTL, rotate_refresh_tokens=True, state_file=str(state)).start()
    redis = RedisServer(appendonly=True).start()
    gateways: list[GatewayProcess] = []
    try:
        for p, a in ports:
            gateways.append(GatewayProcess(gateway_config(
                port=p, admin_port=a, issuer=op.issuer, client_id=CLIENT,
                client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY, oidc={"http_timeout": 2}, redis={"timeout": 1})).start())
        yield {"op": op, "redis": redis, "gateways": gateways}
    finally:
        for gw in gateways:
            gw.terminate()
        op.close()
        redis.close()


async def _login(cluster: dict) -> tuple[Browser, str, dict]:
    gw0 = cluster["gateways"][0]
    b = Browser(gw0.url)
    async with httpx.AsyncClient(trust_env=False) as idp_client:
        r = await login(b, idp_client, cluster["redis"].url)
    assert r.status_code == 302
    cookie = b.cookie("__Host-bffgate")
    assert cookie
    return b, cookie, read_session_tokens(cluster["redis"].url, cookie)


async def _sleep_until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.time()))


async def _storm(cluster: dict, cookie: str, n: int, tag: str) -> list[tuple[int, float]]:
    """n concurrent GETs spread round-robin over the replicas: [(status, seconds)].
    (aiohttp as the load client: httpx's pool itself queues badly at this concurrency.)"""
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    gws = cluster["gateways"]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one(i: int) -> tuple[int, float]:
            t = time.perf_counter()
            async with s.get(f"{gws[i % 3].url}/api/storm/{tag}/{i}", headers=headers) as r:
                await r.read()
                return r.status, time.perf_counter() - t

        return await asyncio.gather(*[one(i) for i in range(n)])


def _bearers(upstream: EchoUpstream, tag: str) -> set[str]:
    return {header_values(r, "authorization")[0] for r in upstream.seen
            if f"/api/storm/{tag}/" in r["path"]}


async def test_refresh_storm_over_three_replicas_makes_one_grant(cluster, upstream) -> None:
    """300 concurrent requests, 100 per replica, right when the token needs refresh:
    all succeed, all carry the same NEW token (active at the IdP), one grant per window."""
    op = cluster["op"]
    _, cookie, first = await _login(cluster)
    old_at = first["tokens"]["at"]
    for window in (1, 2):
        op.reset_stats()
        rat = read_session_tokens(cluster["redis"].url, cookie)["record"]["rat"]
        await _sleep_until(rat + 0.05)
        started = time.perf_counter()
        responses = await _storm(cluster, cookie, 300, f"w{window}")
        elapsed = time.perf_counter() - started
        assert [st for st, _ in responses if st != 200] == []
        lat = sorted(t for _, t in responses)
        stats = op.stats()
        assert stats["refresh_grants"] == 1, stats
        assert stats["refresh_success"] == 1
        bearers = _bearers(upstream, f"w{window}")
        assert len(bearers) == 1, "every request used the one refreshed token"
        at = bearers.pop().removeprefix("Bearer ")
        assert at != old_at
        assert op.introspect(at, CLIENT, CLIENT_SECRET)["active"] is True
        old_at = at
        print(f"window {window}: 300 requests over 3 replicas in {elapsed:.2f}s, "
              f"grants={stats['refresh_grants']}, p50={lat[149]*1000:.0f}ms "
              f"p99={lat[296]*1000:.0f}ms")
    events = [e for gw in cluster["gateways"] for e in gw.audit("session.refreshed")]
    assert len(events) == 2  # one audit event per grant, whichever replica did it


async def test_idp_down_during_refresh_window(cluster, upstream) -> None:
    """IdP stopped: requests pass while the token is valid, then 503 + Retry-After, then the
    same session recovers when the IdP is back."""
    op, gws = cluster["op"], cluster["gateways"]
    _b, cookie, first = await _login(cluster)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    op.stop()
    try:
        await _sleep_until(first["record"]["rat"] + 0.05)
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            r = await c.get(f"{gws[1].url}/api/idp-down/valid", headers=headers)
            assert r.status_code == 200
            assert header_values(upstream.last_for("/api/idp-down/valid"), "authorization") == [
                f"Bearer {first['tokens']['at']}"]
            await _sleep_until(first["record"]["exp"] + 0.3)
            r = await c.get(f"{gws[2].url}/api/idp-down/expired", headers=headers)
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["retry-after"]) > 0
            assert r.json()["type"].endswith("/idp-unavailable")
    finally:
        op.start()
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        r = await c.get(f"{gws[0].url}/api/idp-down/back", headers=headers)
        assert r.status_code == 200
        user = await c.get(f"{gws[2].url}/bff/user", headers=headers)
        assert user.status_code == 200  # the same session, never dropped
    assert read_session_tokens(cluster["redis"].url, cookie)["tokens"]["at"] != first["tokens"]["at"]


async def test_refresh_token_revoked_at_idp_ends_session(cluster) -> None:
    op, gws = cluster["op"], cluster["gateways"]
    _, cookie, first = await _login(cluster)
    op.revoke(first["tokens"]["rt"], CLIENT, CLIENT_SECRET, "refresh_token")
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    await _sleep_until(first["record"]["rat"] + 0.05)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        r = await c.get(f"{gws[1].url}/api/revoked", headers=headers)
        assert r.status_code == 401
        assert r.json()["type"].endswith("/session-ended")
        assert any(h.startswith("__Host-bffgate=;") for h in r.headers.get_list("set-cookie"))
        for gw in gws:
            assert (await c.get(f"{gw.url}/bff/user", headers=headers)).status_code == 401
    reasons = [e.get("reason") for gw in gws for e in gw.audit("session.refresh_failed")]
    assert "invalid_grant" in reasons


async def test_redis_restart_gives_503_then_recovers(cluster) -> None:
    """Redis goes away mid-traffic: 503 problem+json with Retry-After, then the same session
    works again once Redis is back, without restarting any gateway."""
    redis, gws = cluster["redis"], cluster["gateways"]
    _, cookie, _ = await _login(cluster)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    redis.stop()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            for gw in gws:
                r = await c.get(f"{gw.url}/api/redis-down", headers=headers)
                assert r.status_code == 503
                assert r.json()["type"].endswith("/store-unavailable")
                assert "retry-after" in r.headers
                ready = await c.get(f"{gw.admin_url}/readyz")
                assert ready.status_code == 503
    finally:
        redis.start()
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        deadline = time.monotonic() + 10
        for gw in gws:
            while True:
                r = await c.get(f"{gw.url}/api/redis-back", headers=headers)
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 200, r.text



async def test_replica_killed_mid_traffic_others_continue(cluster) -> None:
    """Log in through one replica, use the session through the others; SIGKILL one replica
    mid-traffic: every request sent to the two survivors still succeeds."""
    gws = cluster["gateways"]
    _, cookie, _ = await _login(cluster)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    statuses: dict[int, list[int]] = {0: [], 1: [], 2: []}
    async with aiohttp.ClientSession() as s:
        for i in range(120):
            if i == 40:
                gws[2].kill()
            target = i % 3
            try:
                async with s.get(f"{gws[target].url}/api/kill/{i}", headers=headers) as r:
                    await r.read()
                    statuses[target].append(r.status)
            except aiohttp.ClientConnectionError:
                statuses[target].append(0)
    assert set(statuses[0]) == {200} and set(statuses[1]) == {200}
    assert 0 in statuses[2]  # the killed replica really went away
    gws[2].start()  # restore for the other tests


async def test_sigterm_drains_in_flight_requests(cluster) -> None:
    """SIGTERM: in-flight requests finish (200), then the process exits cleanly."""
    gws = cluster["gateways"]
    _, cookie, _ = await _login(cluster)
    headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
    async with aiohttp.ClientSession() as s:
        async def slow() -> int:
            async with s.get(f"{gws[1].url}/api/slow", params={"s": "2"}, headers=headers) as r:
                await r.read()
                return r.status

        inflight = asyncio.create_task(slow())
        await asyncio.sleep(0.5)
        proc = gws[1].proc
        assert proc is not None
        proc.send_signal(15)
        assert await inflight == 200
        rc = await asyncio.to_thread(proc.wait, 15)
        assert rc == 0
    assert "gateway.stopped" in gws[1].log()
    gws[1].proc = None
    gws[1].start()
