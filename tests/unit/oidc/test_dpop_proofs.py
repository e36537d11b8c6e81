"""DPoP proofs (RFC 9449): the key pair, what a proof says, and the use_dpop_nonce retry."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx
import pytest

from bffgate.clock import FrozenClock
from bffgate.oidc.dpop import (
    DpopKey,
    DpopKeyInvalid,
    DpopNonces,
    DpopProver,
    asks_for_nonce,
    ath,
    htu,
)
from support.dpop_upstream import ProofInvalid, ProofVerifier

URL = "https://api.example.test/orders/7?x=1#frag"
NOW = 1_700_000_000.0


def _parts(proof: str) -> tuple[dict[str, object], dict[str, object]]:
    def seg(s: str) -> dict[str, object]:
        doc: dict[str, object] = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        return doc

    head, body, _ = proof.split(".")
    return seg(head), seg(body)


def test_proof_header_and_claims() -> None:
    key = DpopKey.generate()
    proof = key.proof("get", URL, now=NOW, access_token="tok-123", nonce="n-1")
    head, claims = _parts(proof)
    assert head["typ"] == "dpop+jwt" and head["alg"] == "ES256"
    assert head["jwk"] == key.public_jwk and "d" not in key.public_jwk
    assert claims["htm"] == "GET"
    assert claims["htu"] == "https://api.example.test/orders/7"
    assert claims["iat"] == int(NOW)
    assert claims["ath"] == base64.urlsafe_b64encode(
        hashlib.sha256(b"tok-123").digest()).rstrip(b"=").decode()
    assert claims["nonce"] == "n-1"
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16


def test_token_request_proof_has_no_ath_or_nonce_and_a_fresh_jti() -> None:
    key = DpopKey.generate()
    a = _parts(key.proof("POST", "http://idp/token", now=NOW))[1]
    b = _parts(key.proof("POST", "http://idp/token", now=NOW))[1]
    assert "ath" not in a and "nonce" not in a
    assert a["jti"] != b["jti"]


def test_proof_verifies_with_its_embedded_key_and_thumbprint() -> None:
    key = DpopKey.generate()
    v = ProofVerifier()
    proof = key.proof("POST", URL, now=NOW, access_token="at")
    checked = v.verify(proof, method="POST", url="https://api.example.test/orders/7",
                       access_token="at", now=NOW)
    assert checked.jkt == key.thumbprint
    with pytest.raises(ProofInvalid, match="jti"):  # a replay
        v.verify(proof, method="POST", url=URL, access_token="at", now=NOW)


@pytest.mark.parametrize(("kwargs", "check"), [
    ({"method": "GET"}, "htm"),
    ({"url": "https://api.example.test/other"}, "htu"),
    ({"access_token": "another"}, "ath"),
    ({"now": NOW + 600}, "iat"),
])
def test_verifier_refuses_a_proof_for_another_request(kwargs: dict[str, object],
                                                      check: str) -> None:
    proof = DpopKey.generate().proof("POST", URL, now=NOW, access_token="at")
    args: dict[str, object] = {"method": "POST", "url": URL, "access_token": "at", "now": NOW}
    args.update(kwargs)
    with pytest.raises(ProofInvalid, match=check):
        ProofVerifier().verify(proof, **args)  # type: ignore[arg-type]


def test_verifier_refuses_a_proof_signed_by_another_key() -> None:
    proof = DpopKey.generate().proof("GET", URL, now=NOW)
    other = DpopKey.generate().proof("GET", URL, now=NOW)
    forged = ".".join(proof.split(".")[:2] + other.split(".")[2:])
    with pytest.raises(ProofInvalid, match="signature"):
        ProofVerifier().verify(forged, method="GET", url=URL, access_token=None, now=NOW)


def test_key_round_trips_through_its_secret_and_repr_hides_it() -> None:
    key = DpopKey.generate()
    again = DpopKey.from_secret(key.secret())
    assert again.thumbprint == key.thumbprint
    assert json.loads(key.secret())["d"] not in repr(key)
    assert key.thumbprint in repr(key)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"kty":"oct","k":"AAAA"}',
                                  json.dumps({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"})])
def test_a_bad_serialised_key_is_refused(text: str) -> None:
    with pytest.raises(DpopKeyInvalid):
        DpopKey.from_secret(text)


def test_public_key_only_is_refused() -> None:
    doc = json.loads(DpopKey.generate().secret())
    del doc["d"]
    with pytest.raises(DpopKeyInvalid):
        DpopKey.from_secret(json.dumps(doc))


def test_htu_and_ath() -> None:
    assert htu("HTTP://Host:8080/a/b?q=1#f") == "http://host:8080/a/b"
    assert htu("http://h") == "http://h/"
    assert ath("x") == "LXEWQrcmsEQBYnyp-6wy9chTD7GQPMTbAiWHF5IaSIE"  # SHA-256("x"), unpadded


def test_nonces_are_per_server_bounded_and_checked() -> None:
    n = DpopNonces(max_servers=2)
    assert n.remember("http://a/token", "n1") and n.get("http://a/other") == "n1"
    assert not n.remember("http://a/token", 'bad"nonce')
    assert not n.remember("http://a/token", "")
    assert not n.remember("http://a/token", None)
    n.remember("http://b/", "n2")
    n.remember("http://c/", "n3")
    assert n.get("http://a/") is None and n.get("http://c/x") == "n3"


def test_asks_for_nonce() -> None:
    assert asks_for_nonce(400, "use_dpop_nonce", "n")
    assert not asks_for_nonce(400, "use_dpop_nonce", None)
    assert not asks_for_nonce(401, "use_dpop_nonce", "n")
    assert not asks_for_nonce(400, "invalid_dpop_proof", "n")


async def test_prover_retries_once_with_the_servers_nonce_and_remembers_it() -> None:
    key, prover = DpopKey.generate(), DpopProver(FrozenClock(NOW))
    sent: list[dict[str, object]] = []

    async def send(proof: str) -> httpx.Response:
        claims = _parts(proof)[1]
        sent.append(claims)
        if claims.get("nonce") != "srv-1":
            return httpx.Response(400, json={"error": "use_dpop_nonce"},
                                  headers={"DPoP-Nonce": "srv-1"})
        return httpx.Response(200, json={"ok": True})

    resp = await prover.send(key, "POST", "http://idp/token", send)
    assert resp.status_code == 200
    assert [c.get("nonce") for c in sent] == [None, "srv-1"]
    assert sent[0]["jti"] != sent[1]["jti"]
    assert prover.nonces.retries == 1
    # the next request to that server carries the nonce from the start
    await prover.send(key, "POST", "http://idp/token", send)
    assert [c.get("nonce") for c in sent[2:]] == ["srv-1"]


async def test_prover_retries_only_once() -> None:
    key, prover = DpopKey.generate(), DpopProver(FrozenClock(NOW))
    calls = 0

    async def send(_proof: str) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": "use_dpop_nonce"},
                              headers={"DPoP-Nonce": f"n{calls}"})

    resp = await prover.send(key, "POST", "http://idp/token", send)
    assert resp.status_code == 400 and calls == 2


async def test_prover_does_not_retry_other_errors() -> None:
    key, prover = DpopKey.generate(), DpopProver(FrozenClock(NOW))
    calls = 0

    async def send(_proof: str) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(400, json={"error": "invalid_dpop_proof"},
                              headers={"DPoP-Nonce": "n"})

    await prover.send(key, "POST", "http://idp/token", send)
    assert calls == 1
