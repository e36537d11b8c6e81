"""E2E: the login → proxied call → refresh → logout flow on a real 3-master Redis Cluster
and on a real master + replica + 3 Sentinels, with the master killed mid-run."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisClusterSet, RedisSentinelSet
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
CLIENT = "bff-topologies"
AT_TTL = 4


@pytest.fixture(scope="module")
def ports() -> list[tuple[int, int]]:
    return [(free_port(), free_port()) for _ in range(2)]


@pytest.fixture(scope="module")
def op(ports) -> Iterator[OidcProviderProcess]:
    with OidcProviderProcess([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
    }], access_token_ttl=AT_TTL) as provider:
        yield provider


def _gateway(port: int, admin: int, op: OidcProviderProcess, upstream: EchoUpstream,
             redis: dict) -> GatewayProcess:
    url = redis.pop("url")
    return GatewayProcess(gateway_config(
        port=port, admin_port=admin, issuer=op.issuer, client_id=CLIENT,
        client_secret=CLIENT_SECRET, redis_url=url, upstream=upstream.url,
        cookie_key=COOKIE_KEY, redis={"timeout": 1, **redis})).start()


async def _flow(gw: GatewayProcess, op: OidcProviderProcess, upstream: EchoUpstream) -> Browser:
    """Login, proxied call, transparent refresh (one grant at the IdP), and back the browser."""
    b = Browser(gw.url)
    async with httpx.AsyncClient(trust_env=False) as idp_client:
        assert (await login(b, idp_client)).status_code == 302
    r = await b.api("GET", "/api/topology/first")
    assert r.status_code == 200
    first = header_values(upstream.last_for("/api/topology/first"), "authorization")[0]
    op.reset_stats()
    await asyncio.sleep(AT_TTL - 1)  # past the refresh point (half-life / refresh_ahead)
    r = await b.api("GET", "/api/topology/refreshed")
    assert r.status_code == 200
    second = header_values(upstream.last_for("/api/topology/refreshed"), "authorization")[0]
    assert second != first
    assert op.stats()["refresh_grants"] == 1
    return b


async def _logout(b: Browser) -> None:
    user = await b.api("GET", "/bff/user")
    assert user.status_code == 200
    assert (await b.get(user.json()["logout_url"])).status_code == 302
    assert (await b.api("GET", "/bff/user")).status_code == 401


async def test_flow_on_redis_cluster(ports, op, upstream) -> None:
    cluster = RedisClusterSet().start()
    gw = None
    try:
        gw = _gateway(*ports[0], op, upstream, {"url": cluster.url, "cluster": True})
        b = await _flow(gw, op, upstream)
        # the session and its lock share a hash tag, hence a slot; keys spread over nodes
        cli = ["redis-cli", "-p", str(cluster.nodes[0].port)]
        keys = []
        for node in cluster.nodes:
            keys += subprocess.run(["redis-cli", "-p", str(node.port), "--scan", "--pattern",
                                    "bffgate:s:*"], capture_output=True, text=True,
                                   check=True).stdout.split()
        assert keys, "session stored in the cluster"
        tag = keys[0].split("{", 1)[1].rstrip("}")
        slots = {subprocess.run([*cli, "cluster", "keyslot", k], capture_output=True,
                                text=True, check=True).stdout.strip()
                 for k in (f"bffgate:s:{{{tag}}}", f"bffgate:lock:{{{tag}}}")}
        assert len(slots) == 1
        await _logout(b)
        await b.aclose()
    finally:
        if gw:
            gw.terminate()
        cluster.close()


async def test_flow_on_sentinel_with_master_failover(ports, op, upstream) -> None:
    """Kill the master mid-traffic: requests fail only during the failover, then the same
    session keeps working on the promoted replica (WAIT made the session durable)."""
    sset = RedisSentinelSet().start()
    gw = None
    try:
        gw = _gateway(*ports[1], op, upstream, {
            "url": "redis://127.0.0.1", "wait_replicas": 1,
            "sentinel": {"master": RedisSentinelSet.MASTER_NAME, "hosts": sset.hosts}})
        b = await _flow(gw, op, upstream)
        cookie = b.cookie("__Host-bffgate")
        headers = {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}
        old_master = sset.master.port
        results: list[tuple[float, int]] = []
        async with httpx.AsyncClient(trust_env=False, timeout=5) as c:
            t0 = time.monotonic()
            killed_at = None
            while time.monotonic() - t0 < 25:
                if killed_at is None and time.monotonic() - t0 > 1:
                    sset.master.kill()
                    killed_at = time.monotonic()
                r = await c.get(f"{gw.url}/api/failover", headers=headers)
                results.append((time.monotonic(), r.status_code))
                if r.status_code != 200:
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"] == "application/problem+json"
                elif killed_at and any(s != 200 for _, s in results) and \
                        sset.master_port() not in (None, old_master):
                    break
                await asyncio.sleep(0.05)
        assert killed_at is not None
        failed = [t for t, s in results if s != 200]
        assert results[-1][1] == 200, "recovered after failover"
        recovered_after = (results[-1][0] - killed_at)
        print(f"sentinel failover: {len(failed)} of {len(results)} requests failed (503), "
              f"recovered {recovered_after:.1f}s after the master was killed")
        assert sset.master_port() == sset.replica.port
        await _logout(b)
        await b.aclose()
    finally:
        if gw:
            gw.terminate()
        sset.close()
