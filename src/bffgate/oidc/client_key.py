"""The ``private_key_jwt`` signing key: read once from PEM or JWK, checked (RSA >= 2048 bits,
EC P-256 or Ed25519; private, asymmetric, able to sign), given a ``kid``, and matched to the
assertion algorithms the IdP accepts. Every problem is a ``ClientKeyError`` whose message says
what is wrong without showing any key material.
"""

from __future__ import annotations

import base64
import json
import warnings
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

SigningKey = RSAKey | ECKey | OKPKey

MIN_RSA_BITS = 2048
# The algorithms each kind of key can sign with, in our order of preference. RS256 leads for
# RSA because it is what every IdP accepts (and what bffgate always sent before); Ed25519 (the
# fully specified name, RFC 9864) leads the deprecated polymorphic "EdDSA".
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "RSA": ("RS256", "PS256", "RS384", "PS384", "RS512", "PS512"),
    "EC P-256": ("ES256",),
    "Ed25519": ("Ed25519", "EdDSA"),
}
_SUPPORTED = "use an RSA (>= 2048 bits), EC P-256 or Ed25519 private key"
_PROBE = b"bffgate client key check"


class ClientKeyError(ValueError):
    """The configured key can't sign client assertions (the message says why; no key data)."""


class ClientKeyMismatch(ClientKeyError):
    """The key is fine, but the IdP accepts no assertion algorithm that fits it."""


