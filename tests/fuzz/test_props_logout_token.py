"""Property tests: back-channel logout tokens. Any string, any header, any claims: either a
LogoutRequest that satisfies every rule of OIDC BCL 1.0 section 2.6, or IdTokenInvalid."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from bffgate.oidc.errors import IdTokenInvalid
from bffgate.oidc.logout_token import LOGOUT_EVENT, LogoutRequest, verify_logout_token

pytestmark = pytest.mark.fuzz

ISSUER, CLIENT, NOW, LEEWAY, MAX_AGE = "https://idp.example", "bff", 1_800_000_000, 60, 600
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
OTHER = ECKey.generate_key("P-256", parameters={"kid": "k1"}, private=True)
KEYS = KeySet([KEY])

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=6)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(value, json_values)


claims_strategy = st.fixed_dictionaries({}, optional={
    "iss": _maybe(st.sampled_from([ISSUER, ISSUER + "/", "https://evil.example", ""])),
    "aud": _maybe(st.sampled_from([CLIENT, [CLIENT], ["x", CLIENT], "other", []])),
    "iat": _maybe(st.integers(NOW - 2 * MAX_AGE, NOW + 2 * LEEWAY)),
    "exp": _maybe(st.integers(NOW - 120, NOW + 600)),
    "jti": _maybe(st.text(min_size=0, max_size=300)),
    "events": _maybe(st.sampled_from([{LOGOUT_EVENT: {}}, {LOGOUT_EVENT: []},
                                      {LOGOUT_EVENT: {"x": 1}}, {"other": {}}])),
    "nonce": _maybe(st.text(max_size=5)),
    "sub": _maybe(st.sampled_from(["alice", "", "bob"])),
    "sid": _maybe(st.sampled_from(["sid-1", ""])),
})
headers_strategy = st.fixed_dictionaries(
    {"alg": st.sampled_from(["ES256", "ES256", "ES256", "RS256", "none", "HS256", "es256"])},
    optional={"typ": st.sampled_from(["logout+jwt", "JWT", "at+jwt", "application/logout+jwt",
                                      "LOGOUT+JWT", ""]),
              "kid": st.sampled_from(["k1", "k2"]),
              "crit": st.just(["exp"]), "jku": st.just("https://evil.example/jwks")})


def _verify(token: str) -> LogoutRequest | None:
    try:
        return verify_logout_token(token, KEYS, issuer=ISSUER, client_id=CLIENT, now=NOW,
                                   leeway=LEEWAY, algorithms=["ES256", "RS256"],
                                   max_age=MAX_AGE)
    except IdTokenInvalid as exc:
        check = exc.check
    assert check  # every refusal names the rule that failed
    return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _sign(header: dict[str, Any], claims: dict[str, Any], key: ECKey) -> str:
    if header["alg"] != "ES256":  # a forged alg: header and claims with a junk signature
        return ".".join([_b64(json.dumps(header).encode()),
                         _b64(json.dumps(claims).encode()), _b64(b"sig")])
    return jwt.encode(header, claims, key, algorithms=["ES256"])


def _assert_rules(result: LogoutRequest, claims: dict[str, Any]) -> None:
    assert claims["iss"] == ISSUER
    aud = claims["aud"]
    assert aud == CLIENT or (isinstance(aud, list) and CLIENT in aud)
    iat = claims["iat"]
    assert isinstance(iat, int | float) and not isinstance(iat, bool)
    assert NOW - MAX_AGE - LEEWAY <= iat <= NOW + LEEWAY
    assert "exp" not in claims or claims["exp"] + LEEWAY > NOW
    assert isinstance(claims["jti"], str) and 0 < len(claims["jti"]) <= 256
    assert isinstance(claims["events"][LOGOUT_EVENT], dict)
    assert "nonce" not in claims
    assert result.sub or result.sid
    assert result.sub in (None, claims.get("sub")) and result.sid in (None, claims.get("sid"))


@given(headers_strategy, claims_strategy, st.booleans())
def test_signed_tokens_pass_only_when_every_rule_holds(header: dict[str, Any],
                                                       claims: dict[str, Any],
                                                       other_key: bool) -> None:
    try:
        token = _sign(header, claims, OTHER if other_key else KEY)
    except (ValueError, TypeError, JoseError):
        return  # joserfc will not encode it (a NaN claim, crit it cannot honour)
    result = _verify(token)
    if result is None:
        return
    assert not other_key and header["alg"] == "ES256"
    assert str(header.get("typ", "jwt")).lower() in ("logout+jwt", "application/logout+jwt",
                                                     "jwt")
    assert not header.get("crit") and "jku" not in header
    _assert_rules(result, claims)


segments = st.one_of(st.text(max_size=30),
                     st.binary(max_size=40).map(_b64),
                     json_values.map(lambda v: _b64(json.dumps(v).encode())))


@given(st.one_of(st.text(max_size=200),
                 st.lists(segments, min_size=1, max_size=5).map(".".join)))
def test_arbitrary_strings_raise_only_id_token_invalid(token: str) -> None:
    assert _verify(token) is None
