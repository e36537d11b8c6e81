"""E2E: the full BFF flow through `bffgate serve` (separate process), a real oidc-provider,
a real redis-server and an echo upstream: login → callback → /bff/user → proxied GET and
POST → logout, with the IdP itself confirming the bearer token the upstream received."""

from __future__ import annotations

import hashlib
import os
from urllib.parse import parse_qs, urlsplit

import pytest

from support.e2e import CLIENT_ID, CLIENT_SECRET, login, read_session_tokens
from support.upstream import header_values

pytestmark = pytest.mark.e2e


async def test_login_user_proxy_logout(browser, idp_client, idp, gateway, upstream,
                                       redis_server) -> None:
    """The core path a real user takes, end to end."""
    resp = await login(browser, idp_client, redis_server.url, return_url="/app?tab=1")
    assert resp.status_code == 302
    assert resp.headers["location"] == "/app?tab=1"
    assert resp.headers["cache-control"] == "no-store"
    cookie = browser.cookie("__Host-bffgate")
    assert cookie and cookie.startswith("v1.")
    set_cookie = [c for c in resp.headers.get_list("set-cookie") if c.startswith("__Host-bffgate=")]
    assert "SameSite=Strict" in set_cookie[0] and "HttpOnly" in set_cookie[0]

    user = await browser.api("GET", "/bff/user")
    assert user.status_code == 200
    body = user.json()
    assert body["sub"] == "alice"
    assert body["claims"]["email"] == "alice@example.test"
    assert body["logout_url"].startswith("/bff/logout?sid=")
    assert "access_token" not in user.text and "refresh_token" not in user.text

    stored = read_session_tokens(redis_server.url, cookie)
    at = stored["tokens"]["at"]
    # Redis holds no token in clear: the record's plain part has none of them.
    assert at not in str(stored["record"])

    got = await browser.api("GET", "/api/orders/42", params={"x": "1"})
    assert got.status_code == 200, got.text
    assert header_values(got.json(), "authorization") == ["<present>"]
    seen = upstream.last_for("/api/orders/42")
    assert seen["path"] == "/api/orders/42" and seen["query"] == "x=1"
    assert header_values(seen, "authorization") == [f"Bearer {at}"]
    assert header_values(seen, "cookie") == []
    assert header_values(seen, "x-csrf") == []
    assert len(header_values(seen, "x-request-id")) == 1
    assert header_values(seen, "x-forwarded-host") == [f"localhost:{gateway.port}"]
    intro = idp.introspect(at, CLIENT_ID, CLIENT_SECRET)
    assert intro["active"] is True and intro["sub"] == "alice"
    assert "set-cookie" not in got.headers  # upstream cookies never reach the browser
    assert "x-hop" not in got.headers

    payload = os.urandom(256 * 1024)
    posted = await browser.api("POST", "/api/upload", content=payload,
                               headers={"content-type": "application/octet-stream",
                                        "origin": gateway.url})
    assert posted.status_code == 200
    assert posted.json()["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert posted.json()["method"] == "POST"

    big = await browser.api("GET", "/api/big", params={"n": str(3 * 1024 * 1024 + 7)})
    assert big.status_code == 200 and len(big.content) == 3 * 1024 * 1024 + 7

    out = await browser.get(body["logout_url"])
    assert out.status_code == 302
    end = out.headers["location"]
    assert end.startswith(idp.issuer)
    q = parse_qs(urlsplit(end).query)
    assert q["post_logout_redirect_uri"] == [f"http://localhost:{gateway.port}/"]
    assert q["id_token_hint"] == [stored["tokens"]["it"]]  # this session's ID token, once
    assert q["client_id"] == [CLIENT_ID]
    assert browser.cookie("__Host-bffgate") is None  # cleared
    # the IdP itself was asked to revoke this session's refresh token, and did
    rt_hash = hashlib.sha256(stored["tokens"]["rt"].encode()).hexdigest()
    assert [(r["token_type_hint"], r["status"]) for r in idp.stats()["revocations"]
            if r["client_id"] == CLIENT_ID and r["token_sha256"] == rt_hash] == [
        ("refresh_token", 200)]

    # the old cookie is dead everywhere, and the grant was revoked at the IdP
    again = await browser.api("GET", "/bff/user", headers={"cookie": f"__Host-bffgate={cookie}"})
    assert again.status_code == 401
    assert idp.introspect(at, CLIENT_ID, CLIENT_SECRET)["active"] is False

    events = [e["event"] for e in gateway.events() if e.get("audit")]
    for name in ("login.started", "login.succeeded", "session.created", "request.proxied",
                 "session.ended"):
        assert name in events, name
    assert any(e.get("reason") == "logout" for e in gateway.audit("session.ended"))


async def test_api_without_session_is_401_problem_with_login_url(browser) -> None:
    r = await browser.api("GET", "/api/orders")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["login_url"].startswith("/bff/login?returnUrl=")
    assert r.json()["type"].endswith("/not-authenticated")


async def test_upstream_statuses_pass_through(browser, idp_client, redis_server) -> None:
    """An upstream's own 401/403 is passed through untouched (not confused with ours)."""
    await login(browser, idp_client, redis_server.url)
    for status in (401, 403, 404, 500):
        r = await browser.api("GET", f"/api/status/{status}")
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"


async def test_public_route_needs_no_session_or_csrf(browser, upstream) -> None:
    r = await browser.get("/public/page")
    assert r.status_code == 200
    assert header_values(upstream.last_for("/public/page"), "authorization") == []


async def test_two_logins_get_different_sessions(browser, idp_client, redis_server) -> None:
    """Fixation-proof: every login mints a brand-new session id."""
    await login(browser, idp_client, redis_server.url)
    first = browser.cookie("__Host-bffgate")
    await login(browser, idp_client, redis_server.url)
    second = browser.cookie("__Host-bffgate")
    assert first and second and first != second


async def test_client_secret_post(gateway, idp, redis_server, upstream, idp_client, tmp_path) -> None:
    """A second gateway configured with client_secret_post; the IdP records the method."""
    from support.browser import Browser
    from support.e2e import COOKIE_KEY, client_meta  # noqa: F401
    from support.gateway import GatewayProcess, gateway_config

    # Reuse the session gateway's port registration: run this one on the same ports is
    # impossible, so it uses the second client registered for the same redirect URI port.
    idp.reset_stats()
    gateway.terminate()
    config = gateway_config(port=gateway.port, admin_port=gateway.admin_port, issuer=idp.issuer,
                            client_id="bff-e2e-post", client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=upstream.url,
                            cookie_key=COOKIE_KEY, oidc={"client_auth": "client_secret_post"})
    gw2 = GatewayProcess(config).start()
    try:
        b = Browser(gw2.url)
        resp = await login(b, idp_client, redis_server.url)
        assert resp.status_code == 302
        methods = {r["client_auth"] for r in idp.stats()["token_requests"]
                   if r["grant_type"] == "authorization_code"}
        assert methods == {"post"}
        await b.aclose()
    finally:
        gw2.terminate()
        gateway.start()


async def test_upstream_failures_are_502_and_504_problems(browser, idp_client, redis_server,
                                                          gateway) -> None:
    """A refused connection is 502, a silent upstream past the route timeout is 504."""
    r = await browser.get("/dead/anything")
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("/upstream-unavailable")
    await login(browser, idp_client, redis_server.url)
    r = await browser.api("GET", "/api/slow", params={"s": "5"})  # route timeout is 3 s
    assert r.status_code == 504
    assert r.json()["type"].endswith("/upstream-timeout")
    reasons = [e.get("reason") for e in gateway.events() if e.get("audit")]
    assert "upstream_connect_error" in reasons and "upstream_timeout" in reasons


async def test_request_body_over_the_limit_is_413(browser, idp_client, redis_server,
                                                  upstream) -> None:
    """Declared too large: refused before anything is sent upstream. Streamed (chunked)
    past the limit: the upstream request is aborted and the client gets 413."""
    await login(browser, idp_client, redis_server.url)
    before = len(upstream.seen)
    big = b"x" * (5 * 1024 * 1024)
    r = await browser.api("POST", "/api/upload", content=big)
    assert r.status_code == 413
    assert r.json()["type"].endswith("/body-too-large")

    async def chunks():
        for _ in range(5):
            yield b"y" * (1024 * 1024)

    r = await browser.api("POST", "/api/upload-stream", content=chunks())
    assert r.status_code == 413
    assert all("/api/upload" not in rec["path"] or rec["body_len"] < len(big)
               for rec in upstream.seen[before:])
