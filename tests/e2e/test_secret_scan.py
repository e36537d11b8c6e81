"""E2E self-check of the secret scan. The scan itself is the session-end fixture
``secret_scan_at_session_end`` (tests/e2e/conftest.py), which runs after every e2e test
whatever the file order; this test makes sure it is armed and would see a leak: after a flow
of its own, the scanner knows every kind of secret, the real gateway logs and browser
responses are clean, and a token planted into a copy of a real gateway log is found."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.e2e import login, read_session_tokens
from support.gateway import ALL_LOGS
from support.secrets_scan import SECRETS, scan

pytestmark = pytest.mark.e2e

REQUIRED_KINDS = {"access_token", "refresh_token", "id_token", "authorization_code",
                  "code_verifier", "client_secret", "session_cookie", "cookie_key"}


async def test_the_session_end_secret_scan_is_armed_and_sees_a_leak(
        request: pytest.FixtureRequest, browser, idp_client, redis_server, gateway,
        tmp_path: Path) -> None:
    assert "secret_scan_at_session_end" in request.fixturenames  # autouse, for every test
    await login(browser, idp_client, redis_server.url)
    cookie = browser.cookie("__Host-bffgate")
    assert cookie
    tokens = read_session_tokens(redis_server.url, cookie)["tokens"]
    assert (await browser.api("GET", "/api/scan")).status_code == 200
    user = (await browser.api("GET", "/bff/user")).json()
    assert (await browser.get(user["logout_url"])).status_code == 302

    assert set(SECRETS.values()) >= REQUIRED_KINDS, "the scan must know every kind of secret"
    assert gateway.log_path in ALL_LOGS and gateway.log_path.stat().st_size > 0
    assert scan(ALL_LOGS) == []

    planted = tmp_path / "gateway.log"
    planted.write_text(gateway.log() + f'{{"event": "oops", "detail": "{tokens["rt"]}"}}\n')
    assert scan([planted]) == [f"refresh_token found in log {planted}"]
