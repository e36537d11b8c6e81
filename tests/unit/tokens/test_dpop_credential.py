"""The DPoP user credential (tokens/dpop.py) and the session's DPoP key in its record: sealed,
optional (records without it read as before), kept across a refresh."""

from __future__ import annotations

import json

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.oidc.dpop import DpopKey, DpopProver
from bffgate.session.model import NewTokens, SessionData, Tokens
from bffgate.session.record import decode_session, encode_session
from bffgate.session.schedule import RefreshSchedule
from bffgate.tokens.credential import authorization_headers
from bffgate.tokens.dpop import upstream_answered, user_credential
from support.dpop_upstream import ProofVerifier

NOW = 1_700_000_000.0
URL = "http://orders.internal:8000/api/orders/7?page=2"


def _tokens(key: DpopKey | None, token_type: str = "DPoP") -> Tokens:
    return Tokens("at-1", "rt-1", None, NOW + 300, NOW + 200,
                  key.secret() if key else None, token_type)


def test_bound_token_goes_as_dpop_with_a_fresh_proof_per_request() -> None:
    key, prover = DpopKey.generate(), DpopProver(FrozenClock(NOW))
    cred = user_credential("at-1", _tokens(key), prover)
    assert cred.scheme == "DPoP" and "at-1" not in repr(cred)
    verifier = ProofVerifier()
    for method in ("GET", "POST"):
        headers = dict(authorization_headers(cred, method, URL))
        assert headers[b"authorization"] == b"DPoP at-1"
        checked = verifier.verify(headers[b"dpop"].decode(), method=method, url=URL,
                                  access_token="at-1", now=NOW)
        assert checked.jkt == key.thumbprint
        assert checked.claims["htu"] == "http://orders.internal:8000/api/orders/7"


def test_no_key_or_a_bearer_answer_goes_as_bearer() -> None:
    prover = DpopProver(FrozenClock(NOW))
    for tokens in (_tokens(None, "Bearer"), _tokens(DpopKey.generate(), "Bearer")):
        cred = user_credential("at-1", tokens, prover)
        assert authorization_headers(cred, "GET", URL) == [(b"authorization", b"Bearer at-1")]
    cred = user_credential("at-1", _tokens(DpopKey.generate()), None)  # oidc.dpop off
    assert cred.scheme == "Bearer"


def test_upstream_nonce_is_carried_by_the_next_proof_to_that_upstream_only() -> None:
    key, prover = DpopKey.generate(), DpopProver(FrozenClock(NOW))
    cred = user_credential("at-1", _tokens(key), prover)
    upstream_answered(cred, URL, [(b"dpop-nonce", b"up-1"), (b"content-type", b"x")])
    proof = dict(authorization_headers(cred, "GET", URL))[b"dpop"].decode()
    ProofVerifier().verify(proof, method="GET", url=URL, access_token="at-1", nonce="up-1",
                           now=NOW)
    other = dict(authorization_headers(cred, "GET", "http://other:1/x"))[b"dpop"].decode()
    assert "nonce" not in ProofVerifier().verify(other, method="GET", url="http://other:1/x",
                                                 access_token="at-1", now=NOW).claims
    upstream_answered(None, URL, [(b"dpop-nonce", b"up-2")])  # no credential: nothing to do


def test_key_is_sealed_in_the_record_and_optional() -> None:
    key, handle = DpopKey.generate(), SessionHandle.new()
    data = SessionData("alice", None, {}, NOW, NOW + 9000, "lo", _tokens(key))
    raw = encode_session(handle, data)
    d = json.loads(key.secret())["d"]
    assert d.encode() not in raw and "dk" not in json.loads(raw)  # only inside "sealed"
    back = decode_session(handle, raw).tokens
    assert back.dpop_key == key.secret() and back.token_type == "DPoP"
    plain = SessionData("alice", None, {}, NOW, NOW + 9000, "lo", _tokens(None, "Bearer"))
    tokens_json = json.loads(plain.tokens.to_json())
    assert "dk" not in tokens_json and "tt" not in tokens_json  # records stay as they were
    assert decode_session(handle, encode_session(handle, plain)).tokens.dpop_key is None
    assert key.secret() not in repr(data) and d not in repr(data)


def test_schedule_carries_the_key_into_the_stored_tokens() -> None:
    key = DpopKey.generate()
    new = NewTokens("at-2", "rt-2", None, NOW + 300, key.secret(), "DPoP")
    tokens = RefreshSchedule(60, jitter=lambda _b: 0.0).tokens(new, NOW)
    assert (tokens.dpop_key, tokens.token_type) == (key.secret(), "DPoP")
    assert key.secret() not in repr(new)
