"""What a DPoP-protected resource server checks (RFC 9449 7.1), for tests: the proof a request
carries (signature with its embedded key, typ, alg, htm, htu, ath, iat window, unique jti) and,
through the IdP's introspection, that the token is bound to that key (cnf.jkt)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey

from bffgate.oidc.dpop import PROOF_TYPE, ath, htu
from support.idp import OidcProviderProcess
from support.secrets_scan import remember
from support.upstream import header_values

IAT_WINDOW = 60  # seconds either side of now


class ProofInvalid(AssertionError):
    """A DPoP proof a resource server must refuse; the message names the check."""


@dataclass(frozen=True)
class CheckedProof:
    jkt: str  # RFC 7638 thumbprint of the proof's key
    claims: dict[str, Any]
    header: dict[str, Any]


class ProofVerifier:
    """Verifies proofs for one resource server; remembers the jti values it has seen."""

    def __init__(self, iat_window: int = IAT_WINDOW) -> None:
        self._seen_jti: set[str] = set()
        self._window = iat_window

    def verify(self, proof: str, *, method: str, url: str, access_token: str | None,
               nonce: str | None = None, now: float | None = None) -> CheckedProof:
        remember("dpop_proof", proof)
        try:
            head = _header(proof)
        except ValueError as exc:
            raise ProofInvalid(f"header: {exc}") from None
        if head.get("typ") != PROOF_TYPE:
            raise ProofInvalid("typ")
        if head.get("alg") != "ES256":
            raise ProofInvalid("alg")
        jwk = head.get("jwk")
        if not isinstance(jwk, dict) or "d" in jwk:
            raise ProofInvalid("jwk")  # a public key, never a private one
        key = ECKey.import_key(jwk)
        try:
            token = jwt.decode(proof, key, algorithms=["ES256"])
        except Exception as exc:  # any failure is a bad signature here
            raise ProofInvalid(f"signature: {type(exc).__name__}") from None
        claims = dict(token.claims)
        if claims.get("htm") != method.upper():
            raise ProofInvalid("htm")
        if claims.get("htu") != htu(url):
            raise ProofInvalid(f"htu: {claims.get('htu')!r} != {htu(url)!r}")
        iat = claims.get("iat")
        t = time.time() if now is None else now
        if not isinstance(iat, int) or abs(t - iat) > self._window:
            raise ProofInvalid("iat")
        jti = claims.get("jti")
        if not isinstance(jti, str) or len(jti) < 16 or jti in self._seen_jti:
            raise ProofInvalid("jti")
        self._seen_jti.add(jti)
        if access_token is not None and claims.get("ath") != ath(access_token):
            raise ProofInvalid("ath")
        if access_token is None and "ath" in claims:
            raise ProofInvalid("ath present on a token request")
        if nonce is not None and claims.get("nonce") != nonce:
            raise ProofInvalid("nonce")
        return CheckedProof(key.thumbprint(), claims, head)


def _header(proof: str) -> dict[str, Any]:
    first = proof.split(".")[0]
    doc = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
    if not isinstance(doc, dict):
        raise ValueError("not an object")
    return doc


def dpop_request(record: dict[str, Any]) -> tuple[str, str]:
    """(access token, proof) of a request an upstream recorded with ``Authorization: DPoP``."""
    auth = header_values(record, "authorization")
    proofs = header_values(record, "dpop")
    if len(auth) != 1 or not auth[0].startswith("DPoP "):
        raise ProofInvalid(f"Authorization is not one DPoP header: {[a[:5] for a in auth]}")
    if len(proofs) != 1:
        raise ProofInvalid(f"{len(proofs)} DPoP headers")
    token = auth[0][len("DPoP "):]
    remember("access_token", token)
    return token, proofs[0]


class DpopIdp(OidcProviderProcess):
    """The test OP with IDP_CONFIG.dpop_require_nonce set as asked."""

    def __init__(self, *args: Any, require_nonce: bool = False, enabled: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_nonce, self.enabled = require_nonce, enabled

    def _config(self) -> str:
        doc = json.loads(super()._config())
        doc["dpop_require_nonce"] = self.require_nonce
        doc["dpop"] = self.enabled
        return json.dumps(doc)
