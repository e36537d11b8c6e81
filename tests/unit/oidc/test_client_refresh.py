"""Unit tests for OidcClient.refresh and OIDC Core 12.2: a refreshed ID token is validated
(signature, iss, aud, ...) and must name the session's user; when it fails, the tokens the
IdP just issued are revoked and the failed check is named. (E2E: tests/e2e/test_refresh_id_token.py.)"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from bffgate.clock import FrozenClock
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import IdTokenInvalid

ISSUER = "https://idp.example.com"
KEY = RSAKey.generate_key(2048, auto_kid=True)
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": KEY.kid})  # same kid, wrong key
NOW = int(time.time())


def id_token(key: RSAKey = KEY, **overrides: Any) -> str:
    claims = {"iss": ISSUER, "sub": "alice", "aud": "bff", "exp": NOW + 300, "iat": NOW,
              **overrides}
    return jwt.encode({"alg": "RS256", "kid": KEY.kid}, claims, key)


class IdP:
    def __init__(self, token: str | None) -> None:
        self.token = token
        self.revoked: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"],
                "revocation_endpoint": f"{ISSUER}/revoke"})
        if path == "/jwks":
            return httpx.Response(200, json=KeySet([KEY]).as_dict(private=False))
        if path == "/token":
            body = {"access_token": "new-at", "token_type": "Bearer", "expires_in": 300,
                    "refresh_token": "new-rt"}
            if self.token:
                body["id_token"] = self.token
            return httpx.Response(200, json=body)
        if path == "/revoke":
            form = parse_qs(request.content.decode())
            self.revoked.append((form["token"][0], form["token_type_hint"][0]))
            return httpx.Response(200)
        return httpx.Response(404)


def client(idp: IdP) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    clock = FrozenClock(NOW)
    rp = RelyingParty(issuer=ISSUER, client_id="bff", client_secret="s3cr3t",
                      client_auth="client_secret_basic", private_key="",
                      redirect_uri="https://app.example.com/bff/callback",
                      scopes=("openid",), id_token_algs=("RS256",), clock_skew=60,
                      use_par=False, extra_auth_params={})
    return OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


async def test_a_valid_refreshed_id_token_yields_its_subject() -> None:
    idp = IdP(id_token())
    t = await client(idp).refresh("old-rt", sub="alice")
    assert t.sub == "alice"
    assert t.refresh_token == "new-rt"
    assert idp.revoked == []


async def test_without_an_id_token_nothing_is_checked() -> None:
    t = await client(IdP(None)).refresh("old-rt", sub="alice")
    assert t.sub is None and t.access_token == "new-at"


@pytest.mark.parametrize(("token", "check"), [
    pytest.param(id_token(key=OTHER_KEY), "signature", id="bad-signature"),
    pytest.param(id_token(aud="someone-else"), "aud", id="wrong-aud"),
    pytest.param(id_token(iss="https://evil.example.com"), "iss", id="wrong-iss"),
    pytest.param(id_token(sub="mallory"), "sub", id="another-sub"),
    pytest.param(id_token(exp=NOW - 3600), "exp", id="expired"),
])
async def test_an_invalid_refreshed_id_token_names_the_check_and_revokes(token: str,
                                                                          check: str) -> None:
    idp = IdP(token)
    with pytest.raises(IdTokenInvalid) as info:
        await client(idp).refresh("old-rt", sub="alice")
    assert info.value.check == check
    assert idp.revoked == [("new-rt", "refresh_token"), ("new-at", "access_token")]
