"""Unit tests for ID-token validation: keys are minted here, tokens signed with joserfc.

Every failure is a named case and asserts *which* check refused the token
(``IdTokenInvalid.check``), so a token refused for the wrong reason fails the test.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc import jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from bffgate.config import OidcSettings
from bffgate.oidc.errors import IdTokenInvalid
from bffgate.oidc.id_token import MAX_ID_TOKEN, check_claims, parse_compact, verify_id_token

ISSUER = "https://idp.example.com"
CLIENT = "bffgate-client"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_700_000_000
LEEWAY = 60
ALGS = ("RS256", "ES256")


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": "ec-1"})


@pytest.fixture(scope="module")
def keys(rsa_key: RSAKey, ec_key: ECKey) -> KeySet:
    """The IdP's published JWKS: public halves only."""
    return KeySet([
        RSAKey.import_key(rsa_key.as_dict(private=False)),
        ECKey.import_key(ec_key.as_dict(private=False)),
    ])


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT, "exp": NOW + 300, "iat": NOW,
        "nonce": NONCE,
    }
    for name, value in changes.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


_DROP = object()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_b64(obj: Any) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _rs256_raw(header: dict[str, Any], claims: dict[str, Any], key: RSAKey) -> str:
    """Sign by hand, for headers joserfc itself refuses to produce."""
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    sig = key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(sig)}"


def _hs256_raw(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def _verify(token: str, keys: KeySet, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "issuer": ISSUER, "client_id": CLIENT, "nonce": NONCE, "now": NOW, "leeway": LEEWAY,
        "algorithms": ALGS,
    }
    options.update(kwargs)
    return verify_id_token(token, keys, **options)


def _refused(check: str, token: str, keys: KeySet, **kwargs: Any) -> None:
    with pytest.raises(IdTokenInvalid) as info:
        _verify(token, keys, **kwargs)
    assert info.value.check == check


# --- valid tokens -------------------------------------------------------------------------


def test_valid_rs256_token_returns_its_claims(rsa_key: RSAKey, keys: KeySet) -> None:
    """An RS256 token from the IdP with every claim right verifies and yields its claims."""
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, _claims(), rsa_key)
    assert _verify(token, keys) == _claims()


def test_valid_es256_token_returns_its_claims(ec_key: ECKey, keys: KeySet) -> None:
    """An ES256 token verifies against the EC key of the same JWKS."""
    token = jwt.encode({"alg": "ES256", "kid": "ec-1"}, _claims(), ec_key)
    assert _verify(token, keys)["sub"] == "user-1"


def test_token_without_kid_verifies_against_a_single_key_set(rsa_key: RSAKey) -> None:
    """An IdP with one key that omits ``kid`` still works."""
    token = jwt.encode({"alg": "RS256"}, _claims(), rsa_key)
    only = KeySet([RSAKey.import_key(rsa_key.as_dict(private=False))])
    assert _verify(token, only)["iss"] == ISSUER


def _key_for(alg: str) -> RSAKey | ECKey | OKPKey:
    if alg.startswith(("RS", "PS")):
        return RSAKey.generate_key(2048, parameters={"kid": "k"})
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters={"kid": "k"})
    return OKPKey.generate_key("Ed25519", parameters={"kid": "k"})


@pytest.mark.parametrize(
    "alg", [pytest.param(alg, id=alg) for alg in OidcSettings().id_token_algs]
)
def test_every_default_allowed_algorithm_verifies(alg: str) -> None:
    """Each alg on the default allow-list verifies cleanly (no stray library warnings)."""
    key = _key_for(alg)
    # joserfc itself warns when *signing* with the RFC 8037 name; that is the IdP's side.
    signing = pytest.warns(SecurityWarning) if alg == "EdDSA" else contextlib.nullcontext()
    with signing:
        token = jwt.encode({"alg": alg, "kid": "k"}, _claims(), key, algorithms=[alg])
    claims = _verify(token, KeySet([key]), algorithms=OidcSettings().id_token_algs)
    assert claims["sub"] == "user-1"


