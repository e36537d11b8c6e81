"""E2E: OIDC Back-Channel Logout from the real oidc-provider to the running gateway."""

from __future__ import annotations

import httpx
import pytest

from support.browser import Browser
from support.e2e import CLIENT_ID, login, read_session_tokens

pytestmark = pytest.mark.e2e


async def _two_sessions(gateway, redis_server, user: str) -> list[tuple[Browser, str]]:
    """The same user logged in from two browsers (two IdP sessions, two sids)."""
    out = []
    for _ in range(2):
        b = Browser(gateway.url)
        async with httpx.AsyncClient(trust_env=False) as idp_client:  # its own IdP cookies
            assert (await login(b, idp_client, redis_server.url, user=user)).status_code == 302
        sid = read_session_tokens(redis_server.url, b.cookie("__Host-bffgate"))["record"]["sid"]
        out.append((b, sid))
    assert out[0][1] and out[0][1] != out[1][1]
    return out


async def test_logout_token_with_sid_ends_that_session_only(gateway, idp, redis_server) -> None:
    (a, sid_a), (b, _) = await _two_sessions(gateway, redis_server, "erin")
    sent = idp.send_backchannel_logout("erin", sid=sid_a, client_id=CLIENT_ID)
    assert sent == [{"client_id": CLIENT_ID, "ok": True}], sent
    assert (await a.api("GET", "/bff/user")).status_code == 401
    assert (await b.api("GET", "/bff/user")).status_code == 200
    events = [e for e in gateway.audit("logout.backchannel") if e.get("sub") == "erin"]
    assert events[-1]["count"] == 1 and events[-1]["reason"] == "sid"
    await a.aclose()
    await b.aclose()


async def test_logout_token_with_sub_only_ends_all_of_the_users_sessions(
        gateway, idp, redis_server) -> None:
    (a, _), (b, _) = await _two_sessions(gateway, redis_server, "frank")
    sent = idp.send_backchannel_logout("frank", client_id=CLIENT_ID)
    assert sent[0]["ok"] is True, sent
    for browser in (a, b):
        assert (await browser.api("GET", "/bff/user")).status_code == 401
        await browser.aclose()
    # one audit line per session ended (before: only the count on logout.backchannel)
    revoked = [e for e in gateway.audit("session.revoked")
               if e.get("sub") == "frank" and e.get("reason") == "backchannel"]
    assert len(revoked) == 2 and len({e["session"] for e in revoked}) == 2, revoked


@pytest.mark.parametrize(("content_type", "body", "reason"), [
    pytest.param("application/x-www-form-urlencoded", "logout_token=not.a.jwt",
                 "logout_token_invalid:", id="garbage-token"),
    pytest.param("application/x-www-form-urlencoded", "other=1", "logout_token_missing",
                 id="no-token"),
    pytest.param("application/x-www-form-urlencoded", "logout_token=a&logout_token=b",
                 "logout_token_missing", id="two-tokens"),
    pytest.param("application/json", '{"logout_token": "x"}', "content_type", id="json"),
])
async def test_invalid_requests_are_400(gateway, content_type, body, reason) -> None:
    async with httpx.AsyncClient(trust_env=False) as c:
        r = await c.post(gateway.url + "/bff/backchannel", content=body,
                         headers={"content-type": content_type})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert r.headers["cache-control"] == "no-store"
    assert any(str(e.get("reason", "")).startswith(reason)
               for e in gateway.audit("logout.backchannel"))
