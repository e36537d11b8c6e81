"""E2E: token = "client" and "user_or_client" routes against the real oidc-provider (client
credentials + resource indicators, tests/idp/server.mjs) over THREE `bffgate serve`
processes sharing one redis-server. What the upstream receives is checked by introspection
at the IdP; grants are counted at the IdP (/test/stats token_requests), never in the
gateway. Every client token seen is registered with the suite's secret scan."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from bffgate.crypto.sealing import open_sealed
from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login, read_session_tokens
from support.gateway import ADMIN_TOKEN, GatewayProcess, child_env, gateway_config, write_toml
from support.idp import OidcProviderProcess, free_port
from support.introspect import assert_client_token, assert_user_token, introspect
from support.redis import RedisServer
from support.secrets_scan import remember, scan
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
CLIENT = "bff-client-creds"
ORDERS = "https://orders.test"
BURST = "https://burst.test"
RESOURCES = {ORDERS: {"scope": "orders:read orders:write", "ttl": 120},
             BURST: {"scope": "burst:read", "ttl": 300}}
# Static scopes a client may ask for without a resource; the client is registered with
# reports:read only, so admin:all is refused (invalid_scope).
STATIC_SCOPES = ["reports:read", "admin:all"]


class ClientCredentialsIdp(OidcProviderProcess):
    """The test OP with IDP_CONFIG.client_credentials (enabled unless ``enabled=False``)."""

    def __init__(self, *args: Any, enabled: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enabled = enabled

    def _config(self) -> str:
        doc = json.loads(super()._config())
        doc["client_credentials"] = {"enabled": self.enabled, "scopes": STATIC_SCOPES,
                                     "resources": RESOURCES}
        return json.dumps(doc)


def routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"prefix": "/api", "upstream": upstream, "token": "user", "timeout": 5},
        {"prefix": "/orders", "upstream": upstream, "token": "client", "scope": ["orders:read"],
         "resource": ORDERS, "timeout": 5},
        {"prefix": "/aud", "upstream": upstream, "token": "client", "scope": ["orders:write"],
         "audience": ORDERS, "timeout": 5},
        {"prefix": "/reports", "upstream": upstream, "token": "client",
         "scope": ["reports:read"], "timeout": 5},
        {"prefix": "/mixed", "upstream": upstream, "token": "user_or_client",
         "scope": ["reports:read"], "timeout": 5},
        {"prefix": "/burst", "upstream": upstream, "token": "client", "resource": BURST,
         "timeout": 10},
        {"prefix": "/forbidden", "upstream": upstream, "token": "client",
         "scope": ["admin:all"], "timeout": 5},
        {"prefix": "/nowhere", "upstream": upstream, "token": "client",
         "resource": "https://unknown.test", "timeout": 5},
    ]


def _client(ports: list[tuple[int, int]], *, client_credentials: bool = True) -> dict[str, Any]:
    grants = ["authorization_code", "refresh_token"]
    return {
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": [*grants, "client_credentials"] if client_credentials else grants,
        "response_types": ["code"],
        "scope": "openid offline_access profile email reports:read",
    }


@pytest.fixture(scope="module")
def cluster(upstream: EchoUpstream) -> Iterator[dict[str, Any]]:
    ports = [(free_port(), free_port()) for _ in range(3)]
    op = ClientCredentialsIdp([_client(ports)]).start()
    redis_server = RedisServer().start()
    gateways: list[GatewayProcess] = []
    try:
        for p, a in ports:
            gateways.append(GatewayProcess(gateway_config(
                port=p, admin_port=a, issuer=op.issuer, client_id=CLIENT,
                client_secret=CLIENT_SECRET, redis_url=redis_server.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY, oidc={"http_timeout": 5},
                redis={"max_connections": 64}, routes=routes(upstream.url))).start())
        yield {"op": op, "redis": redis_server, "gateways": gateways}
    finally:
        for gw in gateways:
            gw.terminate()
        op.close()
        redis_server.close()


def _bearer(record: dict[str, Any]) -> str:
    (value,) = header_values(record, "authorization")
    assert value.startswith("Bearer ")
    token = value.removeprefix("Bearer ")
    remember("access_token (client)", token)  # the suite's secret scan looks for it
    return token


def _opened(redis_url: str) -> set[str]:
    """Every client token in the shared cache, opened as only the gateway could (the key
    derived from the cookie secret key), and registered with the secret scan."""
    secret = hmac.new(COOKIE_KEY.encode(), b"bffgate client-token cache v1",
                      hashlib.sha256).digest()
    r = redis.Redis.from_url(redis_url)
    try:
        found = set()
        for key in r.scan_iter("bffgate:ct:*"):
            cache_key = key.decode().removeprefix("bffgate:ct:{").removesuffix("}")
            doc = json.loads(open_sealed(secret, r.get(key).decode(), cache_key.encode()))
            remember("access_token (client)", doc["at"])
            found.add(doc["at"])
        return found
    finally:
        r.close()


def _grants(op: OidcProviderProcess) -> list[dict[str, Any]]:
    return [r for r in op.stats()["token_requests"] if r["grant_type"] == "client_credentials"]


def _introspect(op: OidcProviderProcess, token: str) -> dict[str, Any]:
    return introspect(op, token, CLIENT, CLIENT_SECRET)


async def test_a_client_route_sends_a_client_token_for_its_scope_and_resource(
        cluster, upstream) -> None:
    """No session needed: /orders (resource), /aud (audience) and /reports (scope only) each
    get a client token (active, no sub, the route's scope and audience); a call on another
    replica reuses the token from the shared cache (no second grant); the browser never
    sees it; the store holds it sealed; token.client_issued names the route, not the token."""
    op, gws = cluster["op"], cluster["gateways"]
    op.reset_stats()
    b = Browser(gws[0].url)
    try:
        for path in ("/orders/items", "/aud/items", "/reports/daily"):
            r = await b.api("GET", path)
            assert r.status_code == 200, r.text
        orders_at = _bearer(upstream.last_for("/orders/items"))
        aud_at = _bearer(upstream.last_for("/aud/items"))
        reports_at = _bearer(upstream.last_for("/reports/daily"))
        r = await Browser(gws[2].url).api("GET", "/orders/again")
        assert r.status_code == 200 and orders_at not in r.text
    finally:
        await b.aclose()
    assert _bearer(upstream.last_for("/orders/again")) == orders_at  # cached, any replica
    assert_client_token(_introspect(op, orders_at), client_id=CLIENT, scope="orders:read",
                        aud=ORDERS)
    assert_client_token(_introspect(op, aud_at), client_id=CLIENT, scope="orders:write",
                        aud=ORDERS)
    assert_client_token(_introspect(op, reports_at), client_id=CLIENT, scope="reports:read")
    assert [g["status"] for g in _grants(op)] == [200, 200, 200]
    issued = [e for gw in gws for e in gw.audit("token.client_issued")]
    assert sorted(e["route"] for e in issued) == ["/aud", "/orders", "/reports"]
    assert {e["route"]: e["expires_in"] for e in issued}["/orders"] in range(110, 121)
    r = redis.Redis.from_url(cluster["redis"].url)
    try:
        blobs = [r.get(k) for k in r.scan_iter("bffgate:ct:*")]
    finally:
        r.close()
    assert len(blobs) == 3
    assert not any(t.encode() in blob for blob in blobs for t in (orders_at, aud_at, reports_at))
    assert _opened(cluster["redis"].url) == {orders_at, aud_at, reports_at}
    assert not scan([gw.log_path for gw in gws])


async def test_a_client_route_still_requires_x_csrf(cluster) -> None:
    """A browser call spends the gateway's own credential: a cross-site page must not."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as c:
        r = await c.get(f"{cluster['gateways'][0].url}/orders/no-csrf")
    assert r.status_code == 401 and r.json()["type"].endswith("/csrf-rejected")


async def test_user_or_client_is_the_users_token_when_logged_in(cluster, upstream) -> None:
    op, gws = cluster["op"], cluster["gateways"]
    b = Browser(gws[1].url)
    try:
        r = await b.api("GET", "/mixed/anonymous")
        assert r.status_code == 200, r.text
        anonymous = _bearer(upstream.last_for("/mixed/anonymous"))
        async with httpx.AsyncClient(trust_env=False) as idp_client:
            assert (await login(b, idp_client, cluster["redis"].url)).status_code == 302
        r = await b.api("GET", "/mixed/logged-in")
        assert r.status_code == 200, r.text
        logged_in = _bearer(upstream.last_for("/mixed/logged-in"))
        cookie = b.cookie("__Host-bffgate")
        assert cookie
    finally:
        await b.aclose()
    assert_client_token(_introspect(op, anonymous), client_id=CLIENT, scope="reports:read")
    assert logged_in == read_session_tokens(cluster["redis"].url, cookie)["tokens"]["at"]
    assert_user_token(_introspect(op, logged_in), sub="alice", client_id=CLIENT)


async def test_a_burst_over_three_replicas_makes_one_client_grant(cluster, upstream) -> None:
    """300 concurrent calls on /burst, 100 per replica, nothing cached yet: all 200, one
    token for all of them, exactly one client_credentials grant at the IdP."""
    op, gws = cluster["op"], cluster["gateways"]
    op.reset_stats()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one(i: int) -> int:
            async with s.get(f"{gws[i % 3].url}/burst/{i}", headers={"X-CSRF": "1"}) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*(one(i) for i in range(300)))
    assert statuses == [200] * 300
    seen = {_bearer(rec) for rec in upstream.seen if rec["path"].startswith("/burst/")}
    assert len(seen) == 1
    grants = _grants(op)
    assert [g["status"] for g in grants] == [200], grants
    assert_client_token(_introspect(op, seen.pop()), client_id=CLIENT, scope="", aud=BURST)
    counts = {outcome: sum([await _client_token_count(gw, "/burst", outcome) for gw in gws])
              for outcome in ("issued", "cached", "failed")}
    assert counts == {"issued": 1, "cached": 299, "failed": 0}
    print(f"client burst: 300 calls over 3 replicas -> {len(grants)} client_credentials grant")


