"""A DEVELOPMENT-ONLY OpenID provider for ``bffgate demo``: in memory, one client, no passwords."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bffgate.demo._idpauthorize import SCOPES, AuthorizeEndpoint
from bffgate.demo._idpkeys import Signer
from bffgate.demo._idplogout import EndSessionEndpoint
from bffgate.demo._idpstate import IdpState
from bffgate.demo._idptokens import TokenService
from bffgate.demo._oauthhttp import Client

logger = logging.getLogger(__name__)


class _DevIdp:
    """The provider's parts: discovery and JWKS here, the endpoints in their modules."""

    def __init__(
        self,
        issuer: str,
        client: Client,
        access_token_ttl: int,
        refresh_token_ttl: int,
        now: Callable[[], float],
        registration_hint: str | None,
    ) -> None:
        self.issuer = issuer
        self.client = client
        self.state = IdpState(now)
        self.signer = Signer(issuer, now)
        self.tokens = TokenService(
            issuer, client, self.state, self.signer, access_token_ttl, refresh_token_ttl, now
        )
        self.authorize = AuthorizeEndpoint(issuer, client, self.state, now, registration_hint)
        self.logout = EndSessionEndpoint(issuer, client, self.state, self.signer)

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.url("/authorize"),
                "token_endpoint": self.url("/token"),
                "jwks_uri": self.url("/jwks"),
                "userinfo_endpoint": self.url("/userinfo"),
                "revocation_endpoint": self.url("/revoke"),
                "introspection_endpoint": self.url("/introspect"),
                "end_session_endpoint": self.url("/end_session"),
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code", "refresh_token"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "revocation_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "introspection_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "id_token_signing_alg_values_supported": ["ES256"],
                "authorization_response_iss_parameter_supported": True,
                "scopes_supported": list(SCOPES),
                "subject_types_supported": ["public"],
                "claims_supported": [
                    "iss",
                    "sub",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "nonce",
                    "sid",
                    "name",
                    "preferred_username",
                    "email",
                ],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse(self.signer.jwks())



def create_dev_idp(
    issuer: str,
    client_id: str,
    client_secret: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
    access_token_ttl: int = 300,
    refresh_token_ttl: int = 86400,
    now: Callable[[], float] = time.time,
    registration_hint: str | None = None,
) -> Starlette:
    """Build the development identity provider's ASGI app. NEVER use it in production.
    ``registration_hint`` tells, on the unregistered-redirect_uri page, how to register one."""
    logger.warning(
        "development identity provider: NOT FOR PRODUCTION (issuer=%s, any username signs "
        "in, no password is checked, all state is in memory)",
        issuer,
    )
    client = Client(
        client_id, client_secret, tuple(redirect_uris), tuple(post_logout_redirect_uris)
    )
    idp = _DevIdp(
        issuer, client, access_token_ttl, refresh_token_ttl, now, registration_hint
    )
    routes = [
        Route("/.well-known/openid-configuration", idp.discovery, methods=["GET"]),
        Route("/jwks", idp.jwks, methods=["GET"]),
        Route("/authorize", idp.authorize.authorize_form, methods=["GET"]),
        Route("/authorize", idp.authorize.authorize_login, methods=["POST"]),
        Route("/token", idp.tokens.token, methods=["POST"]),
        Route("/userinfo", idp.tokens.userinfo, methods=["GET", "POST"]),
        Route("/introspect", idp.tokens.introspect, methods=["POST"]),
        Route("/revoke", idp.tokens.revoke, methods=["POST"]),
        Route("/end_session", idp.logout.end_session, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
