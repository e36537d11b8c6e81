"""E2E: logging in again from a browser that holds a live session ends the old session.

Real `bffgate serve`, redis-server, oidc-provider (tests/idp) and echo upstream. The old
cookie is still on the callback request (the browser sends it); once the new session is
stored the old one is deleted (old cookie → 401 on the proxy and /bff/user) and audited
(`session.ended`, reason `relogin`). Its refresh token is revoked at the IdP when the new
login is a new IdP session; when both logins share the IdP session (same `sid`), the IdP
holds both sessions' tokens in one grant, and revoking the old refresh token would revoke
the new session's tokens too (oidc-provider revokes the whole grant; the last test shows
it), so the old one is only deleted. (Before: the old cookie kept working.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_ID, CLIENT_SECRET, login, read_session_tokens
from support.gateway import GatewayProcess
from support.idp import OidcProviderProcess
from support.redis import RedisServer

pytestmark = pytest.mark.e2e
SESSION_COOKIE = "__Host-bffgate"


def active(idp: OidcProviderProcess, token: str) -> bool:
    return bool(idp.introspect(token, CLIENT_ID, CLIENT_SECRET).get("active"))


async def log_in(browser: Browser, idp_client: httpx.AsyncClient,
                 redis_url: str) -> tuple[str, dict[str, Any]]:
    resp = await login(browser, idp_client)
    assert resp.status_code == 302, resp.text
    cookie = browser.cookie(SESSION_COOKIE)
    assert cookie
    tokens: dict[str, Any] = read_session_tokens(redis_url, cookie)["tokens"]
    assert tokens.get("rt"), "the test IdP issued no refresh token"
    return cookie, tokens


async def assert_dead(browser: Browser, old_cookie: str, new_cookie: str) -> None:
    browser.set_cookie(SESSION_COOKIE, old_cookie)
    try:
        for path in ("/api/old", "/bff/user"):
            r = await browser.api("GET", path)
            assert r.status_code == 401, (path, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    finally:
        browser.set_cookie(SESSION_COOKIE, new_cookie)


def relogin_events(gateway: GatewayProcess, sub_session: str) -> list[dict[str, Any]]:
    return [e for e in gateway.audit("session.ended")
            if e.get("reason") == "relogin" and e.get("session") == sub_session]


async def test_relogin_in_a_new_idp_session_ends_and_revokes_the_old_session(
        browser: Browser, gateway: GatewayProcess, idp: OidcProviderProcess,
        redis_server: RedisServer) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as first_idp_jar:
        old_cookie, old = await log_in(browser, first_idp_jar, redis_server.url)
    old_key = read_session_tokens(redis_server.url, old_cookie)["key"]
    assert active(idp, old["rt"])
    assert (await browser.api("GET", "/api/before")).status_code == 200

    # Same browser (the old session cookie goes along to /bff/callback), new IdP session.
    async with httpx.AsyncClient(trust_env=False, timeout=30) as second_idp_jar:
        new_cookie, new = await log_in(browser, second_idp_jar, redis_server.url)
    assert new_cookie != old_cookie

    await assert_dead(browser, old_cookie, new_cookie)
    assert not active(idp, old["rt"]), "the IdP did not revoke the old refresh token"
    ended = relogin_events(gateway, old_key[:16])
    assert len(ended) == 1, gateway.audit("session.ended")
    assert ended[0]["detail"] == "refresh_token_revoked=True"

    assert (await browser.api("GET", "/api/after")).status_code == 200
    assert (await browser.api("GET", "/bff/user")).status_code == 200
    assert active(idp, new["rt"])


async def test_relogin_in_the_same_idp_session_ends_the_old_session_keeps_the_new_grant(
        browser: Browser, gateway: GatewayProcess, idp: OidcProviderProcess,
        redis_server: RedisServer, idp_client: httpx.AsyncClient) -> None:
    old_cookie, old = await log_in(browser, idp_client, redis_server.url)
    old_key = read_session_tokens(redis_server.url, old_cookie)["key"]
    new_cookie, new = await log_in(browser, idp_client, redis_server.url)  # same IdP jar
    assert new_cookie != old_cookie

    await assert_dead(browser, old_cookie, new_cookie)
    ended = relogin_events(gateway, old_key[:16])
    assert len(ended) == 1, gateway.audit("session.ended")
    assert ended[0]["detail"].startswith("refresh_token_revoked=False (kept")
    assert (await browser.api("GET", "/api/after")).status_code == 200
    assert active(idp, new["rt"]) and active(idp, new["at"])

    # Why it is kept: at this IdP the two sessions' tokens are one grant, and revoking the
    # old refresh token revokes the new session's tokens with it.
    idp.revoke(old["rt"], CLIENT_ID, CLIENT_SECRET, "refresh_token")
    assert not active(idp, new["rt"])
