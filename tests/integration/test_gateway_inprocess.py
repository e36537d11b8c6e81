"""Integration tests: the whole gateway in-process (httpx ASGITransport) with a frozen clock,
bffgate's development IdP in-process as the OpenID provider, a recording fake upstream, and
the memory store or a real redis-server. Fast and deterministic: time moves only when a
test says so, so refresh, expiry and IdP outages are exercised exactly."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bffgate.app import Gateway
from bffgate.clock import FrozenClock
from bffgate.config import load_settings
from bffgate.demo.devidp import create_dev_idp
from bffgate.errors import UpstreamUnavailable
from support.redis import RedisServer

pytestmark = pytest.mark.integration

ISSUER = "https://idp.test"
PUBLIC = "https://app.test"
CLIENT, SECRET = "bff", secrets.token_urlsafe(24)
AT_TTL = 300


@dataclass
class FakeResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    chunks: list[bytes]

    async def body(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c

    async def close(self) -> None:
        return None


@dataclass
class FakeUpstream:
    """Records what the gateway forwards; answers with a small JSON body."""

    seen: list[dict[str, Any]] = field(default_factory=list)
    fail: Exception | None = None

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: float) -> FakeResponse:
        data = b""
        if body is not None:
            async for chunk in body:
                data += chunk
        self.seen.append({"method": method, "url": url, "body": data,
                          "headers": {k.decode(): v.decode() for k, v in headers}})
        if self.fail:
            raise self.fail
        return FakeResponse(200, [(b"content-type", b"application/json"),
                                  (b"set-cookie", b"up=1")], [b'{"ok":', b" true}"])

    async def close(self) -> None:
        return None


class IdpSwitch(httpx.AsyncBaseTransport):
    """The IdP's in-process transport, which a test can take down and bring back."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("IdP down", request=request)
        return await self.inner.handle_async_request(request)


@dataclass
class Harness:
    gw: Gateway
    clock: FrozenClock
    idp_app: Any
    idp: IdpSwitch
    upstream: FakeUpstream
    browser: httpx.AsyncClient

    async def login(self, user: str = "alice", return_url: str = "/app") -> httpx.Response:
        r = await self.browser.get("/bff/login", params={"returnUrl": return_url})
        assert r.status_code == 302, r.text
        authorize = r.headers["location"]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.idp_app),
                                     base_url=ISSUER) as idp_browser:
            form = await idp_browser.get(authorize)
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                     form.text))
            done = await idp_browser.post("/authorize", data={**fields, "username": user})
        assert done.status_code in (302, 303), done.text
        return await self.browser.get(done.headers["location"])

    async def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"X-CSRF": "1", **kw.pop("headers", {})}
        return await self.browser.request(method, path, headers=headers, **kw)


@pytest.fixture(params=["memory", "redis"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    clock = FrozenClock(1_800_000_000.0)
    idp_app = create_dev_idp(ISSUER, CLIENT, SECRET, redirect_uris=[PUBLIC + "/bff/callback"],
                             post_logout_redirect_uris=[PUBLIC + "/"], access_token_ttl=AT_TTL,
                             now=clock.now)
    redis: RedisServer | None = None
    store_cfg: dict[str, Any] = {"store": "memory", "refresh_ahead": 60}
    redis_cfg: dict[str, Any] = {}
    if request.param == "redis":
        redis = RedisServer().start()
        store_cfg["store"] = "redis"
        redis_cfg = {"url": redis.url}
    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": PUBLIC},
        "oidc": {"issuer": ISSUER, "client_id": CLIENT, "client_secret": SECRET,
                 "id_token_algs": ["ES256"]},
        "session": store_cfg, "redis": redis_cfg,
        "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "routes": [{"prefix": "/api", "upstream": "http://upstream.test", "token": "user"}],
    })
    idp = IdpSwitch(idp_app)
    upstream = FakeUpstream()
    gw = Gateway(settings, clock=clock, idp_transport=idp, upstream_factory=lambda: upstream)
    await gw.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.public),
                                 base_url=PUBLIC) as browser:
        yield Harness(gw, clock, idp_app, idp, upstream, browser)
    await gw.stop()
    if redis:
        redis.close()


