"""The client-token cache shared by the replicas: sealed blobs in the store, one per route
token request, each kept only until its token is due for renewal.

A blob is sealed (AES-256-GCM, crypto.sealing) under a secret derived from the cookie secret
keys (the newest seals, any of them opens: key rotation), with the cache key as associated
data; Redis alone never shows a token. A blob that no key opens (a replica with other keys,
a tampered value) is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bffgate import compact_json
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.store.base import TokenCache
from bffgate.tokens.credential import TokenRequest

# Renewal point: a token is used until RENEW_MARGIN seconds before it expires, or until
# RENEW_FRACTION of its lifetime before, whichever comes later (a 1-hour token is renewed
# 30 s early, a 60 s token 6 s early): a request never leaves with a token about to die,
# and short-lived tokens are not renewed half-way through their life.
RENEW_MARGIN = 30.0
RENEW_FRACTION = 0.1
# A token whose expiry the IdP does not say (no expires_in, not a JWT): used this long.
UNKNOWN_LIFETIME = 60.0
_INFO = b"bffgate client-token cache v1"


@dataclass(frozen=True, repr=False)
class CachedToken:
    """A client-credentials access token and when to renew it. repr never shows the token."""

    token: str
    use_by: float  # renewed from this time on (seconds, the gateway clock)
    expires_at: float | None

    @classmethod
    def issued(cls, token: str, expires_at: float | None, now: float) -> CachedToken:
        if expires_at is None:
            return cls(token, now + UNKNOWN_LIFETIME, None)
        lifetime = expires_at - now
        return cls(token, expires_at - min(RENEW_MARGIN, max(0.0, lifetime) * RENEW_FRACTION),
                   expires_at)

    def usable(self, now: float) -> bool:
        return now < self.use_by

    def __repr__(self) -> str:
        return f"CachedToken(token=True, use_by={self.use_by}, expires_at={self.expires_at})"


def cache_key(issuer: str, client_id: str, request: TokenRequest) -> str:
    """One key per (IdP, client, scope, audience, resource): routes asking the same share."""
    doc = json.dumps([issuer, client_id, list(request.scope), request.audience,
                      request.resource], separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:40]


class SharedTokenCache:
    def __init__(self, store: TokenCache, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            msg = "at least one cookie secret key is required"
            raise ValueError(msg)
        self._store = store
        # newest first: the one that seals, then the older ones that still open
        self._secrets = [hmac.new(k.encode(), _INFO, hashlib.sha256).digest()
                         for k in reversed(secret_keys)]

    async def get(self, key: str, now: float) -> CachedToken | None:
        blob = await self._store.get_cached_token(key)
        if blob is None:
            return None
        for secret in self._secrets:
            try:
                doc = json.loads(open_sealed(secret, blob.decode("ascii"), key.encode()))
            except (SealBroken, UnicodeDecodeError, ValueError):
                continue
            found = _decode(doc)
            return found if found is not None and found.usable(now) else None
        return None

    async def put(self, key: str, token: CachedToken, now: float) -> None:
        ttl_ms = math.floor((token.use_by - now) * 1000)
        if ttl_ms <= 0:  # due already (a token that lives less than a moment): not shared
            return
        doc = {"at": token.token, "use_by": token.use_by, "exp": token.expires_at}
        blob = seal(self._secrets[0], compact_json.dumps(doc), key.encode())
        await self._store.put_cached_token(key, blob.encode("ascii"), ttl_ms)


def _decode(doc: object) -> CachedToken | None:
    if not isinstance(doc, dict):
        return None
    at, use_by, exp = doc.get("at"), doc.get("use_by"), doc.get("exp")
    if not isinstance(at, str) or not at or not isinstance(use_by, int | float):
        return None
    if exp is not None and not isinstance(exp, int | float):
        return None
    return CachedToken(at, float(use_by), float(exp) if exp is not None else None)
