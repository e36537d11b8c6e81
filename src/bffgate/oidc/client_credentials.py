"""The client-credentials grant (RFC 6749 4.4): a token for the gateway itself, asked for a
route's scope, audience and resource indicator (RFC 8707).

The POST, client authentication and answer parsing are OidcClient.token_request's, so the
errors are the other grants': ``ProviderUnavailable`` (transport, 5xx,
``temporarily_unavailable``), ``GrantRejected`` / ``TokenRejected`` with the OAuth ``error``
(``invalid_client``, ``unauthorized_client``, ``invalid_scope``, ``invalid_target``, ...).
"""

from __future__ import annotations

from bffgate.oidc.client import OidcClient, TokenResponse
from bffgate.oidc.discovery import ProviderMetadata

GRANT_TYPE = "client_credentials"


def client_credentials_form(*, scope: tuple[str, ...] = (), audience: str = "",
                            resource: str = "") -> dict[str, str]:
    """The grant's form: the settings that are set (an empty one is left out, never sent
    empty)."""
    form = {"grant_type": GRANT_TYPE}
    if scope:
        form["scope"] = " ".join(scope)
    if audience:
        form["audience"] = audience
    if resource:
        form["resource"] = resource
    return form


async def client_credentials(oidc: OidcClient, *, scope: tuple[str, ...] = (),
                             audience: str = "", resource: str = "") -> TokenResponse:
    """A client-credentials token. Only the access token and its expiry are for use: a
    refresh token in the answer (RFC 6749 4.4.3 says there is none) is never kept."""
    return await oidc.token_request(client_credentials_form(
        scope=scope, audience=audience, resource=resource))


def advertises_client_credentials(meta: ProviderMetadata) -> bool:
    """Whether discovery lists the grant in ``grant_types_supported``."""
    return GRANT_TYPE in meta.grant_types