def bearer(h: Harness) -> str:
    return h.upstream.seen[-1]["headers"]["authorization"]


async def test_login_user_and_proxy(h: Harness) -> None:
    r = await h.login(return_url="/app?x=1")
    assert r.status_code == 302 and r.headers["location"] == "/app?x=1"
    user = await h.api("GET", "/bff/user")
    assert user.status_code == 200 and user.json()["sub"] == "alice"
    r = await h.api("POST", "/api/items?q=1", content=b"payload",
                    headers={"origin": PUBLIC})
    assert r.status_code == 200 and r.json() == {"ok": True}
    seen = h.upstream.seen[-1]
    assert seen["url"] == "http://upstream.test/api/items?q=1"
    assert seen["body"] == b"payload"
    assert seen["headers"]["authorization"].startswith("Bearer ey")
    assert "cookie" not in seen["headers"] and "x-csrf" not in seen["headers"]
    assert "set-cookie" not in r.headers


async def test_refresh_before_expiry_then_rotation(h: Harness) -> None:
    await h.login()
    await h.api("GET", "/api/a")
    first = bearer(h)
    h.clock.advance(AT_TTL - 30)  # inside refresh_ahead (60 s)
    await h.api("GET", "/api/b")
    second = bearer(h)
    assert second != first
    h.clock.advance(10)
    await h.api("GET", "/api/c")
    assert bearer(h) == second  # fresh again: no new grant
    refreshed = h.gw.metrics.refresh.labels("refreshed")._value.get()
    assert refreshed == 1


async def test_idp_down_keeps_session_then_503_then_recovers(h: Harness) -> None:
    await h.login()
    h.idp.down = True
    h.clock.advance(AT_TTL - 30)
    r = await h.api("GET", "/api/while-valid")
    assert r.status_code == 200  # current token still valid
    h.clock.advance(60)  # now expired
    r = await h.api("GET", "/api/expired")
    assert r.status_code == 503 and r.headers["retry-after"]
    assert r.json()["type"].endswith("/idp-unavailable")
    h.idp.down = False
    r = await h.api("GET", "/api/back")
    assert r.status_code == 200
    assert (await h.api("GET", "/bff/user")).status_code == 200


async def test_revoked_refresh_token_ends_the_session(h: Harness) -> None:
    await h.login()
    cookie = h.browser.cookies.get("__Host-bffgate")
    session = await h.gw.sessions.load(h.gw.sessions.decode_cookie(cookie))  # type: ignore[arg-type]
    assert session is not None and session.data.tokens.refresh_token
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.idp_app),
                                 base_url=ISSUER) as idp:
        r = await idp.post("/revoke", auth=(CLIENT, SECRET), data={
            "token": session.data.tokens.refresh_token, "token_type_hint": "refresh_token"})
        assert r.status_code == 200
    h.clock.advance(AT_TTL - 30)
    r = await h.api("GET", "/api/after-revoke")
    assert r.status_code == 401 and r.json()["type"].endswith("/session-ended")
    assert "__Host-bffgate=;" in r.headers["set-cookie"]
    assert (await h.api("GET", "/bff/user")).status_code == 401


