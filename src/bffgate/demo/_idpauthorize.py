"""Authorization endpoint of the development identity provider: the request's checks, the
sign-in form, and the code it issues."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bffgate.demo._idppages import error_page, login_page
from bffgate.demo._idpstate import AuthCode, IdpState, Login
from bffgate.demo._oauthhttp import (
    NO_STORE,
    Client,
    is_s256_challenge,
    read_form,
    single_valued,
    with_query,
)

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


class AuthorizeEndpoint:
    """GET /authorize shows the sign-in form (or answers prompt=none); POST signs in."""

    def __init__(self, issuer: str, client: Client, state: IdpState, now: Callable[[], float],
                 registration_hint: str | None) -> None:
        self.issuer, self.client, self.state, self.now = issuer, client, state, now
        self.registration_hint = registration_hint
        self.secure_cookie = issuer.startswith("https://")

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
