"""Integration: a session's life on the proxy path (session/: refresh, IdP outage, revoked
refresh token, absolute timeout), with the whole gateway in-process and a frozen clock
(support/inprocess.py)."""

from __future__ import annotations

import httpx
import pytest

from support.inprocess import AT_TTL, CLIENT, ISSUER, SECRET, Harness, bearer

pytestmark = pytest.mark.integration


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