@dataclass(frozen=True, repr=False)
class ClientKey:
    """A checked private key for client assertions. repr never shows key material."""

    key: SigningKey
    kid: str
    kind: str  # a key of ALGORITHMS
    pinned_alg: str | None  # the JWK's own "alg", if it had one

    def __repr__(self) -> str:
        return f"ClientKey(kind={self.kind!r}, kid={self.kid!r}, alg={self.pinned_alg!r})"

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The algorithms this key may sign with, most preferred first."""
        return (self.pinned_alg,) if self.pinned_alg else ALGORITHMS[self.kind]

    def algorithm_for(self, supported: object) -> str:
        """The assertion algorithm to use with an IdP whose metadata lists ``supported``
        (``token_endpoint_auth_signing_alg_values_supported``; absent or empty: no limit)."""
        if not isinstance(supported, list | tuple) or not supported:
            return self.algorithms[0]
        offered = {a for a in supported if isinstance(a, str)}
        for alg in self.algorithms:
            if alg in offered:
                return alg
        accepted = ", ".join(sorted(offered)) or "nothing usable"
        raise ClientKeyMismatch(
            f"the IdP accepts client assertions signed with {accepted} "
            f"(token_endpoint_auth_signing_alg_values_supported); this {self.kind} key signs "
            f"only with {', '.join(self.algorithms)}")


def load_client_key(text: str) -> ClientKey:
    """Parse and check ``oidc.private_key`` (PEM or JWK JSON); raises ``ClientKeyError``."""
    data = text.strip()
    if not data:
        raise ClientKeyError("is empty")
    if data.startswith("{"):
        return _from_jwk_text(data)
    if data.startswith("-----BEGIN"):
        return _from_pem(data)
    hint = "; to read the key from a file write file:/path" if data.startswith(("/", ".")) \
        else ""
    raise ClientKeyError("is neither a PEM private key (-----BEGIN PRIVATE KEY-----) nor a JWK "
                         f"(a JSON object){hint}")


# ------------------------------------------------------------------------------------ PEM


def _from_pem(data: str) -> ClientKey:
    first_line = data.splitlines()[0]
    if "\\n" in first_line:
        raise ClientKeyError("is a PEM with literal \\n sequences instead of line breaks")
    if "CERTIFICATE" in first_line:
        raise ClientKeyError(f"is a certificate, not a private key: {_SUPPORTED}")
    if "PUBLIC KEY" in first_line:
        raise ClientKeyError("is a public key: give the private key (the IdP holds the public "
                             "one)")
    if "ENCRYPTED" in first_line or "Proc-Type: 4,ENCRYPTED" in data:
        raise ClientKeyError("is an encrypted PEM: bffgate takes no key password; give the key "
                             "unencrypted (from a protected file or secret)")
    try:
        private = serialization.load_pem_private_key(data.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ClientKeyError(f"is not a readable PEM private key: {_SUPPORTED}") from exc
    if isinstance(private, rsa.RSAPrivateKey):
        _check_rsa_size(private.key_size)
        key: SigningKey = RSAKey.import_key(private)
        kind = "RSA"
    elif isinstance(private, ec.EllipticCurvePrivateKey):
        _check_curve(private.curve.name)
        key, kind = ECKey.import_key(private), "EC P-256"
    elif isinstance(private, ed25519.Ed25519PrivateKey):
        key, kind = OKPKey.import_key(private), "Ed25519"
    elif isinstance(private, ed448.Ed448PrivateKey):
        raise ClientKeyError(f"is an Ed448 key, which is not supported: {_SUPPORTED}")
    else:
        raise ClientKeyError(f"is a {type(private).__name__.removesuffix('PrivateKey')} key, which cannot "
                             f"sign client assertions: {_SUPPORTED}")
    return _checked(key, kind, kid=None, pinned=None, public=None)


def _check_rsa_size(bits: int) -> None:
    if bits < MIN_RSA_BITS:
        raise ClientKeyError(f"is an RSA key of {bits} bits: use at least {MIN_RSA_BITS} bits")


def _check_curve(name: str) -> None:
    if name not in ("secp256r1", "P-256"):
        raise ClientKeyError(f"is an EC key on curve {name}, which is not supported: use P-256 "
                             "(ES256), Ed25519 or RSA")


# ------------------------------------------------------------------------------------ JWK

_PUBLIC_MEMBERS = {"RSA": ("kty", "n", "e"), "EC": ("kty", "crv", "x", "y"),
                   "OKP": ("kty", "crv", "x")}


def _from_jwk_text(data: str) -> ClientKey:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ClientKeyError("starts like a JWK but is not valid JSON") from exc
    if isinstance(doc, dict) and "keys" in doc:
        keys = doc["keys"]
        if not isinstance(keys, list) or len(keys) != 1:
            count = len(keys) if isinstance(keys, list) else "no list of"
            raise ClientKeyError(f"is a JWK Set with {count} keys: give exactly one private key")
        doc = keys[0]
    if not isinstance(doc, dict) or "kty" not in doc:
        raise ClientKeyError("is a JSON value without 'kty': not a JWK")
    return _from_jwk(doc)


def _from_jwk(doc: dict[str, Any]) -> ClientKey:
    kty = doc["kty"]
    if kty == "oct":
        raise ClientKeyError("is a symmetric (oct/HMAC) key: private_key_jwt needs an asymmetric "
                             "private key (for a shared secret use client_secret_basic)")
    if kty not in _PUBLIC_MEMBERS:
        raise ClientKeyError(f"is a JWK of kty {str(kty)[:16]!r}, which is not supported: "
                             f"{_SUPPORTED}")
    if kty == "EC":
        _check_curve(str(doc.get("crv", "(none)"))[:16])
    if kty == "OKP" and doc.get("crv") != "Ed25519":
        raise ClientKeyError(f"is an OKP key on curve {str(doc.get('crv'))[:16]!r}, which is "
                             f"not supported: {_SUPPORTED}")
    if "d" not in doc:
        raise ClientKeyError("is a public JWK (no 'd'): give the private key (the IdP holds the "
                             "public one)")
    if doc.get("use", "sig") != "sig":
        raise ClientKeyError(f"has use {str(doc['use'])[:16]!r}: a client assertion key must be "
                             "'sig' (or have no 'use')")
    ops = doc.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "sign" not in ops):
        raise ClientKeyError("has key_ops without 'sign'")
    kid = doc.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ClientKeyError("has a 'kid' that is not a non-empty string")
    kind = {"RSA": "RSA", "EC": "EC P-256", "OKP": "Ed25519"}[kty]
    alg = doc.get("alg")
    if alg is not None and alg not in ALGORITHMS[kind]:
        raise ClientKeyError(f"has alg {str(alg)[:16]!r}, which does not fit a {kind} key: use one "
                             f"of {', '.join(ALGORITHMS[kind])} or leave 'alg' out")
    if kty == "RSA":  # before joserfc sees it: it only warns about a short key
        _check_rsa_size(_bit_length(doc.get("n")))
    cls: type[SigningKey] = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[kty]  # type: ignore[assignment]
    try:
        key = cls.import_key(dict(doc))
        public = cls.import_key({k: doc[k] for k in _PUBLIC_MEMBERS[kty] if k in doc})
    except (JoseError, ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:
        raise ClientKeyError(f"is a malformed {kty} JWK (a member is missing or not valid "
                             "base64url)") from exc
    return _checked(key, kind, kid=kid, pinned=alg, public=public)


def _bit_length(n: object) -> int:
    if not isinstance(n, str):
        raise ClientKeyError("is an RSA JWK without a modulus 'n'")
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError as exc:
        raise ClientKeyError("is an RSA JWK whose 'n' is not base64url") from exc
    return int.from_bytes(raw, "big").bit_length()


# ------------------------------------------------------------------------------ the check


def _checked(key: SigningKey, kind: str, *, kid: str | None, pinned: str | None,
             public: SigningKey | None) -> ClientKey:
    """Sign a probe with every algorithm the key may use (so signing can never fail at token
    time) and verify it with the public half as given (a JWK whose public members belong to
    another key is refused: the IdP would reject every assertion)."""
    client_key = ClientKey(key=key, kid=kid or key.thumbprint(), kind=kind, pinned_alg=pinned)
    for alg in client_key.algorithms:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc flags "EdDSA" (RFC 9864) as deprecated
            try:
                signed = jws.serialize_compact({"alg": alg}, _PROBE, key, algorithms=[alg])
            except (JoseError, ValueError, TypeError) as exc:
                raise ClientKeyError(f"cannot sign with {alg}: {_SUPPORTED}") from exc
            if public is None:
                continue
            try:
                jws.deserialize_compact(signed, public, algorithms=[alg])
            except (JoseError, ValueError, TypeError) as exc:
                raise ClientKeyError("is a JWK whose public members do not belong to its private "
                                     "key") from exc
    return client_key
