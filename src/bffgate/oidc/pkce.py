"""Pure PKCE (RFC 7636, S256 only) and the other per-login random values."""

from __future__ import annotations

import secrets

from authlib.oauth2.rfc7636 import create_s256_code_challenge

CHALLENGE_METHOD = "S256"  # the only method bffgate ever sends; "plain" does not exist here


def new_code_verifier() -> str:
    """64 characters from 48 CSPRNG bytes (RFC 7636 4.1 allows 43-128 unreserved chars)."""
    return secrets.token_urlsafe(48)


def s256_challenge(verifier: str) -> str:
    if not 43 <= len(verifier) <= 128:
        raise ValueError("code_verifier must be 43-128 characters")
    return str(create_s256_code_challenge(verifier))


def new_state() -> str:
    """256 bits: the login record's key."""
    return secrets.token_urlsafe(32)


def new_nonce() -> str:
    return secrets.token_urlsafe(32)
