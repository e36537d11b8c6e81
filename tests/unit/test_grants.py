"""Unit tests for bffgate.grants: how a refresh grant's answer is classified (OidcRefresher:
a definitive refusal ends the session, only an outage is transient), and what RefreshReport
records for each outcome. (The OIDC Core 12.2 ID-token checks:
tests/unit/oidc/test_client_refresh.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from structlog.testing import capture_logs

from bffgate.clock import SystemClock
from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.grants import OidcRefresher, RefreshReport
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.session.model import LoadedSession, SessionData, Tokens
from bffgate.session.outcomes import (
    Ended,
    Refreshed,
    RefreshRejectedError,
    RefreshUnavailableError,
    Unavailable,
)

ISSUER = "https://idp.example.com"


@asynccontextmanager
async def idp_answering(status: int, body: object) -> AsyncIterator[OidcClient]:
    """An OidcClient whose IdP answers the token endpoint with ``status`` and ``body``."""
    def idp(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"]})
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    clock = SystemClock()
    async with httpx.AsyncClient(transport=httpx.MockTransport(idp)) as http:
        rp = RelyingParty(
            issuer=ISSUER, client_id="bff", client_secret="s3cret-value",
            client_auth="client_secret_basic", private_key="",
            redirect_uri="https://app.example.com/bff/callback", scopes=("openid",),
            id_token_algs=("RS256",), clock_skew=60, use_par=False, extra_auth_params={})
        yield OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


@pytest.mark.parametrize(("status", "body", "reason"), [
    pytest.param(400, {"error": "invalid_grant"}, "invalid_grant", id="invalid-grant"),
    pytest.param(400, {"error": "invalid_scope"}, "invalid_scope", id="invalid-scope"),
    pytest.param(400, {"error": "invalid_request"}, "invalid_request", id="invalid-request"),
    pytest.param(200, {"token_type": "Bearer"}, "missing_access_token", id="no-access-token"),
])
async def test_a_definitive_refusal_ends_the_session(status: int, body: object,
                                                     reason: str) -> None:
    async with idp_answering(status, body) as oidc:
        with pytest.raises(RefreshRejectedError) as info:
            await OidcRefresher(oidc)("rt", "alice")
    assert info.value.error == reason


@pytest.mark.parametrize(("status", "body"), [
    pytest.param(503, b"busy", id="503"),
    pytest.param(400, {"error": "temporarily_unavailable"}, id="temporarily-unavailable"),
])
async def test_an_outage_is_transient(status: int, body: object) -> None:
    async with idp_answering(status, body) as oidc:
        with pytest.raises(RefreshUnavailableError):
            await OidcRefresher(oidc)("rt", "alice")


def _session() -> LoadedSession:
    tokens = Tokens("at", "rt", None, 100.0, 50.0)
    return LoadedSession(SessionHandle.new(), SessionData("alice", None, {}, 0.0, 1000.0, "lo",
                                                         tokens), 1, 500.0)


@pytest.mark.parametrize(("outcome", "metric", "event", "reason"), [
    pytest.param(Refreshed(_session()), "refreshed", "session.refreshed", None, id="refreshed"),
    pytest.param(Ended.rejected(_session(), "invalid_grant"), "rejected",
                 "session.refresh_failed", "invalid_grant", id="rejected"),
    pytest.param(Ended.expired(_session()), None, "session.expired", "access_token_expired",
                 id="expired"),
    pytest.param(Unavailable(_session(), True), "unavailable", None, None, id="unavailable"),
])
def test_each_outcome_is_recorded_in_one_place(outcome: Refreshed | Ended | Unavailable,
                                               metric: str | None, event: str | None,
                                               reason: str | None) -> None:
    metrics = Metrics()
    with capture_logs() as logs:
        RefreshReport(metrics)(outcome)
    counted = {s.labels["outcome"]: s.value for m in metrics.refresh.collect()
               for s in m.samples if s.name.endswith("_total")}
    assert counted == ({metric: 1.0} if metric else {})
    events = [e for e in logs if e.get("audit")]
    assert [e["event"] for e in events] == ([event] if event else [])
    if events:
        assert events[0]["sub"] == "alice" and events[0]["session"] == outcome.session.handle.short
        assert events[0].get("reason") == reason
