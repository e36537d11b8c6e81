"""E2E: token = "exchange" routes (RFC 8693) against the real oidc-provider and its
token-exchange grant (tests/idp/server.mjs), over THREE gateway processes sharing one Redis.
What the upstream receives is checked by introspection at the IdP; grants are counted at
the IdP (/test/stats token_exchanges), never in the gateway."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.crypto.sealing import open_sealed
from bffgate.tokens.exchange import FAILURE_HOLD_SECONDS
from support.browser import Browser
from support.e2e import (
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_KEY,
    client_meta,
    login,
    read_session_tokens,
)
from support.gateway import GatewayProcess, child_env, gateway_config, new_ports, write_toml
from support.idp import OidcProviderProcess, free_port
from support.introspect import assert_exchanged_token, introspect
from support.redis import RedisServer
from support.secrets_scan import SECRETS, remember, scan
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
CLIENT = "bff-exchange"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT_TTL = 10  # the user's access token: refreshed ~8 s after login (refresh_ahead 2)
ORDERS = "https://orders.test"
BILLING = "https://billing.test/"
AUDIENCES = {ORDERS: ["orders:read", "orders:write"], BILLING: []}


class ExchangeIdp(OidcProviderProcess):
    """The test OP with its token-exchange audiences (IDP_CONFIG.token_exchange), or
    without the grant at all (``enabled=False``)."""

    def __init__(self, *args: Any, enabled: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exchange: dict[str, Any] | bool = {"audiences": AUDIENCES} if enabled else False

    def _config(self) -> str:
        doc = json.loads(super()._config())
        doc["token_exchange"] = self.exchange
        return json.dumps(doc)


def routes(upstream: str) -> list[dict[str, Any]]:
    return [
        {"prefix": "/api", "upstream": upstream, "token": "user", "timeout": 5},
        {"prefix": "/orders", "upstream": upstream, "token": "exchange", "audience": ORDERS,
         "scope": ["orders:read"], "timeout": 5},
        {"prefix": "/billing", "upstream": upstream, "token": "exchange", "resource": BILLING,
         "timeout": 5},
        {"prefix": "/nowhere", "upstream": upstream, "token": "exchange",
         "audience": "https://unknown.test", "timeout": 5},
    ]


@pytest.fixture(scope="module")
def cluster(upstream: EchoUpstream) -> Iterator[dict[str, Any]]:
    ports = [(free_port(), free_port()) for _ in range(3)]
    state = Path(tempfile.mkdtemp(prefix="bffgate-op-")) / "state.json"
    op = ExchangeIdp([{
        "client_id": CLIENT, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        "response_types": ["code"],
    }], access_token_ttl=AT_TTL, rotate_refresh_tokens=True, state_file=str(state)).start()
    redis = RedisServer().start()
    gateways: list[GatewayProcess] = []
    try:
        for p, a in ports:
            gateways.append(GatewayProcess(gateway_config(
                port=p, admin_port=a, issuer=op.issuer, client_id=CLIENT,
                client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY, oidc={"http_timeout": 2},
                routes=routes(upstream.url))).start())
        yield {"op": op, "redis": redis, "gateways": gateways}
    finally:
        for gw in gateways:
            gw.terminate()
        op.close()
        redis.close()


async def _login(cluster: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    b = Browser(cluster["gateways"][0].url)
    try:
        async with httpx.AsyncClient(trust_env=False) as idp_client:
            r = await login(b, idp_client, cluster["redis"].url)
        assert r.status_code == 302
        cookie = b.cookie("__Host-bffgate")
        assert cookie
    finally:
        await b.aclose()
    return cookie, read_session_tokens(cluster["redis"].url, cookie)


async def _browser(cluster: dict[str, Any]) -> tuple[Browser, str, dict[str, Any]]:
    """A logged-in browser (its responses are recorded for the secret scan); every replica
    is on localhost, so its cookie goes to all of them."""
    b = Browser(cluster["gateways"][0].url)
    async with httpx.AsyncClient(trust_env=False) as idp_client:
        r = await login(b, idp_client, cluster["redis"].url)
    assert r.status_code == 302
    cookie = b.cookie("__Host-bffgate")
    assert cookie
    return b, cookie, read_session_tokens(cluster["redis"].url, cookie)


def _headers(cookie: str) -> dict[str, str]:
    return {"X-CSRF": "1", "cookie": f"__Host-bffgate={cookie}"}


def _bearer(record: dict[str, Any]) -> str:
    (value,) = header_values(record, "authorization")
    assert value.startswith("Bearer ")
    token = value.removeprefix("Bearer ")
    remember("access_token (exchanged)", token)  # the suite's secret scan looks for it
    return token


def _exchanged_in_record(redis_url: str, cookie: str) -> dict[str, list[Any]]:
    """The session record's exchanged-token blob, opened as only the gateway could."""
    handle = CookieCodec([COOKIE_KEY]).decode(cookie)
    doc = read_session_tokens(redis_url, cookie)["record"]
    if "xt" not in doc:
        return {}
    entries: dict[str, list[Any]] = json.loads(
        open_sealed(handle.secret, doc["xt"], handle.key.encode() + b"/xt"))
    for entry in entries.values():
        remember("access_token (exchanged)", entry[0])
    return entries


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issued(op: OidcProviderProcess) -> list[dict[str, Any]]:
    return [e for e in op.stats()["token_exchanges"] if e["error"] is None]