# --- alg and signature --------------------------------------------------------------------


def test_signature_by_another_key_with_the_same_kid_is_refused(keys: KeySet) -> None:
    """A token signed by an attacker's key (claiming the IdP's kid) fails the signature."""
    attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, _claims(), attacker)
    _refused("signature", token, keys)


def test_altered_payload_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """Swapping in another payload under a genuine signature fails the signature."""
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, _claims(), rsa_key)
    head, _, sig = token.split(".")
    forged = f"{head}.{_json_b64(_claims(sub='admin'))}.{sig}"
    _refused("signature", forged, keys)


def test_unknown_kid_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """A kid that is not in the JWKS does not verify."""
    token = jwt.encode({"alg": "RS256", "kid": "rotated-away"}, _claims(), rsa_key)
    _refused("signature", token, keys)


@pytest.mark.parametrize(
    "alg",
    [
        pytest.param("none", id="none"),
        pytest.param("None", id="None"),
        pytest.param("NONE", id="NONE"),
        pytest.param("nOnE", id="nOnE"),
    ],
)
@pytest.mark.parametrize(
    "allow",
    [
        pytest.param(ALGS, id="default-allow-list"),
        pytest.param((*ALGS, "none", "None", "NONE", "nOnE"), id="none-on-allow-list"),
    ],
)
def test_unsigned_token_is_refused(alg: str, allow: tuple[str, ...], keys: KeySet) -> None:
    """alg=none in any spelling is refused, even if a misconfiguration allowed it."""
    token = f"{_json_b64({'alg': alg})}.{_json_b64(_claims())}."
    _refused("alg", token, keys, algorithms=allow)


def test_hs256_signed_with_the_rsa_public_key_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """Algorithm confusion: HMAC keyed with the IdP's public key bytes never verifies."""
    for public in (
        rsa_key.as_pem(private=False),
        json.dumps(rsa_key.as_dict(private=False)).encode(),
    ):
        token = _hs256_raw({"alg": "HS256", "kid": "rsa-1"}, _claims(), public)
        _refused("alg", token, keys)
        _refused("alg", token, keys, algorithms=(*ALGS, "HS256"))


@pytest.mark.parametrize(
    "alg",
    [
        pytest.param("HS256", id="HS256"),
        pytest.param("HS384", id="HS384"),
        pytest.param("HS512", id="HS512"),
        pytest.param("hs256", id="hs256-lower"),
    ],
)
def test_hmac_algorithms_are_refused_even_when_allowed(alg: str, keys: KeySet) -> None:
    """A confidential client could share an HMAC secret, but bffgate never accepts HS*."""
    token = _hs256_raw({"alg": alg}, _claims(), b"client-secret-shared-with-the-idp")
    _refused("alg", token, keys, algorithms=(*ALGS, alg))


def test_alg_not_on_the_allow_list_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """A genuinely signed PS256 token is refused when only RS256/ES256 are allowed."""
    token = jwt.encode({"alg": "PS256", "kid": "rsa-1"}, _claims(), rsa_key, algorithms=["PS256"])
    _refused("alg", token, keys)
    assert _verify(token, keys, algorithms=("PS256",))["sub"] == "user-1"


def test_header_alg_must_be_a_string(rsa_key: RSAKey, keys: KeySet) -> None:
    """A non-string alg is refused before any key is chosen."""
    token = _rs256_raw({"alg": ["RS256"], "kid": "rsa-1"}, _claims(), rsa_key)
    _refused("alg", token, keys)


