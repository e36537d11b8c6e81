"""Unit tests for how the gateway classifies a refresh grant's answer (the TokenRefresher it
injects into the session layer): a definitive refusal ends the session, only an outage is
transient. (The OIDC Core 12.2 ID-token checks: tests/unit/oidc/test_client_refresh.py.)"""

from __future__ import annotations

import secrets

import httpx
import pytest

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.grants import OidcRefresher
from bffgate.session.outcomes import RefreshRejectedError, RefreshUnavailableError

ISSUER = "https://idp.example.com"


def gateway(status: int, body: object) -> Gateway:
    def idp(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"]})
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": "https://app.example.com"},
        "oidc": {"issuer": ISSUER, "client_id": "bff", "client_secret": "s3cret-value"},
        "session": {"store": "memory"},
        "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "routes": [{"prefix": "/api", "upstream": "http://api.test", "token": "user"}],
    })
    return Gateway(settings, idp_transport=httpx.MockTransport(idp))


@pytest.mark.parametrize(("status", "body", "reason"), [
    pytest.param(400, {"error": "invalid_grant"}, "invalid_grant", id="invalid-grant"),
    pytest.param(400, {"error": "invalid_scope"}, "invalid_scope", id="invalid-scope"),
    pytest.param(400, {"error": "invalid_request"}, "invalid_request", id="invalid-request"),
    pytest.param(200, {"token_type": "Bearer"}, "missing_access_token", id="no-access-token"),
])
async def test_a_definitive_refusal_ends_the_session(status: int, body: object,
                                                     reason: str) -> None:
    gw = gateway(status, body)
    try:
        with pytest.raises(RefreshRejectedError) as info:
            await OidcRefresher(gw.oidc)("rt", "alice")
        assert info.value.error == reason
    finally:
        await gw.stop()


@pytest.mark.parametrize(("status", "body"), [
    pytest.param(503, b"busy", id="503"),
    pytest.param(400, {"error": "temporarily_unavailable"}, id="temporarily-unavailable"),
])
async def test_an_outage_is_transient(status: int, body: object) -> None:
    gw = gateway(status, body)
    try:
        with pytest.raises(RefreshUnavailableError):
            await OidcRefresher(gw.oidc)("rt", "alice")
    finally:
        await gw.stop()
