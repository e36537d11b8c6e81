"""RP-initiated logout of the development identity provider (OpenID Connect RP-Initiated
Logout 1.0): checks the hint and the redirect, ends the provider's login session."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from bffgate.demo._idpauthorize import LOGIN_COOKIE
from bffgate.demo._idpkeys import Signer
from bffgate.demo._idppages import error_page, signed_out_page
from bffgate.demo._idpstate import IdpState
from bffgate.demo._oauthhttp import NO_STORE, Client, read_form, single_valued, with_query


class EndSessionEndpoint:
    """GET or POST /end_session."""

    def __init__(self, issuer: str, client: Client, state: IdpState, signer: Signer) -> None:
        self.client, self.state, self.signer = client, state, signer
        self.secure_cookie = issuer.startswith("https://")

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
