"""Introspection (RFC 7662) at the test IdP, for e2e tests of what an upstream received: who
a token is for (``sub`` or none), its client, scope and audience."""

from __future__ import annotations

from typing import Any

from support.idp import OidcProviderProcess


def introspect(op: OidcProviderProcess, token: str, client_id: str,
               client_secret: str) -> dict[str, Any]:
    """The IdP's view of ``token`` (``{"active": false}`` when it is not)."""
    return op.introspect(token, client_id, client_secret)


def scopes(info: dict[str, Any]) -> set[str]:
    return set(str(info.get("scope") or "").split())


def assert_client_token(info: dict[str, Any], *, client_id: str, scope: str | None = None,
                        aud: str | None = None) -> None:
    """An active client-credentials token: the client's own (no ``sub``: no user), with
    exactly ``scope`` and (when given) audience ``aud``; with ``aud`` None, none at all."""
    assert info.get("active") is True, info
    assert "sub" not in info, info
    assert info.get("client_id") == client_id, info
    if scope is not None:
        assert scopes(info) == set(scope.split()), info
    assert info.get("aud") == aud, info


def assert_user_token(info: dict[str, Any], *, sub: str, client_id: str) -> None:
    """An active token issued to ``client_id`` for the user ``sub``."""
    assert info.get("active") is True, info
    assert info.get("sub") == sub and info.get("client_id") == client_id, info


def assert_exchanged_token(info: dict[str, Any], *, sub: str, client_id: str, aud: str,
                           scope: str | None = None) -> None:
    """An active token from a token exchange (RFC 8693): for the user ``sub``, issued to
    ``client_id``, meant for ``aud``, with exactly ``scope`` (none when None)."""
    assert_user_token(info, sub=sub, client_id=client_id)
    assert info.get("aud") == aud, info
    assert scopes(info) == set((scope or "").split()), info