def test_mismatched_key_type_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """An ES256 header pointing at the RSA key does not verify."""
    token = _rs256_raw({"alg": "ES256", "kid": "rsa-1"}, _claims(), rsa_key)
    _refused("signature", token, keys)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"jku": "https://evil.example/jwks"}, id="jku"),
        pytest.param({"jwk": {"kty": "oct", "k": "c2VjcmV0"}}, id="jwk"),
        pytest.param({"x5u": "https://evil.example/cert.pem"}, id="x5u"),
        pytest.param({"crit": ["exp"], "exp": NOW}, id="crit"),
        pytest.param({"crit": ["b64"], "b64": False}, id="crit-b64"),
    ],
)
def test_header_naming_its_own_key_or_critical_extensions_is_refused(
    extra: dict[str, Any], rsa_key: RSAKey, keys: KeySet
) -> None:
    """Keys come from the IdP's JWKS only; jku/jwk/x5u and crit are refused."""
    token = _rs256_raw({"alg": "RS256", "kid": "rsa-1", **extra}, _claims(), rsa_key)
    _refused("header", token, keys)


# --- malformed tokens ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("abc.def", id="two-parts"),
        pytest.param("a.b.c.d", id="four-parts"),
        pytest.param("not a token at all", id="garbage"),
        pytest.param("!!!.@@@.###", id="garbage-three-parts"),
        pytest.param(f"{_b64(b'not json')}.{_b64(b'{}')}.", id="header-not-json"),
        pytest.param(f"{_b64(b'[1]')}.{_b64(b'{}')}.", id="header-not-object"),
        pytest.param("eyJhbGciOiJSUzI1NiJ9.é.sig", id="non-ascii"),
        pytest.param("a" * (100 * 1024 - 2) + "..", id="100KB"),
        pytest.param("." * 2 + "a" * (MAX_ID_TOKEN + 1), id="just-over-limit"),
    ],
)
def test_malformed_tokens_are_refused(token: str, keys: KeySet) -> None:
    """Anything that is not a compact JWS of sane size is 'malformed'."""
    _refused("malformed", token, keys)


def test_parse_refuses_non_strings() -> None:
    """A non-string token (e.g. a JSON number from a broken IdP) is malformed."""
    with pytest.raises(IdTokenInvalid, match="malformed"):
        parse_compact(12345)  # type: ignore[arg-type]


def test_payload_that_is_not_a_json_object_is_refused(rsa_key: RSAKey, keys: KeySet) -> None:
    """A validly signed token whose payload is a JSON array is never accepted."""
    signing_input = f"{_json_b64({'alg': 'RS256', 'kid': 'rsa-1'})}.{_b64(b'[1,2]')}"
    sig = rsa_key.private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(IdTokenInvalid):
        _verify(f"{signing_input}.{_b64(sig)}", keys)


# --- claims, end to end through verify_id_token -------------------------------------------


