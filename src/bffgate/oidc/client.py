"""The relying party's calls to the IdP: authorization URL (+PAR), code exchange, refresh,
revocation, end-session URL, ID-token validation. Stateless: one shared instance serves
every session (no per-user token is ever kept on the client object).

Client authentication is encoded by authlib (``client_secret_basic``, ``client_secret_post``,
``none``, ``private_key_jwt``); HTTP goes through one pooled ``httpx.AsyncClient``.
Transport failures and 5xx become ``ProviderUnavailable``; OAuth error responses become
``TokenRejected`` / ``GrantRejected`` carrying the protocol's ``error`` code.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.errors import SecurityWarning

from bffgate.clock import Clock
from bffgate.oidc.client_key import ClientKey, ClientKeyMismatch, load_client_key
from bffgate.oidc.discovery import Discovery, ProviderMetadata
from bffgate.oidc.dpop import DpopKey, DpopProver, provider_problem
from bffgate.oidc.errors import (
    GrantRejected,
    IdTokenInvalid,
    OidcError,
    ProviderMisconfigured,
    ProviderUnavailable,
    TokenRejected,
)
from bffgate.oidc.id_token import access_token_expiry, parse_compact, verify_id_token
from bffgate.oidc.logout_token import LogoutRequest, verify_logout_token
from bffgate.oidc.pkce import CHALLENGE_METHOD

_MAX_TOKEN_RESPONSE = 256 * 1024
_ASSERTION_LIFETIME = 60  # seconds; a client assertion is used once, right away


@dataclass(frozen=True, repr=False)
class TokenResponse:
    """A token endpoint answer. repr never shows a token."""

    access_token: str
    expires_at: float | None
    refresh_token: str | None
    id_token: str | None
    scope: str | None
    sub: str | None = None  # set by refresh(): the subject of the validated ID token
    token_type: str = "Bearer"  # or "DPoP": bound to dpop_key (RFC 9449)
    dpop_key: DpopKey | None = None  # the key the grant was proved with

    def __repr__(self) -> str:
        return (f"TokenResponse(access_token=True, refresh_token={self.refresh_token is not None},"
                f" id_token={self.id_token is not None}, expires_at={self.expires_at})")


@dataclass(frozen=True)
class RelyingParty:
    """Static client registration facts."""

    issuer: str
    client_id: str
    client_secret: str
    client_auth: str
    private_key: str
    redirect_uri: str
    scopes: tuple[str, ...]
    id_token_algs: tuple[str, ...]
    clock_skew: int
    use_par: bool
    extra_auth_params: Mapping[str, str]
    dpop: bool = False  # oidc.dpop: bind the session's tokens to a per-session key


class OidcClient:
    def __init__(self, rp: RelyingParty, http: httpx.AsyncClient, discovery: Discovery,
                 clock: Clock) -> None:
        self.rp, self._http, self.discovery, self._clock = rp, http, discovery, clock
        # Merged once, not per POST by build_request(): the client's default headers and
        # timeouts (it holds no cookie, no base URL); each endpoint's URL parsed once.
        self._base_headers, self._timeout = httpx.Headers(http.headers), http.timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        self._authorize: dict[str, str] = {}  # authorization endpoint -> its URL's fixed part
        self.dpop = DpopProver(clock)  # the IdP's DPoP nonces live here
        self._auth: ClientAuth | ClientKey
        if rp.client_auth == "private_key_jwt":
            # Loaded and checked now (config validation does the same), never at token time;
            # the assertion is signed per call (audience, the IdP's algorithms, lifetime).
            self._auth = load_client_key(rp.private_key)
        else:
            self._auth = ClientAuth(rp.client_id, rp.client_secret, rp.client_auth)

    async def metadata(self) -> ProviderMetadata:
        return await self.discovery.metadata()

    def _client_auth(self, meta: ProviderMetadata) -> ClientAuth:
        if isinstance(self._auth, ClientAuth):
            return self._auth
        key = self._auth
        try:
            alg = key.algorithm_for(meta.auth_signing_algs)
        except ClientKeyMismatch as exc:
            raise ProviderMisconfigured(f"oidc.private_key: {exc}") from exc
        now = int(self._clock.now())
        # A short-lived assertion (authlib adds the jti); aud is the token endpoint, which
        # RFC 7523 and RFC 9126 (PAR) both accept, as do revocation endpoints.
        assertion = PrivateKeyJWT(meta.token_endpoint, alg=alg, headers={"kid": key.kid},
                                  claims={"iat": now, "exp": now + _ASSERTION_LIFETIME})
        return ClientAuth(self.rp.client_id, key.key, assertion)

    async def _post(self, meta: ProviderMetadata, url: str, form: dict[str, str],
                    extra: Mapping[str, str] | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json", **(extra or {})}
        body = urlencode(form)
        auth = self._client_auth(meta)
        if isinstance(self._auth, ClientAuth):  # a secret (or none): nothing is signed
            _, headers, body = auth.prepare("POST", url, headers, body)
        else:
            with warnings.catch_warnings():
                # "EdDSA" is what older IdPs know; joserfc warns it is deprecated (RFC 9864).
                warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
                _, headers, body = auth.prepare("POST", url, headers, body)
        if (parsed := self._urls.get(url)) is None:
            parsed = self._urls[url] = httpx.URL(url)
        merged = self._base_headers.copy()
        merged.update(headers)  # by name, in any case (as build_request merges them)
        request = httpx.Request("POST", parsed, headers=merged, content=body,
                                extensions={"timeout": self._timeout})
        try:
            return await self._http.send(request)
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"POST {url}: {type(exc).__name__}") from exc

    async def authorization_url(self, *, state: str, nonce: str, code_challenge: str) -> str:
        meta = await self.metadata()
        per_login = {"state": state, "nonce": nonce, "code_challenge": code_challenge}
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        if (self.rp.use_par or meta.require_par) and meta.par_endpoint:
            resp = await self._post(meta, meta.par_endpoint, {**self._fixed_params(), **per_login})
            doc = self._json(resp)
            if resp.status_code not in (200, 201) or not isinstance(doc.get("request_uri"), str):
                raise TokenRejected(str(doc.get("error", "par_failed")),
                                    str(doc.get("error_description") or ""))
            return meta.authorization_endpoint + sep + urlencode(
                {"client_id": self.rp.client_id, "request_uri": doc["request_uri"]})
        # The fixed parameters encoded once per endpoint (urlencode was a fifth of
        # /bff/login's CPU), then this login's own.
        if (prefix := self._authorize.get(meta.authorization_endpoint)) is None:
            prefix = self._authorize[meta.authorization_endpoint] = (
                meta.authorization_endpoint + sep + urlencode(self._fixed_params()) + "&")
        return prefix + urlencode(per_login)

    def _fixed_params(self) -> dict[str, str]:
        """The authorization request's parameters that are the same for every login (the
        configured extra ones never override the protocol's)."""
        return {**self.rp.extra_auth_params, "response_type": "code",
                "client_id": self.rp.client_id, "redirect_uri": self.rp.redirect_uri,
                "scope": " ".join(self.rp.scopes), "code_challenge_method": CHALLENGE_METHOD}

    @staticmethod
    def _json(resp: httpx.Response) -> dict[str, Any]:
        if len(resp.content) > _MAX_TOKEN_RESPONSE:
            raise ProviderMisconfigured("token endpoint response too large")
        try:
            doc = resp.json()
        except ValueError as exc:
            if resp.status_code >= 500:
                raise ProviderUnavailable(f"HTTP {resp.status_code}") from exc
            raise ProviderMisconfigured("token endpoint answered non-JSON") from exc
        if not isinstance(doc, dict):
            raise ProviderMisconfigured("token endpoint answered a non-object")
        return doc

    def _token_response(self, resp: httpx.Response, proved: bool = False) -> TokenResponse:
        if resp.status_code >= 500:
            raise ProviderUnavailable(f"token endpoint HTTP {resp.status_code}")
        doc = self._json(resp)
        if "error" in doc or resp.status_code != 200:
            error = str(doc.get("error") or f"http_{resp.status_code}")[:64]
            desc = str(doc.get("error_description") or "")
            if error in GrantRejected.FATAL:
                raise GrantRejected(error, desc)
            if error == "temporarily_unavailable":
                raise ProviderUnavailable(error)
            raise TokenRejected(error, desc)
        at = doc.get("access_token")
        if not isinstance(at, str) or not at:
            raise TokenRejected("missing_access_token")
        # DPoP only when we proved the request; an IdP that answers Bearer to a proof did not
        # bind the token, and it is sent as the bearer it is (README "DPoP").
        token_type = {"bearer": "Bearer", "dpop": "DPoP" if proved else ""}.get(
            str(doc.get("token_type", "")).lower(), "")
        if not token_type:
            raise TokenRejected("unsupported_token_type")
        expires_at = access_token_expiry(doc.get("expires_in"), at, self._clock.now())
        rt, it = doc.get("refresh_token"), doc.get("id_token")
        return TokenResponse(
            access_token=at,
            expires_at=expires_at,
            refresh_token=rt if isinstance(rt, str) and rt else None,
            id_token=it if isinstance(it, str) and it else None,
            scope=doc.get("scope") if isinstance(doc.get("scope"), str) else None,
            token_type=token_type,
        )

    async def token_request(self, form: dict[str, str],
                            dpop_key: DpopKey | None = None) -> TokenResponse:
        """One grant at the token endpoint, client authentication included: the helper
        every grant module uses (code, refresh here; client_credentials.py, ...). Raises
        ProviderUnavailable (transport, 5xx, temporarily_unavailable), GrantRejected /
        TokenRejected (an OAuth error answer, or no usable token response)."""
        meta = await self.metadata()
        url = meta.token_endpoint
        if dpop_key is None:
            return self._token_response(await self._post(meta, url, form))
        if (problem := provider_problem(meta.dpop_algs, self.rp.issuer)) is not None:
            raise ProviderMisconfigured(problem)  # checked at startup too, when reachable
        resp = await self.dpop.send(dpop_key, "POST", url,
                                    lambda proof: self._post(meta, url, form, {"DPoP": proof}))
        return replace(self._token_response(resp, proved=True), dpop_key=dpop_key)

    async def exchange_code(self, code: str, code_verifier: str) -> TokenResponse:
        return await self.token_request({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.rp.redirect_uri,
            "code_verifier": code_verifier,
        }, DpopKey.generate() if self.rp.dpop else None)  # DPoP: the session's key, made here

    async def refresh(self, refresh_token: str, *, sub: str,
                      dpop_key: DpopKey | None = None) -> TokenResponse:
        """The refresh grant for the session of ``sub``. OIDC Core 12.2, decided here only:
        an ID token in the response is validated like the login's (no nonce) and must name
        ``sub``; if any check fails, the tokens just issued are revoked (best effort: the
        grant can't be trusted, and the IdP may have rotated the refresh token) and
        ``IdTokenInvalid`` names the check. The answer carries the validated subject."""
        tokens = await self.token_request({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }, dpop_key)  # a DPoP-bound refresh token is proved with the session's key
        if tokens.id_token is None:
            return tokens
        try:
            claims = await self.validate_id_token(tokens.id_token, nonce=None)
            if claims["sub"] != sub:
                raise IdTokenInvalid("sub")
        except IdTokenInvalid:
            for token, hint in ((tokens.refresh_token, "refresh_token"),
                                (tokens.access_token, "access_token")):
                if token:
                    with contextlib.suppress(OidcError):
                        await self.revoke(token, hint)
            raise
        return replace(tokens, sub=sub)

    async def revoke(self, token: str, hint: str = "refresh_token") -> bool:
        """RFC 7009; best effort. Returns False when the IdP has no endpoint or failed."""
        meta = await self.metadata()
        if not meta.revocation_endpoint:
            return False
        resp = await self._post(meta, meta.revocation_endpoint,
                                {"token": token, "token_type_hint": hint})
        return resp.status_code == 200

    async def validate_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        parsed = parse_compact(id_token)  # parsed once: the key's kid, then the checks
        kid = parsed.header.get("kid")
        keys = await self.discovery.keys(kid if isinstance(kid, str) else None)
        return verify_id_token(
            id_token, keys, issuer=self.rp.issuer, client_id=self.rp.client_id,
            nonce=nonce, now=self._clock.now(), leeway=self.rp.clock_skew,
            algorithms=self.rp.id_token_algs, parsed=parsed)

    async def validate_logout_token(self, token: str) -> LogoutRequest:
        kid = parse_compact(token).header.get("kid")
        keys = await self.discovery.keys(kid if isinstance(kid, str) else None)
        return verify_logout_token(
            token, keys, issuer=self.rp.issuer, client_id=self.rp.client_id,
            now=self._clock.now(), leeway=self.rp.clock_skew, algorithms=self.rp.id_token_algs)

    async def end_session_url(self, *, id_token_hint: str | None,
                              post_logout_redirect_uri: str) -> str | None:
        meta = await self.metadata()
        if not meta.end_session_endpoint:
            return None
        params = {"client_id": self.rp.client_id,
                  "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        sep = "&" if "?" in meta.end_session_endpoint else "?"
        return meta.end_session_endpoint + sep + urlencode(params)