async def test_absolute_timeout_ends_the_session(h: Harness) -> None:
    """Checked against the gateway's clock on every load (Redis TTLs run on real time;
    the idle TTL itself is covered with real time by the store contract)."""
    await h.login()
    for _ in range(h.gw.settings.session.absolute_timeout // 1500):
        h.clock.advance(1500)  # keep it active: never idle
        await h.api("GET", "/bff/user")
    h.clock.advance(1500)
    assert (await h.api("GET", "/bff/user")).status_code == 401


async def test_upstream_failure_is_502_problem(h: Harness) -> None:
    await h.login()
    h.upstream.fail = UpstreamUnavailable(reason="upstream_connect_error")
    r = await h.api("GET", "/api/x")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"


async def test_logout_revokes_and_redirects_to_end_session(h: Harness) -> None:
    await h.login()
    cookie = h.browser.cookies.get("__Host-bffgate")
    session = await h.gw.sessions.load(h.gw.sessions.decode_cookie(cookie))  # type: ignore[arg-type]
    assert session is not None
    rt, id_token = session.data.tokens.refresh_token, session.data.tokens.id_token
    assert rt and id_token

    async def active_at_idp() -> bool:  # RFC 7662, asked of the IdP itself
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.idp_app),
                                     base_url=ISSUER) as idp:
            r = await idp.post("/introspect", auth=(CLIENT, SECRET),
                               data={"token": rt, "token_type_hint": "refresh_token"})
        assert r.status_code == 200
        return bool(r.json()["active"])

    assert await active_at_idp()
    logout_url = (await h.api("GET", "/bff/user")).json()["logout_url"]
    r = await h.browser.get(logout_url)
    assert r.status_code == 302
    target = urlsplit(r.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == ISSUER + "/end_session"
    q = parse_qs(target.query)
    assert q["post_logout_redirect_uri"] == [PUBLIC + "/"]
    assert q["id_token_hint"] == [id_token]  # the session's own ID token, once
    assert q["client_id"] == [CLIENT]
    assert id_token not in r.text and all(id_token not in v for k, v in r.headers.items()
                                          if k != "location")
    assert not await active_at_idp()  # the IdP revoked the grant the session held
    assert (await h.api("GET", "/bff/user")).status_code == 401


async def test_metrics_and_readiness(h: Harness) -> None:
    await h.login()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gw.admin),
                                 base_url="http://admin") as admin:
        assert (await admin.get("/readyz")).status_code == 200
        text = (await admin.get("/metrics")).text
    assert 'bffgate_login_results_total{outcome="succeeded",reason="ok"} 1.0' in text


async def test_authorization_request_is_built_from_config_only(h: Harness) -> None:
    """Host / X-Forwarded-* and user-supplied OAuth parameters never shape the request."""
    r = await h.browser.get("/bff/login", params={
        "returnUrl": "/", "scope": "openid admin", "prompt": "none", "client_id": "other",
        "redirect_uri": "https://evil.example/cb", "response_type": "token"},
        headers={"host": "evil.example", "x-forwarded-host": "evil.example",
                 "x-forwarded-proto": "http"})
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["redirect_uri"] == [PUBLIC + "/bff/callback"]
    assert q["client_id"] == [CLIENT] and q["response_type"] == ["code"]
    assert q["scope"] == ["openid profile email offline_access"]
    assert "prompt" not in q
    assert q["code_challenge_method"] == ["S256"] and len(q["state"][0]) >= 43


async def test_wrong_methods_and_unknown_bff_paths_are_problems(h: Harness) -> None:
    r = await h.browser.post("/bff/callback", data={"code": "c", "state": "s"})
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    r = await h.browser.get("/bff/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


async def test_parallel_logins_in_one_browser_share_one_binding_cookie(h: Harness) -> None:
    """Two tabs start logins: one binding value, and both logins can finish."""
    first = await h.browser.get("/bff/login")
    second = await h.browser.get("/bff/login")
    assert "set-cookie" in first.headers and "set-cookie" in second.headers
    v1 = first.headers["set-cookie"].split(";")[0]
    v2 = second.headers["set-cookie"].split(";")[0]
    assert v1 == v2
    for resp in (first, second):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.idp_app),
                                     base_url=ISSUER) as idp_browser:
            form = await idp_browser.get(resp.headers["location"])
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                     form.text))
            done = await idp_browser.post("/authorize", data={**fields, "username": "tab"})
        cb = await h.browser.get(done.headers["location"])
        assert cb.status_code == 302, cb.text
