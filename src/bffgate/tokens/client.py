"""Client-credentials tokens for token = client | user_or_client routes.

Per route token request (scope, audience, resource; routes asking the same share a token):
1. In-process cache: a token still before its renewal point is used as is (no store trip).
2. Single flight per process: concurrent requests share one task (shielded: a caller that
   goes away does not cancel it).
3. Across replicas: read the sealed shared cache; on a miss take the store lease lock
   (renewed while the grant is in flight), re-read (another replica may have just put one),
   and only then send the grant and put its token — one grant per renewal window.
4. A failed grant is answered to the requests of that flight and, for FAILURE_HOLD seconds,
   to the next ones too without another IdP call (a burst on a misconfigured route must
   not become a burst at the IdP).

Failures: the IdP unreachable (or 5xx, temporarily_unavailable) -> 503 idp-unavailable with
Retry-After; the IdP refusing the grant (invalid_client, invalid_scope, invalid_target...)
-> 503 token-unavailable (a misconfiguration of the gateway or its registration, not the
caller's fault); the store down -> 503 store-unavailable, as for sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.config.model import RouteSettings
from bffgate.errors import (
    GatewayError,
    IdentityProviderUnavailable,
    RouteTokenUnavailable,
    StoreUnavailable,
)
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, TokenResponse
from bffgate.oidc.client_credentials import client_credentials
from bffgate.oidc.errors import OidcError, ProviderUnavailable, TokenRejected
from bffgate.single_flight import SingleFlight
from bffgate.store.base import RefreshLocks, StoreLock
from bffgate.tokens.client_cache import CachedToken, SharedTokenCache, cache_key
from bffgate.tokens.credential import TokenRequest

CLIENT_MODES = frozenset({"client", "user_or_client"})
LEASE_SECONDS = 10.0
WAIT_SECONDS = 15.0
FAILURE_HOLD = 2.0

ClientGrant = Callable[[TokenRequest], Awaitable[TokenResponse]]
_Result = tuple[CachedToken, bool] | GatewayError  # (token, issued by this flight) | failure


class ClientTokens:
    """The ClientTokenSource of RouteTokens: ``token(route prefix)``."""

    def __init__(self, requests: Mapping[str, tuple[TokenRequest, str]], grant: ClientGrant,
                 shared: SharedTokenCache, locks: RefreshLocks, clock: Clock,
                 metrics: Metrics, *, lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        """``requests``: per route prefix, its token request and cache key."""
        self._requests, self._grant, self._shared = requests, grant, shared
        self._locks, self._clock, self._metrics = locks, clock, metrics
        self._lease, self._wait = lease_seconds, wait_seconds
        self._local: dict[str, CachedToken] = {}
        self._failed: dict[str, tuple[GatewayError, float]] = {}
        self._inflight: SingleFlight[str, _Result] = SingleFlight()

    async def token(self, route: str) -> str:
        request, key = self._requests[route]  # KeyError: a route config validation admitted
        now = self._clock.now()
        cached = self._local.get(key)
        if cached is not None and cached.usable(now):
            self._count(route, "cached")
            return cached.token
        held = self._failed.get(key)
        if held is not None and now < held[1]:
            self._count(route, "failed")
            raise _again(held[0])
        mine = not self._inflight.running(key)
        result = await self._inflight.run(key, lambda: self._obtain(route, request, key))
        if isinstance(result, GatewayError):
            self._count(route, "failed")
            raise _again(result)
        found, issued = result
        self._count(route, "issued" if issued and mine else "cached")
        return found.token

    def _count(self, route: str, outcome: str) -> None:
        self._metrics.client_token.labels(route, outcome).inc()

    async def _obtain(self, route: str, request: TokenRequest, key: str) -> _Result:
        try:
            result = await self._obtain_shared(route, request, key)
        except GatewayError as exc:
            self._failed[key] = (exc, self._clock.now() + FAILURE_HOLD)
            return exc
        self._failed.pop(key, None)
        self._local[key] = result[0]
        return result

    async def _obtain_shared(self, route: str, request: TokenRequest,
                             key: str) -> tuple[CachedToken, bool]:
        found = await self._shared.get(key, self._clock.now())
        if found is not None:
            return found, False
        lock = self._locks.refresh_lock("ct:" + key, self._lease)
        if not await lock.acquire(self._wait):
            # Another replica holds the grant for longer than we wait: use its token if
            # it came, else this request fails (the IdP is slow or away).
            found = await self._shared.get(key, self._clock.now())
            if found is not None:
                return found, False
            raise IdentityProviderUnavailable(reason="client_token_wait")
        renew = asyncio.create_task(self._renew(lock))
        try:
            found = await self._shared.get(key, self._clock.now())
            if found is not None:  # another replica put one while we waited for the lock
                return found, False
            token = await self._issue(route, request)
            with contextlib.suppress(StoreUnavailable):  # the token is good: kept in process
                await self._shared.put(key, token, self._clock.now())
            return token, True
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            await lock.release()

    async def _issue(self, route: str, request: TokenRequest) -> CachedToken:
        try:
            answer = await self._grant(request)
        except ProviderUnavailable as exc:
            raise IdentityProviderUnavailable(reason="client_token_unavailable") from exc
        except TokenRejected as exc:
            raise RouteTokenUnavailable(
                "the identity provider refused the gateway's client-credentials grant for "
                f"this route ({exc.error}): check the route's scope, audience and resource "
                "and the client's registration", reason=f"client_token_refused:{exc.error}",
            ) from exc
        except OidcError as exc:  # an answer that is no token response
            raise RouteTokenUnavailable(reason=f"client_token_failed:{exc.reason}") from exc
        now = self._clock.now()
        token = CachedToken.issued(answer.access_token, answer.expires_at, now)
        expires_in = math.floor(token.expires_at - now) if token.expires_at is not None else None
        audit.emit(AuditEvent.TOKEN_CLIENT_ISSUED, route=route, expires_in=expires_in)
        return token

    async def _renew(self, lock: StoreLock) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(Exception):
                await lock.extend()


def _again(exc: GatewayError) -> GatewayError:
    """A fresh copy of a flight's failure for each request (each is audited on its own)."""
    again = type(exc)(exc.detail, reason=exc.reason)
    again.__cause__ = exc.__cause__
    return again


def client_requests(routes: Sequence[RouteSettings], issuer: str,
                    client_id: str) -> dict[str, tuple[TokenRequest, str]]:
    """Per route prefix (as the route table normalises it) of every token = client |
    user_or_client route: its token request and shared-cache key."""
    out: dict[str, tuple[TokenRequest, str]] = {}
    for r in routes:
        if r.token in CLIENT_MODES:
            request = TokenRequest(r.scope, r.audience, r.resource)
            out[r.prefix.rstrip("/") or "/"] = (request, cache_key(issuer, client_id, request))
    return out


class OidcClientGrant:
    """The ClientGrant: the client-credentials grant at the IdP (oidc.client_credentials)."""

    def __init__(self, oidc: OidcClient) -> None:
        self._oidc = oidc

    async def __call__(self, request: TokenRequest) -> TokenResponse:
        return await client_credentials(self._oidc, scope=request.scope,
                                        audience=request.audience, resource=request.resource)
