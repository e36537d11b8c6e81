"""Unit tests for back-channel logout token validation: keys minted here, each rule a named
case (OIDC Back-Channel Logout 1.0, section 2.6)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from bffgate.oidc.errors import IdTokenInvalid
from bffgate.oidc.logout_token import LOGOUT_EVENT, verify_logout_token

KEY = ECKey.generate_key("P-256", auto_kid=True)
KEYS = KeySet([KEY])
NOW = 1_700_000_000
ISS, CLIENT = "https://idp.example.com", "bff"


def claims(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"iss": ISS, "aud": CLIENT, "iat": NOW, "exp": NOW + 120,
                            "jti": "j-1", "sub": "alice", "sid": "s-1",
                            "events": {LOGOUT_EVENT: {}}}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(payload: dict[str, Any], **header: Any) -> str:
    return jwt.encode({"alg": "ES256", "kid": KEY.kid, "typ": "logout+jwt", **header},
                      payload, KEY)


def verify(tok: str) -> Any:
    return verify_logout_token(tok, KEYS, issuer=ISS, client_id=CLIENT, now=NOW, leeway=30,
                               algorithms=("ES256", "RS256"))


def test_valid_token() -> None:
    out = verify(token(claims()))
    assert (out.sub, out.sid, out.jti) == ("alice", "s-1", "j-1")


def test_sid_only_and_sub_only_are_valid() -> None:
    assert verify(token(claims(sub=None))).sub is None
    assert verify(token(claims(sid=None))).sid is None


@pytest.mark.parametrize(("payload", "check"), [
    pytest.param(claims(iss=ISS + "/"), "iss", id="iss-trailing-slash"),
    pytest.param(claims(aud="other"), "aud", id="aud-other"),
    pytest.param(claims(iat=None), "iat", id="iat-missing"),
    pytest.param(claims(iat=NOW + 300), "iat", id="iat-future"),
    pytest.param(claims(iat=NOW - 3600), "iat", id="iat-too-old"),
    pytest.param(claims(exp=NOW - 60), "exp", id="expired"),
    pytest.param(claims(jti=None), "jti", id="jti-missing"),
    pytest.param(claims(events=None), "events", id="events-missing"),
    pytest.param(claims(events={LOGOUT_EVENT: "yes"}), "events", id="events-not-object"),
    pytest.param(claims(events={"other": {}}), "events", id="events-other"),
    pytest.param(claims(nonce="n"), "nonce", id="nonce-present-id-token-confusion"),
    pytest.param(claims(sub=None, sid=None), "sub_or_sid", id="neither-sub-nor-sid"),
])
def test_claim_rules(payload: dict[str, Any], check: str) -> None:
    with pytest.raises(IdTokenInvalid) as err:
        verify(token(payload))
    assert err.value.check == check


def test_wrong_typ_is_refused() -> None:
    with pytest.raises(IdTokenInvalid) as err:
        verify(token(claims(), typ="JWT+id"))
    assert err.value.check == "typ"


def test_signature_by_another_key_is_refused() -> None:
    other = ECKey.generate_key("P-256", auto_kid=True)
    forged = jwt.encode({"alg": "ES256", "kid": KEY.kid}, claims(), other)
    with pytest.raises(IdTokenInvalid) as err:
        verify(forged)
    assert err.value.check == "signature"


def test_hmac_and_none_are_refused() -> None:
    hs = jwt.encode({"alg": "HS256"}, claims(), OctKey.import_key(b"k" * 32))
    with pytest.raises(IdTokenInvalid) as err:
        verify(hs)
    assert err.value.check == "alg"
