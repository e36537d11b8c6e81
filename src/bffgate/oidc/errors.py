"""Errors of the OIDC layer, classified by type so callers never match message strings.

    OidcError
    ├── ProviderUnavailable     network failure, timeout, 5xx, unparsable response (transient)
    ├── ProviderMisconfigured   discovery/JWKS content unusable (issuer mismatch, no S256...)
    ├── TokenRejected           the token endpoint answered an OAuth error (error code kept)
    │   └── GrantRejected       invalid_grant / invalid_client / unauthorized_client (fatal)
    └── IdTokenInvalid          an ID token failed a check (``check`` names which)
"""

from __future__ import annotations


class OidcError(Exception):
    reason: str = "oidc_error"


class ProviderUnavailable(OidcError):
    reason = "idp_unavailable"


class ProviderMisconfigured(OidcError):
    reason = "idp_misconfigured"


class TokenRejected(OidcError):
    reason = "token_error"

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.description = description[:200]


class GrantRejected(TokenRejected):
    """The grant (code or refresh token) or the client is definitively refused."""

    FATAL = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


class IdTokenInvalid(OidcError):
    reason = "id_token_invalid"

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check
