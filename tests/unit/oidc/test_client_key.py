"""Unit tests for the private_key_jwt key (oidc/client_key.py) and its use by the OIDC client:
every supported key kind as PEM and JWK, the kid, the algorithm agreed with the IdP's
metadata, and every refused key named by ``check-config`` (``oidc.private_key``).
The e2e counterpart against the real IdP is tests/e2e/test_private_key_jwt.py."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519
from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

from bffgate.cli import main as cli_main
from bffgate.clock import FrozenClock
from bffgate.config import ConfigError, load_settings
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.client_key import ClientKeyError, ClientKeyMismatch, load_client_key
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import ProviderMisconfigured

ISSUER = "https://idp.example.com"
NOW = 1_700_000_000


def _pem(key: Any) -> str:
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                             ser.NoEncryption()).decode()


def _traditional_pem(key: Any) -> str:
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL,
                             ser.NoEncryption()).decode()


def _jwk(key: Any, **members: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the short RSA key on purpose
        kind = {rsa.RSAPrivateKey: RSAKey, ec.EllipticCurvePrivateKey: ECKey}
        cls = next((c for t, c in kind.items() if isinstance(key, t)), OKPKey)
        return json.dumps({**cls.import_key(key).as_dict(private=True), **members})


RSA = rsa.generate_private_key(65537, 2048)
EC = ec.generate_private_key(ec.SECP256R1())
ED = ed25519.Ed25519PrivateKey.generate()


# --- keys that work ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    pytest.param(_pem(RSA), "RSA", id="rsa-pkcs8-pem"),
    pytest.param(_traditional_pem(RSA), "RSA", id="rsa-pkcs1-pem"),
    pytest.param(_jwk(RSA), "RSA", id="rsa-jwk"),
    pytest.param(_pem(EC), "EC P-256", id="ec-pkcs8-pem"),
    pytest.param(_traditional_pem(EC), "EC P-256", id="ec-sec1-pem"),
    pytest.param(_jwk(EC), "EC P-256", id="ec-jwk"),
    pytest.param(_pem(ED), "Ed25519", id="ed25519-pem"),
    pytest.param(_jwk(ED), "Ed25519", id="ed25519-jwk"),
    pytest.param(json.dumps({"keys": [json.loads(_jwk(EC))]}), "EC P-256", id="one-key-jwks"),
    pytest.param("\n  " + _pem(EC) + "\n\n", "EC P-256", id="pem-with-blank-lines"),
])
def test_supported_keys_load_with_the_rfc7638_thumbprint_as_kid(text: str, kind: str) -> None:
    key = load_client_key(text)
    assert key.kind == kind
    assert key.kid == key.key.thumbprint()  # RFC 7638, SHA-256
    assert key.key.is_private
    assert "PRIVATE" not in repr(key) and '"d"' not in repr(key)


def test_a_jwk_kid_is_kept_and_its_alg_pins_the_algorithm() -> None:
    key = load_client_key(_jwk(RSA, kid="registered-kid", alg="PS256"))
    assert key.kid == "registered-kid"
    assert key.algorithms == ("PS256",)
    assert key.algorithm_for(["RS256", "PS256"]) == "PS256"
    with pytest.raises(ClientKeyMismatch):
        key.algorithm_for(["RS256"])


@pytest.mark.parametrize(("text", "supported", "alg"), [
    pytest.param(_pem(RSA), None, "RS256", id="rsa-no-metadata"),
    pytest.param(_pem(RSA), ["RS256", "PS256", "ES256"], "RS256", id="rsa-prefers-rs256"),
    pytest.param(_pem(RSA), ["ES256", "PS256"], "PS256", id="rsa-ps256-only"),
    pytest.param(_pem(RSA), ["PS512", "HS256"], "PS512", id="rsa-ps512-only"),
    pytest.param(_pem(EC), ["HS256", "RS256", "PS256", "ES256", "EdDSA"], "ES256", id="ec"),
    pytest.param(_pem(ED), ["RS256", "EdDSA", "Ed25519"], "Ed25519", id="ed25519-preferred"),
    pytest.param(_pem(ED), ["RS256", "EdDSA"], "EdDSA", id="eddsa-older-idp"),
    pytest.param(_pem(ED), [], "Ed25519", id="empty-list-is-no-limit"),
])
def test_the_algorithm_fits_the_key_and_the_idp(text: str, supported: Any, alg: str) -> None:
    assert load_client_key(text).algorithm_for(supported) == alg


@pytest.mark.parametrize(("text", "supported"), [
    pytest.param(_pem(EC), ["RS256", "PS256"], id="ec-key-rsa-idp"),
    pytest.param(_pem(RSA), ["ES256", "EdDSA"], id="rsa-key-ec-idp"),
    pytest.param(_pem(ED), ["HS256"], id="ed25519-key-hmac-idp"),
])
def test_no_fitting_algorithm_is_a_mismatch_naming_both_sides(text: str, supported: Any) -> None:
    with pytest.raises(ClientKeyMismatch) as exc:
        load_client_key(text).algorithm_for(supported)
    assert "token_endpoint_auth_signing_alg_values_supported" in str(exc.value)
    assert all(a in str(exc.value) for a in supported)


# --- keys that are refused, with a message saying why -------------------------------------


def _ec_jwk_with_foreign_public_part() -> str:
    doc, other = json.loads(_jwk(EC)), json.loads(_jwk(ec.generate_private_key(ec.SECP256R1())))
    return json.dumps({**doc, "x": other["x"], "y": other["y"]})


BAD_KEYS = [
    pytest.param("not a key", "neither a PEM private key", id="text"),
    pytest.param("/run/secrets/key.pem", "write file:/path", id="bare-path"),
    pytest.param("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
                 "not a readable PEM private key", id="broken-pem"),
    pytest.param(_pem(EC).replace("\n", "\\n"), "literal \\n", id="escaped-newlines"),
    pytest.param(EC.public_key().public_bytes(ser.Encoding.PEM,
                                              ser.PublicFormat.SubjectPublicKeyInfo).decode(),
                 "is a public key", id="public-pem"),
    pytest.param(EC.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                  ser.BestAvailableEncryption(b"pw")).decode(),
                 "encrypted PEM", id="encrypted-pem"),
    pytest.param("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                 "a certificate, not a private key", id="certificate"),
    pytest.param(_pem(rsa.generate_private_key(65537, 1024)), "RSA key of 1024 bits",
                 id="rsa-1024-pem"),
    pytest.param(_jwk(rsa.generate_private_key(65537, 1024)), "RSA key of 1024 bits",
                 id="rsa-1024-jwk"),
    pytest.param(_pem(ec.generate_private_key(ec.SECP384R1())), "curve secp384r1",
                 id="ec-p384-pem"),
    pytest.param(_jwk(ec.generate_private_key(ec.SECP256K1())), "curve secp256k1",
                 id="ec-secp256k1-jwk"),
    pytest.param(_pem(ed448.Ed448PrivateKey.generate()), "Ed448", id="ed448-pem"),
    pytest.param(_pem(x25519.X25519PrivateKey.generate()), "X25519", id="x25519-pem"),
    pytest.param(_pem(dsa.generate_private_key(2048)), "DSA", id="dsa-pem"),
    pytest.param(json.dumps({"kty": "OKP", "crv": "X25519", "x": "AA", "d": "AA"}),
                 "curve 'X25519'", id="x25519-jwk"),
    pytest.param('{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}',
                 "symmetric (oct/HMAC)", id="hmac-jwk"),
    pytest.param(json.dumps({k: v for k, v in json.loads(_jwk(EC)).items() if k != "d"}),
                 "public JWK", id="public-jwk"),
    pytest.param(_jwk(EC, use="enc"), "use 'enc'", id="encryption-jwk"),
    pytest.param(_jwk(EC, alg="RS256"), "alg 'RS256', which does not fit", id="alg-mismatch"),
    pytest.param(_jwk(EC, alg="none"), "alg 'none'", id="alg-none"),
    pytest.param(_ec_jwk_with_foreign_public_part(), "EC JWK", id="foreign-public-part"),
    pytest.param('{"kty": "EC"}', "curve (none)", id="bare-kty"),
    pytest.param('{"kty": "EC", "crv": "P-256", "d": "!!"}', "malformed EC JWK",
                 id="malformed-members"),
    pytest.param('{"kid": "x"}', "without 'kty'", id="no-kty"),
    pytest.param('{"keys": []}', "JWK Set with 0 keys", id="empty-jwks"),
    pytest.param('{"kty": "RSA"', "not valid JSON", id="broken-json"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_KEYS)
def test_unusable_keys_are_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ClientKeyError) as exc:
        load_client_key(text)
    assert problem in str(exc.value)


def _settings(private_key: str, tmp_path: Path) -> Path:
    (tmp_path / "key").write_text(private_key)
    path = tmp_path / "bffgate.toml"
    path.write_text(
        '[server]\npublic_url = "https://app.example.com"\n'
        '[oidc]\nissuer = "https://idp.example.com"\nclient_id = "bffgate"\n'
        f'client_auth = "private_key_jwt"\nprivate_key = "file:{tmp_path / "key"}"\n'
        f'[cookie]\nsecret_keys = ["{"k" * 32}"]\n'
        '[[routes]]\nprefix = "/api"\nupstream = "http://api:8000"\ntoken = "user"\n')
    return path


@pytest.mark.parametrize(("text", "problem"), BAD_KEYS)
def test_check_config_names_oidc_private_key_and_the_problem(
        text: str, problem: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _settings(text, tmp_path)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert [m for m in exc.value.messages if m.startswith("oidc.private_key: ")
            and problem in m], exc.value.messages
    assert cli_main(["check-config", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "oidc.private_key: " in err and problem in err
    assert "AAAA" not in err and '"d"' not in err  # no key material in the message


@pytest.mark.parametrize("text", [_pem(EC), _jwk(ED), _jwk(RSA, kid="k1")])
def test_check_config_accepts_a_usable_key(text: str, tmp_path: Path) -> None:
    assert cli_main(["check-config", "--config", str(_settings(text, tmp_path))]) == 0


# --- the client: one assertion per call, signed as agreed ---------------------------------


class FakeIdP:
    """Discovery (with the assertion algorithms the test chooses) and a token endpoint."""

    def __init__(self, algs: list[str] | None) -> None:
        self.algs = algs
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/.well-known/openid-configuration":
            doc: dict[str, Any] = {
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "revocation_endpoint": f"{ISSUER}/revoke",
                "code_challenge_methods_supported": ["S256"]}
            if self.algs is not None:
                doc["token_endpoint_auth_signing_alg_values_supported"] = self.algs
            return httpx.Response(200, json=doc)
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer",
                                             "expires_in": 300})
        return httpx.Response(200)

    def assertions(self) -> list[str]:
        return [parse_qs(r.content.decode())["client_assertion"][0]
                for r in self.requests if r.method == "POST"]


def _client(idp: FakeIdP, private_key: str) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    clock = FrozenClock(NOW)
    rp = RelyingParty(issuer=ISSUER, client_id="bff", client_secret="",
                      client_auth="private_key_jwt", private_key=private_key,
                      redirect_uri="https://app.example.com/bff/callback", scopes=("openid",),
                      id_token_algs=("RS256",), clock_skew=60, use_par=False,
                      extra_auth_params={})
    return OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


def _verify(assertion: str, public: Any, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "EdDSA" is deprecated in joserfc (RFC 9864)
        obj = jws.deserialize_compact(assertion, public, algorithms=[alg])
    return dict(obj.protected), json.loads(obj.payload)


@pytest.mark.parametrize(("text", "cls", "algs", "alg"), [
    pytest.param(_pem(RSA), RSAKey, None, "RS256", id="rsa-pem"),
    pytest.param(_jwk(RSA), RSAKey, ["PS256"], "PS256", id="rsa-jwk-ps256"),
    pytest.param(_pem(EC), ECKey, ["RS256", "ES256"], "ES256", id="ec-pem"),
    pytest.param(_jwk(EC), ECKey, ["ES256"], "ES256", id="ec-jwk"),
    pytest.param(_pem(ED), OKPKey, ["RS256", "Ed25519", "EdDSA"], "Ed25519", id="ed25519-pem"),
    pytest.param(_jwk(ED), OKPKey, ["EdDSA"], "EdDSA", id="ed25519-jwk-eddsa"),
])
async def test_token_and_revocation_calls_carry_an_assertion_signed_with_the_agreed_alg(
        text: str, cls: Any, algs: list[str] | None, alg: str) -> None:
    idp = FakeIdP(algs)
    client = _client(idp, text)
    await client.exchange_code("c", "v" * 43)
    assert await client.revoke("rt")
    key = load_client_key(text)
    public = cls.import_key(key.key.as_dict(private=False))
    first, second = idp.assertions()
    for assertion in (first, second):
        header, claims = _verify(assertion, public, alg)
        assert (header["alg"], header["kid"]) == (alg, key.kid)
        assert claims["iss"] == claims["sub"] == "bff"
        assert claims["aud"] == f"{ISSUER}/token"
        assert claims["iat"] == NOW and claims["exp"] == NOW + 60
    assert _verify(first, public, alg)[1]["jti"] != _verify(second, public, alg)[1]["jti"]


async def test_an_idp_that_takes_no_fitting_algorithm_is_a_typed_error_not_a_crash() -> None:
    idp = FakeIdP(["RS256", "PS256"])
    with pytest.raises(ProviderMisconfigured, match=r"oidc\.private_key: .*EC P-256 key"):
        await _client(idp, _pem(EC)).exchange_code("c", "v" * 43)
    assert not [r for r in idp.requests if r.url.path == "/token"]  # nothing sent unsigned


@pytest.mark.parametrize("make", [
    pytest.param(lambda: "garbage", id="garbage"),
    pytest.param(lambda: _pem(ec.generate_private_key(ec.SECP384R1())), id="p384"),
])
def test_the_client_refuses_a_bad_key_at_startup(make: Callable[[], str]) -> None:
    with pytest.raises(ClientKeyError):
        _client(FakeIdP(None), make())
