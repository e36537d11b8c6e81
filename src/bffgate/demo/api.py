"""The demo upstream API: checks the gateway's bearer token against the IdP's JWKS and echoes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bffgate.demo._jwks import JwksCache, JwksUnavailableError

ALGORITHMS = ("ES256",)
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")
MAX_ECHO_BYTES = 64 * 1024
SHOWN_CHARS = 6  # of the bearer token, in the demo's report of what arrived


def _error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{error}"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def masked_bearer(token: str) -> dict[str, Any]:
    """What the demo may show of the token it received: the scheme, the first characters
    (a JWT's start is its base64 header, ``eyJ...``) and the length; never the token."""
    return {"scheme": "Bearer", "start": token[:SHOWN_CHARS] if len(token) >= 24 else "",
            "length": len(token)}


def what_arrived(request: Request, token: str) -> dict[str, Any]:
    """The few request facts that show what the gateway did on the way here."""
    return {
        "authorization": masked_bearer(token),
        "cookie": "cookie" in request.headers,
        "x_csrf": "x-csrf" in request.headers,
        "x_forwarded_for": request.headers.get("x-forwarded-for"),
        "x_forwarded_proto": request.headers.get("x-forwarded-proto"),
        "x_forwarded_host": request.headers.get("x-forwarded-host"),
    }


def received_headers(request: Request) -> dict[str, str]:
    """Request headers minus Authorization; a Cookie is reported but its value is hidden."""
    seen: dict[str, str] = {}
    for name, value in request.headers.items():
        if name == "authorization":
            continue
        shown = "(present, value hidden)" if name == "cookie" else value
        seen[name] = f"{seen[name]}, {shown}" if name in seen else shown
    return seen


def _bearer(request: Request) -> tuple[str, str]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme, token.strip()


class _HttpClient:
    """The injected httpx client, or one created on first use and closed at shutdown."""

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._client = client
        self._owned: httpx.AsyncClient | None = None

    def __call__(self) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        if self._owned is None:
            self._owned = httpx.AsyncClient()
        return self._owned

    async def aclose(self) -> None:
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = None


class _DemoApi:
    def __init__(
        self,
        issuer: str,
        audience: str | None,
        jwks: JwksCache,
        now: Callable[[], float],
        leeway: int,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.now = now
        self.leeway = leeway

    async def authenticate(self, request: Request) -> dict[str, Any] | Response:
        scheme, token = _bearer(request)
        if scheme.lower() != "bearer" or not token:
            return _error(401, "invalid_request", "a Bearer access token is required")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError):
            return _error(401, "invalid_token", "malformed access token")
        if header.get("alg") not in ALGORITHMS:
            return _error(401, "invalid_token", "unexpected signing algorithm")
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            return _error(401, "invalid_token", "not an access token (typ at+jwt)")
        kid = header.get("kid")
        try:
            keys = await self.jwks.key_set(kid if isinstance(kid, str) else None)
        except JwksUnavailableError:
            return _error(503, "temporarily_unavailable", "the IdP's JWKS is unreachable")
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": self.issuer},
            "sub": {"essential": True},
            "exp": {"essential": True},
        }
        if self.audience is not None:
            options["aud"] = {"essential": True, "value": self.audience}
        try:
            claims = jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims
            JWTClaimsRegistry(now=int(self.now()), leeway=self.leeway, **options).validate(claims)
        except (JoseError, ValueError):
            return _error(401, "invalid_token", "access token signature or claims are not valid")
        return claims

    def _report(self, request: Request, claims: dict[str, Any]) -> dict[str, Any]:
        return {
            "sub": claims["sub"],
            "token_seen": True,
            # Checked in authenticate(): signature (key from the IdP's JWKS), typ, iss, exp.
            "token_check": {"alg": ALGORITHMS[0], "iss": claims["iss"]},
            "received": what_arrived(request, _bearer(request)[1]),
            "method": request.method,
            "path": request.url.path,
            "headers": received_headers(request),
        }

    async def hello(self, request: Request) -> Response:
        claims = await self.authenticate(request)
        if isinstance(claims, Response):
            return claims
        name = claims.get("name") or claims["sub"]
        return JSONResponse({"message": f"Hello {name}", **self._report(request, claims)})

    async def echo(self, request: Request) -> Response:
        claims = await self.authenticate(request)
        if isinstance(claims, Response):
            return claims
        body = await request.body()
        if len(body) > MAX_ECHO_BYTES:
            return _error(413, "payload_too_large", f"at most {MAX_ECHO_BYTES} bytes")
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return _error(400, "invalid_json", "the body is not JSON")
        return JSONResponse({"echo": payload, **self._report(request, claims)})


def create_demo_api(
    jwks_url: str,
    issuer: str,
    *,
    http_client: httpx.AsyncClient | None = None,
    audience: str | None = None,
    now: Callable[[], float] = time.time,
    leeway: int = 30,
) -> Starlette:
    """Build the demo API; pass ``http_client`` to choose how the JWKS is fetched."""
    client = _HttpClient(http_client)
    api = _DemoApi(issuer, audience, JwksCache(jwks_url, client, now), now, leeway)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    routes = [
        Route("/api/hello", api.hello, methods=["GET"]),
        Route("/api/echo", api.echo, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
