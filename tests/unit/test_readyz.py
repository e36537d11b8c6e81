"""Unit tests for /readyz with the memory store and a scripted IdP transport: readiness never
waits on a hanging IdP, and the IdP's state is reported, not decisive. (Real processes:
tests/e2e/test_readiness.py.)"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.endpoints import admin

ISSUER = "https://idp.example.com"


def _metadata(issuer: str = ISSUER) -> httpx.Response:
    return httpx.Response(200, json={
        "issuer": issuer, "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
        "code_challenge_methods_supported": ["S256"]})


class ScriptedIdP(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.mode = "ok"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "hang":
            await asyncio.sleep(30)
        if self.mode == "down":
            raise httpx.ConnectError("refused", request=request)
        if self.mode == "foreign":
            return _metadata("https://other.example.com")
        return _metadata()


@pytest.fixture
async def admin_client() -> AsyncIterator[tuple[httpx.AsyncClient, ScriptedIdP]]:
    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": "https://app.example.com"},
        "oidc": {"issuer": ISSUER, "client_id": "bff", "client_secret": "s3cret-value"},
        "session": {"store": "memory"},
        "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "routes": [{"prefix": "/api", "upstream": "http://api.test", "token": "user"}],
    })
    idp = ScriptedIdP()
    gw = Gateway(settings, idp_transport=idp)
    await gw.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.admin),
                                 base_url="http://admin.test") as client:
        yield client, idp
    await gw.stop()


@pytest.mark.parametrize(("mode", "reported"), [
    pytest.param("ok", "ok", id="idp-up"),
    pytest.param("down", "idp_unavailable", id="idp-down"),
    pytest.param("foreign", "idp_misconfigured", id="idp-foreign-issuer"),
    pytest.param("hang", "timeout", id="idp-hangs"),
])
async def test_the_idp_is_reported_and_never_decides_readiness(
        admin_client: tuple[httpx.AsyncClient, ScriptedIdP], mode: str, reported: str) -> None:
    client, idp = admin_client
    idp.mode = mode
    started = time.monotonic()
    r = await client.get("/readyz")
    assert time.monotonic() - started < admin.IDP_PROBE_TIMEOUT + 1.0
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {"store": "ok", "idp_metadata": reported}}
    assert r.headers["cache-control"] == "no-store"
