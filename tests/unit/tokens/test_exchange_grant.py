"""The token-exchange grant on the wire (bffgate.oidc.token_exchange) over
httpx.MockTransport: the form RFC 8693 asks for, the client's own authentication, and each
kind of answer as the OIDC layer's typed error. (The real IdP is in tests/e2e.)"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from bffgate.clock import FrozenClock
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import GrantRejected, ProviderUnavailable, TokenRejected
from bffgate.oidc.token_exchange import ACCESS_TOKEN_TYPE, GRANT_TYPE, exchange_token

ISSUER = "https://idp.example.com"
NOW = 1_700_000_000.0


class TokenEndpoint:
    """Discovery plus a token endpoint whose answer the test chooses; keeps the requests."""

    def __init__(self, status: int = 200, body: Any = None) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []
        self.body = body if body is not None else {
            "access_token": "xt", "token_type": "Bearer", "expires_in": 120,
            "issued_token_type": ACCESS_TOKEN_TYPE}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"]})
        self.requests.append(request)
        if isinstance(self.body, bytes):
            return httpx.Response(self.status, content=self.body)
        return httpx.Response(self.status, json=self.body)

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.requests[-1].content.decode())


def _client(endpoint: TokenEndpoint) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(endpoint))
    clock = FrozenClock(NOW)
    rp = RelyingParty(issuer=ISSUER, client_id="bff", client_secret="s3cr3t",
                      client_auth="client_secret_basic", private_key="",
                      redirect_uri="https://app.example.com/bff/callback",
                      scopes=("openid",), id_token_algs=("RS256",), clock_skew=60,
                      use_par=False, extra_auth_params={})
    return OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


async def test_the_form_is_rfc_8693_with_the_routes_target_and_client_auth() -> None:
    endpoint = TokenEndpoint()
    answer = await exchange_token(_client(endpoint), "user-at", audience="https://orders.test",
                                  resource="https://orders.test/", scope=("a", "b"))
    assert answer.access_token == "xt" and answer.expires_at == NOW + 120
    assert endpoint.form() == {
        "grant_type": [GRANT_TYPE], "subject_token": ["user-at"],
        "subject_token_type": [ACCESS_TOKEN_TYPE], "requested_token_type": [ACCESS_TOKEN_TYPE],
        "audience": ["https://orders.test"], "resource": ["https://orders.test/"],
        "scope": ["a b"]}
    auth = endpoint.requests[-1].headers["authorization"].split()[1]
    assert base64.b64decode(auth) == b"bff:s3cr3t"


async def test_unset_targets_are_left_out_never_sent_empty() -> None:
    endpoint = TokenEndpoint()
    await exchange_token(_client(endpoint), "user-at", resource="https://billing.test/")
    form = endpoint.form()
    assert "audience" not in form and "scope" not in form
    assert form["resource"] == ["https://billing.test/"]


@pytest.mark.parametrize(("status", "body", "error", "kind"), [
    (400, {"error": "invalid_grant"}, "invalid_grant", GrantRejected),
    (400, {"error": "invalid_target"}, "invalid_target", TokenRejected),
    (400, {"error": "invalid_scope"}, "invalid_scope", TokenRejected),
    (401, {"error": "invalid_client"}, "invalid_client", GrantRejected),
    (200, {"token_type": "Bearer"}, "missing_access_token", TokenRejected),
])
async def test_an_oauth_error_answer_is_a_typed_rejection(status: int, body: Any, error: str,
                                                          kind: type[TokenRejected]) -> None:
    with pytest.raises(kind) as caught:
        await exchange_token(_client(TokenEndpoint(status, body)), "user-at",
                             audience="https://orders.test")
    assert caught.value.error == error


@pytest.mark.parametrize(("status", "body"), [
    (503, b"down"), (500, {"error": "server_error"}),
    (400, {"error": "temporarily_unavailable"}),
])
async def test_an_outage_is_provider_unavailable(status: int, body: Any) -> None:
    with pytest.raises(ProviderUnavailable):
        await exchange_token(_client(TokenEndpoint(status, body)), "user-at",
                             audience="https://orders.test")
