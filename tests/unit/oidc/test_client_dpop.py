"""The OIDC client's DPoP grants (oidc.dpop) over httpx.MockTransport: the code exchange
makes the session's key and proves with it, a refresh proves with the given key, the
token_type rules, the use_dpop_nonce retry, and the IdP that does not support ES256."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bffgate.clock import FrozenClock
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.dpop import DpopKey
from bffgate.oidc.errors import ProviderMisconfigured, TokenRejected
from support.dpop_upstream import ProofVerifier

ISSUER = "https://idp.example.com"
NOW = 1_700_000_000


class DpopIdP:
    def __init__(self, token_type: str = "DPoP", algs: list[str] | None = None,
                 nonce: str | None = None) -> None:
        self.token_type, self.algs, self.nonce = token_type, algs, nonce
        self.proofs: list[str | None] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            doc: dict[str, Any] = {
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"]}
            if self.algs is not None:
                doc["dpop_signing_alg_values_supported"] = self.algs
            return httpx.Response(200, json=doc)
        proof = request.headers.get("dpop")
        self.proofs.append(proof)
        if (self.nonce is not None and proof is not None
                and _claims(proof).get("nonce") != self.nonce):
            return httpx.Response(400, json={"error": "use_dpop_nonce"},
                                  headers={"DPoP-Nonce": self.nonce})
        return httpx.Response(200, json={"access_token": "at", "token_type": self.token_type,
                                         "expires_in": 300, "refresh_token": "rt"})


def _claims(proof: str) -> dict[str, Any]:
    seg = proof.split(".")[1]
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return doc


def _client(idp: DpopIdP, dpop: bool = True) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    clock = FrozenClock(NOW)
    rp = RelyingParty(issuer=ISSUER, client_id="bff", client_secret="s3cr3t",
                      client_auth="client_secret_basic", private_key="",
                      redirect_uri="https://app.example.com/bff/callback",
                      scopes=("openid",), id_token_algs=("RS256",), clock_skew=60,
                      use_par=False, extra_auth_params={}, dpop=dpop)
    return OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


async def test_code_exchange_makes_a_key_and_proves_with_it() -> None:
    idp = DpopIdP(algs=["ES256"])
    tokens = await _client(idp).exchange_code("code", "v" * 43)
    assert tokens.token_type == "DPoP" and tokens.dpop_key is not None
    assert len(idp.proofs) == 1 and idp.proofs[0] is not None
    checked = ProofVerifier().verify(idp.proofs[0], method="POST", url=f"{ISSUER}/token",
                                     access_token=None, now=NOW)
    assert checked.jkt == tokens.dpop_key.thumbprint
    assert tokens.dpop_key.secret() not in repr(tokens)


async def test_refresh_proves_with_the_sessions_key() -> None:
    idp = DpopIdP(algs=["ES256"])
    key = DpopKey.generate()
    tokens = await _client(idp).refresh("rt", sub="alice", dpop_key=key)
    assert tokens.dpop_key is key and tokens.token_type == "DPoP"
    checked = ProofVerifier().verify(idp.proofs[0] or "", method="POST",
                                     url=f"{ISSUER}/token", access_token=None, now=NOW)
    assert checked.jkt == key.thumbprint


async def test_nonce_retry_on_the_token_endpoint() -> None:
    idp = DpopIdP(algs=["ES256"], nonce="srv-nonce")
    client = _client(idp)
    counted: list[int] = []
    client.dpop.on_retry = lambda: counted.append(1)
    tokens = await client.exchange_code("code", "v" * 43)
    assert tokens.token_type == "DPoP"
    assert [p and _claims(p).get("nonce") for p in idp.proofs] == [None, "srv-nonce"]
    assert client.dpop.nonces.retries == 1 and counted == [1]


async def test_bearer_answer_to_a_proof_is_kept_as_bearer() -> None:
    tokens = await _client(DpopIdP(token_type="Bearer", algs=["ES256"])).exchange_code(
        "code", "v" * 43)
    assert tokens.token_type == "Bearer"


async def test_dpop_token_type_without_a_proof_is_refused() -> None:
    with pytest.raises(TokenRejected, match="unsupported_token_type"):
        await _client(DpopIdP(algs=["ES256"]), dpop=False).exchange_code("code", "v" * 43)


@pytest.mark.parametrize("algs", [None, [], ["EdDSA"]])
async def test_idp_without_es256_is_a_misconfiguration_naming_oidc_dpop(
        algs: list[str] | None) -> None:
    idp = DpopIdP(algs=algs)
    with pytest.raises(ProviderMisconfigured, match=r"oidc\.dpop"):
        await _client(idp).exchange_code("code", "v" * 43)
    assert idp.proofs == []  # nothing sent


async def test_without_dpop_no_proof_is_sent() -> None:
    idp = DpopIdP(token_type="Bearer")
    tokens = await _client(idp, dpop=False).exchange_code("code", "v" * 43)
    assert idp.proofs == [None] and tokens.dpop_key is None
    assert replace(tokens, sub="x").token_type == "Bearer"