async def test_an_exchange_route_gets_a_token_for_its_audience(cluster, upstream) -> None:
    """/orders: an exchanged token (active, aud = the route's audience, the user's sub, the
    route's scope); /billing by resource; /api still the user's own token; a second call
    reuses the cached token (no second grant)."""
    op, gws = cluster["op"], cluster["gateways"]
    b, cookie, first = await _browser(cluster)
    user_at = first["tokens"]["at"]
    op.reset_stats()
    try:
        r = await b.api("GET", f"{gws[0].url}/orders/items")
        assert r.status_code == 200, r.text
        orders_at = _bearer(upstream.last_for("/orders/items"))
        r = await b.api("GET", f"{gws[1].url}/billing/invoices")
        assert r.status_code == 200, r.text
        billing_at = _bearer(upstream.last_for("/billing/invoices"))
        r = await b.api("GET", f"{gws[2].url}/api/me")
        assert _bearer(upstream.last_for("/api/me")) == user_at
        r = await b.api("GET", f"{gws[2].url}/orders/again")
        assert r.status_code == 200 and orders_at not in r.text
    finally:
        await b.aclose()
    assert _bearer(upstream.last_for("/orders/again")) == orders_at  # cached, any replica
    assert len({orders_at, billing_at, user_at}) == 3
    assert_exchanged_token(introspect(op, orders_at, CLIENT, CLIENT_SECRET), sub="alice",
                           client_id=CLIENT, aud=ORDERS, scope="orders:read")
    assert_exchanged_token(introspect(op, billing_at, CLIENT, CLIENT_SECRET), sub="alice",
                           client_id=CLIENT, aud=BILLING)
    issued = _issued(op)
    assert [e["targets"] for e in issued] == [[ORDERS], [BILLING]]
    assert {e["subject_sha256"] for e in issued} == {_sha256(user_at)}
    assert len(_exchanged_in_record(cluster["redis"].url, cookie)) == 2
    events = [e for gw in gws for e in gw.audit("token.exchanged")]
    assert sorted(e["route"] for e in events) == ["/billing", "/orders"]


async def test_an_unknown_audience_is_a_403_and_the_session_lives_on(cluster) -> None:
    op, gws = cluster["op"], cluster["gateways"]
    b, _, _ = await _browser(cluster)
    op.reset_stats()
    try:
        r = await b.api("GET", f"{gws[1].url}/nowhere/x")
        assert r.status_code == 403
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith("/exchange-refused")
        assert "invalid_target" in r.json()["detail"]
        assert "set-cookie" not in r.headers  # the session cookie stays
        for path in ("/orders/after-403", "/api/after-403", "/bff/user"):
            assert (await b.api("GET", f"{gws[1].url}{path}")).status_code == 200, path
    finally:
        await b.aclose()
    assert [e["error"] for e in op.stats()["token_exchanges"]] == ["invalid_target", None]
    failed = [e for gw in gws for e in gw.audit("token.exchange_failed")]
    assert [(e["route"], e["reason"]) for e in failed] == [
        ("/nowhere", "refused:invalid_target")]


async def test_a_user_token_the_idp_revoked_is_a_403_and_the_session_lives_on(
        cluster) -> None:
    """The subject token is no longer active at the IdP (revoked there): invalid_grant,
    a 403 exchange-refused for the route; the gateway ends no session for it."""
    op, gws = cluster["op"], cluster["gateways"]
    b, _, first = await _browser(cluster)
    op.revoke(first["tokens"]["at"], CLIENT, CLIENT_SECRET, "access_token")
    op.reset_stats()
    try:
        r = await b.api("GET", f"{gws[2].url}/orders/revoked")
        assert r.status_code == 403
        assert r.json()["type"].endswith("/exchange-refused")
        assert "invalid_grant" in r.json()["detail"]
        assert (await b.api("GET", f"{gws[0].url}/bff/user")).status_code == 200
    finally:
        await b.aclose()
    assert [e["error"] for e in op.stats()["token_exchanges"]] == ["invalid_grant"]
    reasons = [e["reason"] for gw in gws for e in gw.audit("token.exchange_failed")]
    assert "refused:invalid_grant" in reasons


