"""E2E, runs last in the tier: no token, code, code_verifier, client secret, cookie key or
session cookie value that any test saw appears in any gateway log line or in any response
sent to a browser (scripted or Chromium). The suite-wide hook in tests/conftest.py repeats
the scan at the very end, over everything."""

from __future__ import annotations

import pytest

from support.e2e import login, read_session_tokens
from support.gateway import ALL_LOGS
from support.secrets_scan import SECRETS, scan

pytestmark = pytest.mark.e2e

REQUIRED_KINDS = {"access_token", "refresh_token", "id_token", "authorization_code",
                  "code_verifier", "client_secret", "session_cookie", "cookie_key"}


async def test_no_secret_reaches_a_log_line_or_the_browser(browser, idp_client, redis_server,
                                                           gateway) -> None:
    # one full flow of its own, so the scan is meaningful even when this file runs alone
    await login(browser, idp_client, redis_server.url)
    cookie = browser.cookie("__Host-bffgate")
    assert cookie
    read_session_tokens(redis_server.url, cookie)
    assert (await browser.api("GET", "/api/scan")).status_code == 200
    user = (await browser.api("GET", "/bff/user")).json()
    assert (await browser.get(user["logout_url"])).status_code == 302

    assert set(SECRETS.values()) >= REQUIRED_KINDS, "the scan must know every kind of secret"
    assert any(p.exists() and p.stat().st_size > 0 for p in ALL_LOGS)
    assert scan(ALL_LOGS) == []
