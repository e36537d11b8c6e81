"""Startup checks of the route token modes against what the IdP advertises (discovery):
the static config rules can't see the IdP, so these run where startup fetches its metadata.
Each problem names the config key and what to do."""

from __future__ import annotations

from bffgate.config.model import Settings
from bffgate.oidc.client_credentials import advertises_client_credentials
from bffgate.oidc.discovery import ProviderMetadata
from bffgate.oidc.dpop import provider_problem
from bffgate.oidc.token_exchange import GRANT_TYPE as EXCHANGE_GRANT
from bffgate.oidc.token_exchange import advertises_exchange
from bffgate.tokens.client import CLIENT_MODES


def provider_problems(settings: Settings, meta: ProviderMetadata) -> list[str]:
    """Every route whose token mode needs a grant the IdP does not list."""
    problems = []
    for i, r in enumerate(settings.routes):
        if r.token in CLIENT_MODES and not advertises_client_credentials(meta):
            problems.append(
                f"routes[{i}].token: {r.token!r} needs the client_credentials grant, which "
                f"the IdP ({settings.oidc.issuer}) does not list in grant_types_supported: "
                "enable the grant for this client at the IdP, or use another token mode")
        if r.token == "exchange" and not advertises_exchange(meta):
            problems.append(
                f"routes[{i}].token: 'exchange' needs the token-exchange grant (RFC 8693, "
                f"{EXCHANGE_GRANT}), which the IdP ({settings.oidc.issuer}) does not list in "
                "grant_types_supported: enable it for this client at the IdP, or use another "
                "token mode")
    if settings.oidc.dpop and (p := provider_problem(meta.dpop_algs, settings.oidc.issuer)):
        problems.append(p)  # DPoP: the IdP must take our ES256 proofs
    return problems