@pytest.mark.parametrize(
    ("changes", "kwargs", "check"),
    [
        pytest.param({"iss": "https://evil.example.com"}, {}, "iss", id="iss-other"),
        pytest.param({"iss": ISSUER + "/"}, {}, "iss", id="iss-trailing-slash"),
        pytest.param({}, {"issuer": ISSUER + "/"}, "iss", id="iss-expected-has-trailing-slash"),
        pytest.param({"iss": "HTTPS://IDP.EXAMPLE.COM"}, {}, "iss", id="iss-case"),
        pytest.param({"iss": _DROP}, {}, "iss", id="iss-missing"),
        pytest.param({"aud": _DROP}, {}, "aud", id="aud-missing"),
        pytest.param({"aud": "other-client"}, {}, "aud", id="aud-other"),
        pytest.param({"aud": ["a", "b"], "azp": CLIENT}, {}, "aud", id="aud-list-without-client"),
        pytest.param({"aud": []}, {}, "aud", id="aud-empty-list"),
        pytest.param({"aud": 42}, {}, "aud", id="aud-not-string"),
        pytest.param({"aud": [CLIENT, "api"]}, {}, "azp", id="azp-missing-with-two-audiences"),
        pytest.param({"aud": [CLIENT, "api"], "azp": "api"}, {}, "azp", id="azp-other-client"),
        pytest.param({"azp": "other"}, {}, "azp", id="azp-other-single-audience"),
        pytest.param({"exp": NOW - LEEWAY - 1}, {}, "exp", id="exp-past-beyond-leeway"),
        pytest.param({"exp": NOW - LEEWAY}, {}, "exp", id="exp-at-leeway-edge"),
        pytest.param({"exp": _DROP}, {}, "exp", id="exp-missing"),
        pytest.param({"exp": str(NOW + 300)}, {}, "exp", id="exp-string"),
        pytest.param({"exp": True}, {}, "exp", id="exp-bool"),
        pytest.param({"iat": NOW + LEEWAY + 1}, {}, "iat", id="iat-future-beyond-leeway"),
        pytest.param({"iat": _DROP}, {}, "iat", id="iat-missing"),
        pytest.param({"nonce": "other"}, {}, "nonce", id="nonce-mismatch"),
        pytest.param({"nonce": _DROP}, {}, "nonce", id="nonce-missing"),
        pytest.param({"nonce": 1}, {}, "nonce", id="nonce-not-string"),
        pytest.param({"nonce": NONCE + "x"}, {}, "nonce", id="nonce-longer"),
        pytest.param({"sub": _DROP}, {}, "sub", id="sub-missing"),
        pytest.param({"sub": ""}, {}, "sub", id="sub-empty"),
        pytest.param({"sub": 7}, {}, "sub", id="sub-not-string"),
        pytest.param({"sub": "x" * 256}, {}, "sub", id="sub-over-255"),
    ],
)
def test_claim_failures_are_refused(
    changes: dict[str, Any], kwargs: dict[str, Any], check: str, rsa_key: RSAKey, keys: KeySet
) -> None:
    """A correctly signed token with one bad claim is refused, naming that claim."""
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, _claims(**changes), rsa_key)
    _refused(check, token, keys, **kwargs)


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"exp": NOW - LEEWAY + 1}, id="exp-past-within-leeway"),
        pytest.param({"iat": NOW + LEEWAY}, id="iat-future-within-leeway"),
        pytest.param({"aud": [CLIENT]}, id="aud-list-of-one"),
        pytest.param({"aud": [CLIENT, "api"], "azp": CLIENT}, id="two-audiences-with-azp"),
        pytest.param({"azp": CLIENT}, id="azp-equal-single-audience"),
        pytest.param({"exp": NOW + 300.5, "iat": NOW - 0.5}, id="fractional-times"),
        pytest.param({"sub": "x" * 255}, id="sub-255"),
    ],
)
def test_claims_at_the_edges_are_accepted(
    changes: dict[str, Any], rsa_key: RSAKey, keys: KeySet
) -> None:
    """Clock-skew leeway and the aud/azp rules accept what OIDC Core allows."""
    token = jwt.encode({"alg": "RS256", "kid": "rsa-1"}, _claims(**changes), rsa_key)
    assert _verify(token, keys)["sub"] == _claims(**changes)["sub"]


# --- check_claims alone -------------------------------------------------------------------


def test_check_claims_skips_the_nonce_only_when_none_is_expected() -> None:
    """nonce=None (no login record nonce) skips the nonce check; anything else enforces it."""
    check_claims(_claims(nonce=_DROP), issuer=ISSUER, client_id=CLIENT, nonce=None, now=NOW,
                 leeway=LEEWAY)
    with pytest.raises(IdTokenInvalid, match="nonce"):
        check_claims(_claims(nonce=_DROP), issuer=ISSUER, client_id=CLIENT, nonce="",
                     now=NOW, leeway=LEEWAY)


def test_check_claims_with_zero_leeway_is_strict() -> None:
    """With no leeway, a token expiring now is expired and one issued 1 s ahead is refused."""
    strict = {"issuer": ISSUER, "client_id": CLIENT, "nonce": NONCE, "now": NOW, "leeway": 0}
    with pytest.raises(IdTokenInvalid, match="exp"):
        check_claims(_claims(exp=NOW), **strict)
    with pytest.raises(IdTokenInvalid, match="iat"):
        check_claims(_claims(iat=NOW + 1), **strict)
    check_claims(_claims(exp=NOW + 1, iat=NOW), **strict)