async def test_a_burst_over_three_replicas_makes_one_exchange_grant(cluster, upstream) -> None:
    """300 concurrent calls on /orders, 100 per replica, one fresh session: all 200, one
    token for all of them, exactly one exchange grant at the IdP."""
    op, gws = cluster["op"], cluster["gateways"]
    cookie, _ = await _login(cluster)
    op.reset_stats()
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        async def one(i: int) -> int:
            async with s.get(f"{gws[i % 3].url}/orders/burst/{i}",
                             headers=_headers(cookie)) as r:
                await r.read()
                return r.status

        statuses = await asyncio.gather(*[one(i) for i in range(300)])
    elapsed = time.perf_counter() - started
    assert [st for st in statuses if st != 200] == []
    tokens = {_bearer(r) for r in upstream.seen if "/orders/burst/" in r["path"]}
    assert len(tokens) == 1
    grants = op.stats()["token_exchanges"]
    assert len(grants) == 1 and grants[0]["error"] is None, grants
    print(f"burst: 300 calls over 3 replicas in {elapsed:.2f}s, exchange grants={len(grants)}")


async def test_a_refresh_of_the_user_token_renews_the_exchanged_one(cluster, upstream) -> None:
    """Once the user's token is refreshed, the next call exchanges again, with the new
    user token as the subject; the cache then holds only the new token."""
    op, gws = cluster["op"], cluster["gateways"]
    cookie, first = await _login(cluster)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        assert (await c.get(f"{gws[0].url}/orders/before", headers=_headers(cookie))
                ).status_code == 200
        before = _bearer(upstream.last_for("/orders/before"))
        op.reset_stats()
        await asyncio.sleep(max(0.0, first["record"]["rat"] + 0.1 - time.time()))
        r = await c.get(f"{gws[1].url}/orders/after", headers=_headers(cookie))
        assert r.status_code == 200, r.text
    after = _bearer(upstream.last_for("/orders/after"))
    new_at = read_session_tokens(cluster["redis"].url, cookie)["tokens"]["at"]
    assert new_at != first["tokens"]["at"] and after != before
    stats = op.stats()
    assert stats["refresh_success"] == 1
    assert [e["subject_sha256"] for e in _issued(op)] == [_sha256(new_at)]
    assert_exchanged_token(introspect(op, after, CLIENT, CLIENT_SECRET), sub="alice",
                           client_id=CLIENT, aud=ORDERS, scope="orders:read")
    (entry,) = _exchanged_in_record(cluster["redis"].url, cookie).values()
    assert entry[0] == after


async def test_the_idp_away_is_a_503_then_the_route_recovers(cluster) -> None:
    """IdP stopped, no cached token: 503 problem+json with Retry-After on the exchange
    route, while the user-token route still works; once the IdP is back, the same session
    gets its exchanged token."""
    op, gws = cluster["op"], cluster["gateways"]
    cookie, _ = await _login(cluster)
    op.stop()
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
            r = await c.get(f"{gws[2].url}/orders/idp-down", headers=_headers(cookie))
            assert r.status_code == 503
            assert r.json()["type"].endswith("/idp-unavailable")
            assert int(r.headers["retry-after"]) > 0
            assert (await c.get(f"{gws[2].url}/api/idp-down", headers=_headers(cookie))
                    ).status_code == 200
    finally:
        op.start()
    await asyncio.sleep(FAILURE_HOLD_SECONDS)  # a failure is answered again that long
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        r = await c.get(f"{gws[2].url}/orders/idp-back", headers=_headers(cookie))
        assert r.status_code == 200, r.text
    reasons = [e["reason"] for gw in gws for e in gw.audit("token.exchange_failed")]
    assert any(reason.startswith("unavailable:") for reason in reasons)


def test_no_exchanged_token_in_the_logs_or_browser_responses(cluster) -> None:
    """Every exchanged token these tests saw (upstream headers, the session record) is
    absent from the gateways' logs and from every response a test browser got (the suite's
    session-end scan checks it again, with everything else)."""
    kinds = {kind for kind in SECRETS.values() if kind.startswith("access_token (exchanged)")}
    assert kinds, "no exchanged token was registered with the secret scan"
    leaks = [leak for leak in scan([gw.log_path for gw in cluster["gateways"]])
             if "exchanged" in leak]
    assert leaks == []


def test_startup_refuses_an_exchange_route_on_an_idp_without_the_grant(
        redis_server, upstream, tmp_path: Path) -> None:
    """An IdP that does not list the token-exchange grant in grant_types_supported:
    `bffgate serve` exits 1 at startup with a line naming the exchange route's key."""
    port, admin = new_ports()
    with ExchangeIdp([client_meta(port)], enabled=False) as op:
        assert TOKEN_EXCHANGE not in op.metadata()["grant_types_supported"]
        config = gateway_config(port=port, admin_port=admin, issuer=op.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=redis_server.url, upstream=upstream.url,
                                cookie_key=COOKIE_KEY, routes=routes(upstream.url))
        path = tmp_path / "bffgate.toml"
        write_toml(path, config)
        done = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--config", str(path)],
                              capture_output=True, text=True, timeout=30, env=child_env(),
                              stdin=subprocess.DEVNULL, check=False)
    err = done.stderr
    assert done.returncode == 1, err[-2000:]
    for i in (1, 2, 3):  # /orders, /billing, /nowhere
        assert f"routes[{i}].token: 'exchange' needs the token-exchange grant" in err, err[-2000:]
    assert "routes[0]" not in err, err[-2000:]
