"""Token-exchange routes (token = "exchange", RFC 8693): the user's access token, made fresh
first, exchanged at the IdP for the route's audience / resource / scope.

The result is cached in the session record (sealed like the session's tokens, one entry per
route, with its expiry) until it nears expiry; a refresh of the user's token drops every
cached one (``SessionData.with_tokens``), and an entry only serves the access token it was
exchanged for. One exchange at a time per (session, route): in-process, callers share one
task; across replicas, a store lease lock per (session, route), after which the session is
read again and the cache re-checked (another replica may have exchanged meanwhile). The
result is saved under the session's refresh lock, with compare-and-set, so it can never
make a refresh lose its own compare-and-set (a rotated refresh token would be lost).

Refusals stay with the route, the session lives on: an OAuth error answer (``invalid_grant``:
the subject token is not active; ``invalid_target``: an audience the IdP does not serve;
...) is a 403 ``exchange-refused``; the IdP away is a 503 with Retry-After. Either is
answered again for FAILURE_HOLD_SECONDS without another grant (same session, route and
user token, in this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Literal, Protocol

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.config.model import RouteSettings
from bffgate.errors import ExchangeRefused, IdentityProviderUnavailable, SessionEnded
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, TokenResponse
from bffgate.oidc.errors import OidcError, TokenRejected
from bffgate.oidc.token_exchange import exchange_token
from bffgate.session.model import ExchangedToken, LoadedSession, refresh_point
from bffgate.session.service import SessionService
from bffgate.single_flight import SingleFlight
from bffgate.store.base import RefreshLocks, StoreLock
from bffgate.tokens.credential import TokenRequest

LEASE_SECONDS = 10.0  # the (session, route) lock's lease, renewed while the grant is out
WAIT_SECONDS = 15.0  # how long a replica waits for another's exchange before a 503
SAVE_WAIT_SECONDS = 5.0  # for the session's refresh lock; past it the result goes uncached
UNKNOWN_EXPIRY_TTL = 60.0  # how long a token without a known expiry is kept
# A failed exchange is answered again for this long without another grant (per session,
# route and user token, in this process): a burst on a refused route stays off the IdP.
FAILURE_HOLD_SECONDS = 2.0

Outcome = Literal["exchanged", "cached", "refused", "unavailable"]
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")  # an OAuth error code as it may be repeated


class Exchanger(Protocol):
    async def __call__(self, subject_token: str, request: TokenRequest) -> TokenResponse:
        """Exchange ``subject_token``; raises the OIDC layer's errors."""
        ...


class OidcExchanger:
    """The Exchanger over the OIDC client's token endpoint."""

    def __init__(self, oidc: OidcClient) -> None:
        self._oidc = oidc

    async def __call__(self, subject_token: str, request: TokenRequest) -> TokenResponse:
        return await exchange_token(self._oidc, subject_token, audience=request.audience,
                                    resource=request.resource, scope=request.scope)


def exchange_requests(routes: Iterable[RouteSettings]) -> dict[str, TokenRequest]:
    """What each token = "exchange" route asks for, by its (normalised) prefix."""
    return {r.prefix.rstrip("/") or "/": TokenRequest(r.scope, r.audience, r.resource)
            for r in routes if r.token == "exchange"}


def subject_digest(access_token: str) -> str:
    """What an entry remembers of the access token it was exchanged for."""
    return hashlib.sha256(access_token.encode()).hexdigest()[:32]


def cache_key(prefix: str, request: TokenRequest) -> str:
    """An entry's key: the route and what it asks for (a changed setting never reuses a
    token obtained for the old one). Also names the route's lock, so only hex after it."""
    asked = json.dumps([request.audience, request.resource, list(request.scope)])
    return prefix + "#" + hashlib.sha256(asked.encode()).hexdigest()[:16]


def cached_token(session: LoadedSession, key: str, now: float) -> str | None:
    """The cached token for ``key`` when it still serves this session's access token and
    is not due for renewal, else None."""
    entry = session.data.exchanged.get(key)
    if entry is None or not entry.usable(subject_digest(session.data.tokens.access_token), now):
        return None
    return entry.access_token


def renew_point(now: float, expires_at: float | None, renew_ahead: float) -> float:
    """When a token obtained ``now`` stops being served from the cache: ``renew_ahead``
    before expiry but never before half its life (as for the user's token); a token
    without a known expiry, after UNKNOWN_EXPIRY_TTL."""
    point = refresh_point(now, expires_at, renew_ahead, 0.0)
    return now + UNKNOWN_EXPIRY_TTL if point is None else point