async def _client_token_count(gw: GatewayProcess, route: str, outcome: str) -> float:
    """bffgate_client_token_total{route, outcome} at one replica's /metrics."""
    async with httpx.AsyncClient(trust_env=False) as c:
        m = await c.get(gw.admin_url + "/metrics",
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert m.status_code == 200
    for family in text_string_to_metric_families(m.text):
        for sample in family.samples:
            if sample.name == "bffgate_client_token_total" and sample.labels == {
                    "route": route, "outcome": outcome}:
                return float(sample.value)
    return 0.0


@pytest.mark.parametrize(("path", "error"), [("/forbidden/x", "invalid_scope"),
                                              ("/nowhere/x", "invalid_target")])
async def test_a_refused_grant_is_a_503_token_unavailable(cluster, path, error) -> None:
    """The IdP refusing the gateway's own grant is a misconfiguration, not the caller's
    fault: 503 token-unavailable with Retry-After, the IdP's error named."""
    op, gws = cluster["op"], cluster["gateways"]
    op.reset_stats()
    b = Browser(gws[0].url)
    try:
        r = await b.api("GET", path)
    finally:
        await b.aclose()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/token-unavailable") and error in r.json()["detail"]
    assert r.headers["retry-after"] == "30"
    assert [g["status"] for g in _grants(op)] == [400]
    prefix = path.rsplit("/", 1)[0]
    failed = [e for e in gws[0].audit("request.proxied") if e.get("route") == prefix]
    assert [(e["status"], e["reason"]) for e in failed] == [
        (503, f"client_token_refused:{error}")]


async def test_the_idp_away_is_a_503_with_retry_after(upstream) -> None:
    """A gateway whose IdP is not there: a client route answers 503 idp-unavailable."""
    port, admin = free_port(), free_port()
    with RedisServer() as redis_server:
        gw = GatewayProcess(gateway_config(
            port=port, admin_port=admin, issuer=f"http://127.0.0.1:{free_port()}",
            client_id=CLIENT, client_secret=CLIENT_SECRET, redis_url=redis_server.url,
            upstream=upstream.url, cookie_key=COOKIE_KEY, oidc={"http_timeout": 2},
            routes=routes(upstream.url)[:2])).start()
        try:
            b = Browser(gw.url)
            try:
                r = await b.api("GET", "/orders/x")
            finally:
                await b.aclose()
        finally:
            gw.terminate()
    assert r.status_code == 503 and r.json()["type"].endswith("/idp-unavailable")
    assert r.headers["retry-after"] == "5"


def test_startup_refuses_a_client_route_the_idp_does_not_advertise(upstream) -> None:
    """The static rules can't see the IdP: `bffgate serve` checks discovery's
    grant_types_supported at startup and exits 1 naming the route's key."""
    port, admin = free_port(), free_port()
    with ClientCredentialsIdp([_client([(port, admin)], client_credentials=False)],
                              enabled=False) as op:
        assert "client_credentials" not in op.metadata()["grant_types_supported"]
        config = gateway_config(
            port=port, admin_port=admin, issuer=op.issuer, client_id=CLIENT,
            client_secret=CLIENT_SECRET, redis_url="redis://127.0.0.1:1/0",
            upstream=upstream.url, cookie_key=COOKIE_KEY, routes=routes(upstream.url)[:2])
        path = Path(tempfile.mkdtemp(prefix="bffgate-cc-")) / "bffgate.toml"
        write_toml(path, config)
        done = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--config", str(path)],
                              env=child_env(), capture_output=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    stderr = done.stderr.decode()
    assert "routes[1].token: 'client' needs the client_credentials grant" in stderr, stderr
    assert "Traceback" not in stderr
