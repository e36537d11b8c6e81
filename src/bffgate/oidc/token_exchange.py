"""OAuth 2.0 Token Exchange (RFC 8693) at the token endpoint: the user's access token for one
meant for another audience, resource (RFC 8707) or scope, with the client's own credentials.

The POST, client authentication and answer parsing are OidcClient.token_request's, so the
errors are the other grants' too: ``GrantRejected`` (``invalid_grant``: the subject token
is not active; ``invalid_client``, ``unauthorized_client``), ``TokenRejected`` with the
OAuth ``error`` (``invalid_target``: an audience the IdP does not serve; ``invalid_scope``,
...), ``ProviderUnavailable`` (transport, 5xx, ``temporarily_unavailable``).
"""

from __future__ import annotations

from bffgate.oidc.client import OidcClient, TokenResponse
from bffgate.oidc.discovery import ProviderMetadata

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def exchange_form(subject_token: str, *, audience: str = "", resource: str = "",
                  scope: tuple[str, ...] = ()) -> dict[str, str]:
    """The grant's form (RFC 8693 2.1): an access token for an access token, and the
    target settings that are set (empty ones are left out, never sent empty)."""
    form = {
        "grant_type": GRANT_TYPE,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
    }
    if audience:
        form["audience"] = audience
    if resource:
        form["resource"] = resource
    if scope:
        form["scope"] = " ".join(scope)
    return form


async def exchange_token(oidc: OidcClient, subject_token: str, *, audience: str = "",
                         resource: str = "", scope: tuple[str, ...] = ()) -> TokenResponse:
    """Exchange ``subject_token`` (the user's access token). Only the answer's access token
    and expiry are for use: a refresh or ID token in it is never kept by the caller."""
    return await oidc.token_request(exchange_form(
        subject_token, audience=audience, resource=resource, scope=scope))


def advertises_exchange(meta: ProviderMetadata) -> bool:
    """Whether discovery lists the grant in ``grant_types_supported``."""
    return GRANT_TYPE in meta.grant_types
