"""A DEVELOPMENT-ONLY OpenID provider for ``bffgate demo``: in memory, one client, no passwords."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bffgate.demo._idpkeys import Signer
from bffgate.demo._idppages import error_page, login_page, signed_out_page
from bffgate.demo._idpstate import AuthCode, IdpState, Login
from bffgate.demo._idptokens import TokenService
from bffgate.demo._oauthhttp import (
    NO_STORE,
    Client,
    is_s256_challenge,
    read_form,
    single_valued,
    with_query,
)

logger = logging.getLogger(__name__)

LOGIN_COOKIE = "devidp_login"
CODE_TTL = 60
SCOPES = ("openid", "profile", "email", "offline_access")
_AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class _AuthRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    nonce: str | None
    code_challenge: str
    prompt: str | None

    def form_fields(self) -> dict[str, str]:
        fields = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": self.scope,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }
        if self.state is not None:
            fields["state"] = self.state
        if self.nonce is not None:
            fields["nonce"] = self.nonce
        return fields


def _granted_scope(requested: str) -> str | None:
    names = requested.split()
    if "openid" not in names:
        return None
    # The demo always grants offline_access so that the gateway gets a refresh token.
    granted = [s for s in SCOPES if s in names or s == "offline_access"]
    return " ".join(granted)


class _DevIdp:
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
        self.registration_hint = registration_hint
        self.now = now
        self.state = IdpState(now)
        self.signer = Signer(issuer, now)
        self.tokens = TokenService(
            issuer, client, self.state, self.signer, access_token_ttl, refresh_token_ttl, now
        )
        self.secure_cookie = issuer.startswith("https://")

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    # -- discovery -------------------------------------------------------------------

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

    # -- authorization endpoint ------------------------------------------------------

    def _check_authorize(self, params: dict[str, str] | None) -> _AuthRequest | Response:
        if params is None:
            return error_page("A request parameter was repeated.")
        if params.get("client_id") != self.client.client_id:
            return error_page("Unknown client_id.", received=params.get("client_id", ""),
                              registered=(self.client.client_id,))
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in self.client.redirect_uris:
            return error_page("redirect_uri is not registered for this client.",
                              received=redirect_uri, registered=self.client.redirect_uris,
                              hint=self.registration_hint)
        state = params.get("state")

        def fail(error: str, description: str) -> Response:
            target = with_query(
                redirect_uri,
                {
                    "error": error,
                    "error_description": description,
                    "state": state,
                    "iss": self.issuer,
                },
            )
            return RedirectResponse(target, status_code=302)

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "only response_type=code is supported")
        scope = _granted_scope(params.get("scope", ""))
        if scope is None:
            return fail("invalid_scope", "scope must include openid")
        challenge = params.get("code_challenge")
        if not challenge:
            return fail("invalid_request", "code_challenge is required (PKCE)")
        if params.get("code_challenge_method") != "S256":
            return fail("invalid_request", "code_challenge_method must be S256")
        if not is_s256_challenge(challenge):
            return fail("invalid_request", "code_challenge is not a base64url SHA-256 value")
        return _AuthRequest(
            client_id=self.client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            state=state,
            nonce=params.get("nonce"),
            code_challenge=challenge,
            prompt=params.get("prompt"),
        )

    def _current_login(self, request: Request) -> Login | None:
        sid = request.cookies.get(LOGIN_COOKIE)
        return self.state.logins.get(sid) if sid else None

    def _issue_code(self, auth: _AuthRequest, login: Login) -> Response:
        code = self.state.issue_code(
            AuthCode(
                client_id=auth.client_id,
                redirect_uri=auth.redirect_uri,
                code_challenge=auth.code_challenge,
                nonce=auth.nonce,
                scope=auth.scope,
                login=login,
                expires_at=self.now() + CODE_TTL,
            )
        )
        target = with_query(
            auth.redirect_uri, {"code": code, "state": auth.state, "iss": self.issuer}
        )
        response = RedirectResponse(target, status_code=302, headers=NO_STORE)
        response.set_cookie(
            LOGIN_COOKIE, login.sid, httponly=True, samesite="lax", secure=self.secure_cookie
        )
        return response

    async def authorize_form(self, request: Request) -> Response:
        checked = self._check_authorize(single_valued(request.query_params.multi_items()))
        if not isinstance(checked, _AuthRequest):
            return checked
        login = self._current_login(request)
        if checked.prompt == "none":
            if login is None:
                target = with_query(
                    checked.redirect_uri,
                    {"error": "login_required", "state": checked.state, "iss": self.issuer},
                )
                return RedirectResponse(target, status_code=302)
            return self._issue_code(checked, login)
        return login_page(checked.form_fields(), login.username if login else "alice")

    async def authorize_login(self, request: Request) -> Response:
        form = await read_form(request)
        if form is None:
            return error_page("Malformed sign-in form.")
        checked = self._check_authorize({k: v for k, v in form.items() if k in _AUTHORIZE_PARAMS})
        if not isinstance(checked, _AuthRequest):
            return checked
        username = form.get("username", "").strip()
        if _USERNAME.fullmatch(username) is None:
            error = "Use 1-64 letters, digits, dots, dashes or underscores."
            return login_page(checked.form_fields(), username, error, status=400)
        sid = request.cookies.get(LOGIN_COOKIE)
        return self._issue_code(checked, self.state.sign_in(username, sid))

    # -- RP-initiated logout ---------------------------------------------------------

    async def end_session(self, request: Request) -> Response:
        if request.method == "POST":
            params = await read_form(request)
        else:
            params = single_valued(request.query_params.multi_items())
        if params is None:
            return error_page("Malformed logout request.")
        hint_claims: dict[str, Any] | None = None
        hint = params.get("id_token_hint")
        if hint:
            hint_claims = self.signer.verify(hint, "JWT", check_exp=False)
            if hint_claims is None or hint_claims.get("aud") != self.client.client_id:
                return error_page("id_token_hint is not a token this provider issued.")
        if "client_id" in params and params["client_id"] != self.client.client_id:
            return error_page("Unknown client_id.")
        redirect = params.get("post_logout_redirect_uri")
        if redirect is not None:
            if hint_claims is None and "client_id" not in params:
                return error_page("post_logout_redirect_uri needs id_token_hint or client_id.")
            if redirect not in self.client.post_logout_redirect_uris:
                return error_page("post_logout_redirect_uri is not registered.",
                                  received=redirect,
                                  registered=self.client.post_logout_redirect_uris)
        cookie_sid = request.cookies.get(LOGIN_COOKIE)
        if cookie_sid:
            self.state.sign_out(cookie_sid)
        if hint_claims is not None:
            self.state.sign_out(str(hint_claims.get("sid")))
        response: Response
        if redirect is not None:
            target = with_query(redirect, {"state": params.get("state")})
            response = RedirectResponse(target, status_code=302, headers=NO_STORE)
        else:
            response = signed_out_page()
        response.delete_cookie(
            LOGIN_COOKIE, httponly=True, samesite="lax", secure=self.secure_cookie
        )
        return response


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
        Route("/authorize", idp.authorize_form, methods=["GET"]),
        Route("/authorize", idp.authorize_login, methods=["POST"]),
        Route("/token", idp.tokens.token, methods=["POST"]),
        Route("/userinfo", idp.tokens.userinfo, methods=["GET", "POST"]),
        Route("/introspect", idp.tokens.introspect, methods=["POST"]),
        Route("/revoke", idp.tokens.revoke, methods=["POST"]),
        Route("/end_session", idp.end_session, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
