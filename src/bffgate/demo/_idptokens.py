"""Token-side endpoints of the development identity provider: token, userinfo, introspection,
revocation."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate.demo._idpkeys import Signer, at_hash
from bffgate.demo._idpstate import Grant, IdpState, Login
from bffgate.demo._oauthhttp import (
    NO_STORE,
    Client,
    authenticate_client,
    oauth_error,
    pkce_s256_matches,
    read_form,
)


def profile(login: Login) -> dict[str, str]:
    """The made-up profile claims of a demo user."""
    return {
        "name": login.username.capitalize(),
        "preferred_username": login.username,
        "email": f"{login.username}@example.com",
    }


@dataclass
class TokenService:
    """Issues, rotates, introspects and revokes the provider's tokens."""

    issuer: str
    client: Client
    state: IdpState
    signer: Signer
    access_token_ttl: int
    refresh_token_ttl: int
    now: Callable[[], float]

    async def _authenticated_form(self, request: Request) -> dict[str, str] | Response:
        form = await read_form(request)
        if form is None:
            return oauth_error("invalid_request", "expected a single-valued urlencoded form")
        auth_error = authenticate_client(request, form, self.client)
        if auth_error is not None:
            return oauth_error("invalid_client", auth_error, 401)
        return form

    async def token(self, request: Request) -> Response:
        """RFC 6749 token endpoint: authorization_code (PKCE S256) and refresh_token."""
        form = await self._authenticated_form(request)
        if isinstance(form, Response):
            return form
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(form)
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        return oauth_error("unsupported_grant_type", "use authorization_code or refresh_token")

    def _code_grant(self, form: dict[str, str]) -> Response:
        code_value = form.get("code")
        verifier = form.get("code_verifier")
        if not code_value or verifier is None:
            return oauth_error("invalid_request", "code and code_verifier are required")
        code = self.state.take_code(code_value)
        if code is None:
            return oauth_error("invalid_grant", "code is invalid, expired or already used")
        if code.client_id != self.client.client_id:
            return oauth_error("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error("invalid_grant", "redirect_uri does not match the authorization")
        if not pkce_s256_matches(verifier, code.code_challenge):
            return oauth_error("invalid_grant", "PKCE verification failed")
        grant = self.state.new_grant(code_value, code)
        return self._token_response(grant, grant.scope, code.nonce)

    def _refresh_grant(self, form: dict[str, str]) -> Response:
        value = form.get("refresh_token")
        if not value:
            return oauth_error("invalid_request", "refresh_token is required")
        grant = self.state.rotate_refresh(value, self.client.client_id)
        if grant is None:
            return oauth_error(
                "invalid_grant", "refresh token is invalid, expired, revoked or already used"
            )
        scope = grant.scope
        if "scope" in form:
            asked = form["scope"].split()
            if not set(asked) <= set(grant.scope.split()):
                return oauth_error("invalid_scope", "scope exceeds the original grant")
            scope = " ".join(asked)
        return self._token_response(grant, scope, None)

    def _token_response(self, grant: Grant, scope: str, nonce: str | None) -> Response:
        now = int(self.now())
        login = grant.login
        claims = profile(login)
        jti = secrets.token_urlsafe(16)
        self.state.register_access(jti, grant)
        access_token = self.signer.sign(
            {
                "iss": self.issuer,
                "sub": login.username,
                "aud": grant.client_id,
                "exp": now + self.access_token_ttl,
                "iat": now,
                "jti": jti,
                "scope": scope,
                "client_id": grant.client_id,
                "name": claims["name"],
            },
            "at+jwt",
        )
        id_claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": login.username,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "exp": now + self.access_token_ttl,
            "iat": now,
            "auth_time": login.auth_time,
            "sid": login.sid,
            "at_hash": at_hash(access_token),
            **claims,
        }
        if nonce is not None:
            id_claims["nonce"] = nonce
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.access_token_ttl,
            "scope": scope,
            "id_token": self.signer.sign(id_claims, "JWT"),
        }
        if "offline_access" in grant.scope.split():
            expires_at = self.now() + self.refresh_token_ttl
            body["refresh_token"] = self.state.issue_refresh(grant, expires_at)
        return JSONResponse(body, headers=NO_STORE)

    def _active_access(self, token: str) -> tuple[dict[str, Any], Grant] | None:
        claims = self.signer.verify(token, "at+jwt")
        if claims is None:
            return None
        grant = self.state.active_access(str(claims.get("jti")))
        return (claims, grant) if grant is not None else None

    async def userinfo(self, request: Request) -> Response:
        """OIDC userinfo for a bearer access token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        active = self._active_access(token.strip()) if scheme.lower() == "bearer" else None
        if active is None:
            return JSONResponse(
                {"error": "invalid_token", "error_description": "access token is not valid"},
                status_code=401,
                headers={**NO_STORE, "WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        login = active[1].login
        return JSONResponse({"sub": login.username, **profile(login)}, headers=NO_STORE)

    async def introspect(self, request: Request) -> Response:
        """RFC 7662 introspection of a refresh or access token."""
        token = await self._token_parameter(request)
        if isinstance(token, Response):
            return token
        return JSONResponse(self._introspection(token), headers=NO_STORE)

    async def _token_parameter(self, request: Request) -> str | Response:
        """The ``token`` of an authenticated introspection or revocation request, or the
        error response."""
        form = await self._authenticated_form(request)
        if isinstance(form, Response):
            return form
        token = form.get("token")
        return token if token else oauth_error("invalid_request", "token is required")

    def _introspection(self, token: str) -> dict[str, Any]:
        refresh = self.state.active_refresh(token)
        if refresh is not None:
            record, grant = refresh
            return {
                "active": True,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "scope": grant.scope,
                "sub": grant.login.username,
                "username": grant.login.username,
                "iss": self.issuer,
                "exp": int(record.expires_at),
            }
        active = self._active_access(token)
        if active is None or active[1].client_id != self.client.client_id:
            return {"active": False}
        claims = active[0]
        keys = ("client_id", "scope", "sub", "aud", "iss", "exp", "iat", "jti")
        return {
            "active": True,
            "token_type": "access_token",
            "username": claims.get("sub"),
            **{key: claims.get(key) for key in keys},
        }

    async def revoke(self, request: Request) -> Response:
        """RFC 7009 revocation; a refresh token takes its whole grant with it."""
        token = await self._token_parameter(request)
        if isinstance(token, Response):
            return token
        grant = self.state.refresh_grant(token)
        if grant is not None:
            if grant.client_id == self.client.client_id:
                self.state.revoke_grant(grant.grant_id)
        else:
            claims = self.signer.verify(token, "at+jwt", check_exp=False)
            if claims is not None and claims.get("client_id") == self.client.client_id:
                self.state.revoke_access(str(claims.get("jti")))
        return Response(status_code=200, headers=NO_STORE)
