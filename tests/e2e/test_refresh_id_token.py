"""E2E, OIDC Core 12.2: a refreshed ID token that fails validation ends the session at once.

Real processes: `bffgate serve`, redis-server, an echo upstream and the second test IdP
(tests/idp2, oauth2-mock-server), whose test hook spoils the ID token of the next refresh
grant: a broken signature, another `aud`, another `iss`, another `sub`. Each time the call
that triggered the refresh gets 401 session-ended with the cookie cleared, the audit names
the failed check (`session.refresh_failed`, `id_token_invalid:<check>`), the session is gone
from Redis, and the refresh and access tokens that grant just issued are revoked at the IdP.
(Before: the gateway answered as if the IdP were down, threw the rotated refresh token away
and kept the session until the next refresh failed for a misleading reason.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from test_second_idp import (
    CLIENT_ID,
    CLIENT_SECRET,
    SESSION_COOKIE,
    MockIdpProcess,
    last_grant,
    login_via_mock,
    session_in_redis,
    sleep_until_refresh_point,
)

from support.browser import Browser
from support.e2e import COOKIE_KEY
from support.gateway import GatewayProcess, gateway_config
from support.idp import free_port
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e

ACCESS_TTL = 4  # seconds; with refresh_ahead 2 the gateway refreshes ~2 s after a grant


@pytest.fixture(scope="module")
def mock_idp() -> Iterator[MockIdpProcess]:
    mock = MockIdpProcess(ACCESS_TTL).start()
    yield mock
    mock.close()


@pytest.fixture(scope="module")
def gw(mock_idp: MockIdpProcess, redis_server: RedisServer,
       upstream: EchoUpstream) -> Iterator[GatewayProcess]:
    config = gateway_config(port=free_port(), admin_port=free_port(), issuer=mock_idp.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=upstream.url,
                            cookie_key=COOKIE_KEY)
    g = GatewayProcess(config).start()
    yield g
    g.terminate()


def tamper_next_refresh(idp: MockIdpProcess, what: str) -> None:
    with httpx.Client(base_url=idp.issuer, timeout=10, trust_env=False) as http:
        http.post("/test/tamper-next-refresh", params={"id_token": what}).raise_for_status()


@pytest.mark.parametrize("check", ["signature", "aud", "iss", "sub"])
async def test_refreshed_id_token_failing_a_check_ends_the_session_and_revokes(
        check: str, mock_idp: MockIdpProcess, gw: GatewayProcess,
        redis_server: RedisServer, idp_client: httpx.AsyncClient) -> None:
    browser = Browser(gw.url)
    try:
        resp = await login_via_mock(browser, idp_client, mock_idp)
        assert resp.status_code == 302, resp.text
        cookie = browser.cookie(SESSION_COOKIE)
        assert cookie
        assert (await browser.api("GET", "/api/before")).status_code == 200

        tamper_next_refresh(mock_idp, check)
        await sleep_until_refresh_point(redis_server.url, cookie)
        r = await browser.api("GET", "/api/after")

        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
        problem: dict[str, Any] = r.json()
        assert problem["type"].endswith("/session-ended")
        cleared = [v for v in r.headers.get_list("set-cookie")
                   if v.startswith(SESSION_COOKIE + "=")]
        assert cleared and "max-age=0" in cleared[0].lower()

        failed = [e for e in gw.audit("session.refresh_failed")
                  if e.get("reason") == f"id_token_invalid:{check}"]
        assert len(failed) == 1, gw.audit("session.refresh_failed")
        assert not session_in_redis(redis_server.url, cookie)
        browser.set_cookie(SESSION_COOKIE, cookie)  # the old cookie, replayed
        assert (await browser.api("GET", "/bff/user")).status_code == 401
        assert (await browser.api("GET", "/api/again")).status_code == 401

        grant = last_grant(mock_idp, "refresh_token")
        assert grant["status"] == 200  # the IdP did answer: this is not an outage
        revoked = {(x["token"], x["token_type_hint"]) for x in mock_idp.stats()["revocations"]}
        assert (grant["refresh_token_issued"], "refresh_token") in revoked
        assert (grant["access_token_issued"], "access_token") in revoked
    finally:
        await browser.aclose()
