"""The development identity provider's ES256 signing key: JWKS, signing and verification."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

ALGORITHM = "ES256"


class Signer:
    """Holds one P-256 key generated at startup; signs and verifies the provider's JWTs."""

    def __init__(self, issuer: str, now: Callable[[], float]) -> None:
        self._issuer = issuer
        self._now = now
        self._key = ECKey.generate_key(
            "P-256", parameters={"alg": ALGORITHM, "use": "sig"}, private=True, auto_kid=True
        )

    @property
    def kid(self) -> str:
        """The key id published in the JWKS and every JWT header."""
        return str(self._key.kid)

    def jwks(self) -> dict[str, Any]:
        """The public key set."""
        return {"keys": [self._key.as_dict(private=False)]}

    def sign(self, claims: dict[str, Any], typ: str) -> str:
        """Sign claims as a compact JWT with the given ``typ`` header."""
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        return jwt.encode(header, claims, self._key, algorithms=[ALGORITHM])

    def verify(self, token: str, typ: str, *, check_exp: bool = True) -> dict[str, Any] | None:
        """Claims of a JWT this provider signed with ``typ``, or None if it is not valid."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[ALGORITHM])
        except (JoseError, ValueError):
            return None
        claims = decoded.claims
        if str(decoded.header.get("typ", "")).lower() != typ.lower():
            return None
        if claims.get("iss") != self._issuer:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or (check_exp and exp <= self._now()):
            return None
        return claims


def at_hash(access_token: str) -> str:
    """OIDC ``at_hash``: left half of the SHA-256 of the access token, base64url."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")