class ExchangeTokens:
    """The exchanged token of each exchange route, per session (see the module docstring)."""

    def __init__(self, requests: Mapping[str, TokenRequest], exchanger: Exchanger,
                 sessions: SessionService, locks: RefreshLocks, clock: Clock,
                 metrics: Metrics, *, login_url: str, renew_ahead: float,
                 lease_seconds: float = LEASE_SECONDS, wait_seconds: float = WAIT_SECONDS,
                 save_wait_seconds: float = SAVE_WAIT_SECONDS) -> None:
        self._requests = dict(requests)
        self._keys = {prefix: cache_key(prefix, r) for prefix, r in self._requests.items()}
        self._exchanger, self._sessions, self._locks = exchanger, sessions, locks
        self._clock, self._metrics, self._login_url = clock, metrics, login_url
        self._ahead, self._lease = renew_ahead, lease_seconds
        self._wait, self._save_wait = wait_seconds, save_wait_seconds
        self._inflight: SingleFlight[tuple[str, str], str] = SingleFlight()
        # (session, route key) -> (until, subject digest, error, outcome) of a failure
        self._held: dict[tuple[str, str], tuple[float, str, str, Outcome]] = {}

    async def token(self, route: str, session: LoadedSession) -> str:
        """The exchanged token for the route of prefix ``route``; ``session`` is fresh (its
        access token refreshed when due). Raises ExchangeRefused (403),
        IdentityProviderUnavailable (503) or SessionEnded (the session is gone)."""
        key = self._keys[route]
        now = self._clock.now()
        cached = cached_token(session, key, now)
        if cached is not None:
            self._count(route, "cached")
            return cached
        flight = (session.key, key)
        held = self._held.get(flight)
        if held is not None and now < held[0] and held[1] == subject_digest(
                session.data.tokens.access_token):
            self._count(route, held[3])
            raise _error(held[2], held[3])  # audited when it happened
        return await self._inflight.run(flight, lambda: self._exchange(route, key, session))

    def _count(self, route: str, outcome: Outcome) -> None:
        self._metrics.route_exchange.labels(route, outcome).inc()

    async def _exchange(self, route: str, key: str, session: LoadedSession) -> str:
        lock = self._locks.refresh_lock(f"{session.key}:exchange:{key.rpartition('#')[2]}",
                                        self._lease)
        if not await lock.acquire(self._wait):
            # Another replica held it all along: use what it may have cached.
            cached = cached_token(await self._reload(session), key, self._clock.now())
            if cached is not None:
                self._count(route, "cached")
                return cached
            raise self._failed(route, key, session, "lock_timeout", "unavailable")
        renew = asyncio.create_task(self._renew(lock))
        try:
            return await self._exchange_locked(route, key, session)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            await lock.release()

    async def _exchange_locked(self, route: str, key: str, session: LoadedSession) -> str:
        current = await self._reload(session)
        cached = cached_token(current, key, self._clock.now())
        if cached is not None:  # exchanged by another request or replica meanwhile
            self._count(route, "cached")
            return cached
        # The record's access token: the caller's, or a newer one another replica saved.
        subject = current.data.tokens.access_token
        try:
            answer = await self._exchanger(subject, self._requests[route])
        except TokenRejected as exc:  # a definitive OAuth answer (GrantRejected included)
            raise self._failed(route, key, current, exc.error, "refused") from exc
        except OidcError as exc:  # unreachable, 5xx, temporarily_unavailable, unusable answer
            raise self._failed(route, key, current, exc.reason, "unavailable") from exc
        now = self._clock.now()
        entry = ExchangedToken(answer.access_token, answer.expires_at,
                               renew_point(now, answer.expires_at, self._ahead),
                               subject_digest(subject))
        await self._save(current, key, entry)
        self._count(route, "exchanged")
        audit.emit(AuditEvent.TOKEN_EXCHANGED, route=route, session=current.handle.short,
                   sub=current.data.sub)
        return answer.access_token

    async def _save(self, current: LoadedSession, key: str, entry: ExchangedToken) -> None:
        """Cache ``entry`` unless the session's token changed meanwhile (it then served this
        request only). Under the session's refresh lock: no refresh is between its read and
        its compare-and-set while this writes."""
        lock = self._locks.refresh_lock(current.key, self._lease)
        if not await lock.acquire(self._save_wait):
            return
        try:
            latest = await self._sessions.load(current.handle)
            if latest is not None and subject_digest(
                    latest.data.tokens.access_token) == entry.subject:
                await self._sessions.save_exchanged(latest, key, entry)
        finally:
            await lock.release()

    async def _reload(self, session: LoadedSession) -> LoadedSession:
        current = await self._sessions.load(session.handle)
        if current is None:  # logged out or revoked while this request was on its way
            raise SessionEnded(reason="session_gone", login_url=self._login_url)
        return current

    def _failed(self, route: str, key: str, session: LoadedSession, error: str,
                outcome: Outcome) -> ExchangeRefused | IdentityProviderUnavailable:
        # The code comes from the IdP: repeated (audit, problem detail) only if it is one.
        error = error if _ERROR_CODE.fullmatch(error) else "other"
        self._count(route, outcome)
        audit.emit(AuditEvent.TOKEN_EXCHANGE_FAILED, level="warning", route=route,
                   reason=f"{outcome}:{error}", session=session.handle.short,
                   sub=session.data.sub)
        now = self._clock.now()
        if len(self._held) >= 10_000:  # bounded: drop what is over
            self._held = {k: v for k, v in self._held.items() if v[0] > now}
        self._held[(session.key, key)] = (
            now + FAILURE_HOLD_SECONDS, subject_digest(session.data.tokens.access_token),
            error, outcome)
        return _error(error, outcome)

    async def _renew(self, lock: StoreLock) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(Exception):
                await lock.extend()


def _error(error: str, outcome: Outcome) -> ExchangeRefused | IdentityProviderUnavailable:
    if outcome == "refused":
        return ExchangeRefused(f"The identity provider refused a token for this route "
                               f"({error})", reason=f"exchange_refused:{error}", audited=True)
    return IdentityProviderUnavailable(reason=f"exchange_unavailable:{error}", audited=True)
