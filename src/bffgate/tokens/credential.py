"""What a proxied request carries to its upstream: a ``RouteCredential`` and its headers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Scheme = Literal["Bearer", "DPoP"]


@dataclass(frozen=True, repr=False)
class RouteCredential:
    """The token a route sends, and how. repr never shows the token.

    ``proof_key`` is what a DPoP proof is signed with (the session's key pair); None for a
    bearer token."""

    scheme: Scheme
    token: str
    proof_key: Any = None

    def __repr__(self) -> str:
        return f"RouteCredential(scheme={self.scheme!r}, token=True)"


@dataclass(frozen=True)
class TokenRequest:
    """What a route asks the IdP for (token = client | user_or_client | exchange): its
    settings ``scope``, ``audience`` and ``resource`` (RFC 8707)."""

    scope: tuple[str, ...] = ()
    audience: str = ""
    resource: str = ""


def authorization_headers(credential: RouteCredential | None, method: str,
                          url: str) -> list[tuple[bytes, bytes]]:
    """The headers that present ``credential`` on ``method url`` (the upstream request's
    full URL; a DPoP ``htu`` drops its query): none without a credential, one
    ``Authorization: Bearer`` for a bearer token."""
    if credential is None:
        return []
    if credential.scheme == "Bearer":
        return [(b"authorization", b"Bearer " + credential.token.encode("latin-1"))]
    # DPoP (RFC 9449): Authorization: DPoP <token> plus a fresh proof (tokens/dpop.py)
    return list(credential.proof_key.headers(credential.token, method, url))
