"""Single-flight token refresh, per session, within a process and across replicas.

Algorithm (oauth2-proxy's lock → reload → re-check → refresh → save, plus what it lacks):
1. In-process: concurrent requests for one session share one refresh task.
2. Across replicas: a Redis lease lock ``lock:{h}`` (token-checked release), renewed every
   lease/3 while the grant is in flight so a slow IdP can't let a second replica in.
3. After acquiring: reload the session and re-check; another replica may have refreshed
   already, in which case its result is reused and no grant is sent.
4. The rotated token set is saved with compare-and-set on the record's generation, so two
   writers can never both save (no lost update of a single-use refresh token).
5. Waiters that could not get the lock in ``wait_seconds`` re-read the session.

The outcome is a closed set the edge matches exhaustively: Fresh | Refreshed | Rejected |
Unavailable. The IdP call is injected (``TokenRefresher``) so this module knows no OIDC;
it is given the session's subject and owns the OIDC Core 12.2 checks of a refreshed ID
token: a grant it can't trust (an invalid ID token, another user) is a
``RefreshRejectedError``, and the session ends here like for any refused grant.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bffgate.session.service import LoadedSession, NewTokens, SessionService
from bffgate.store.base import StoreLock


class RefreshRejectedError(Exception):
    """The grant is refused for good: the IdP said so (invalid_grant, invalid_client...) or
    its answer can't be trusted (``id_token_invalid:<check>``)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class RefreshUnavailableError(Exception):
    """The IdP could not be reached or failed transiently; try again later."""


# (refresh_token, the session's sub) -> the new tokens
TokenRefresher = Callable[[str, str], Awaitable[NewTokens]]


@dataclass(frozen=True)
class Fresh:
    session: LoadedSession


@dataclass(frozen=True)
class Refreshed:
    session: LoadedSession
    by_us: bool  # False when another request/replica did the grant


@dataclass(frozen=True)
class Rejected:
    reason: str


@dataclass(frozen=True)
class Unavailable:
    session: LoadedSession
    usable: bool  # the current access token is still valid


Outcome = Fresh | Refreshed | Rejected | Unavailable

# Named constants (oauth2-proxy style, but the lease is renewed while in flight).
LEASE_SECONDS = 10.0
WAIT_SECONDS = 15.0


class RefreshCoordinator:
    def __init__(self, service: SessionService, refresher: TokenRefresher, *,
                 lease_seconds: float = LEASE_SECONDS, wait_seconds: float = WAIT_SECONDS,
                 on_refreshed: Callable[[LoadedSession], None] | None = None) -> None:
        self._service, self._refresher = service, refresher
        self._lease, self._wait = lease_seconds, wait_seconds
        self._inflight: dict[str, asyncio.Task[Outcome]] = {}
        self._on_refreshed = on_refreshed  # called once per grant (audit, metrics)

    async def ensure_fresh(self, session: LoadedSession) -> Outcome:
        now = self._service.clock.now()
        if not session.data.tokens.needs_refresh(now):
            return Fresh(session)
        key = session.key
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._refresh(session))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # shield: one caller going away (client disconnect) must not cancel the grant
        return await asyncio.shield(task)

    async def _refresh(self, session: LoadedSession) -> Outcome:
        lock = self._service.store.refresh_lock(session.key, self._lease)
        if not await lock.acquire(self._wait):
            return await self._after_wait(session)
        renew = asyncio.create_task(self._renew(lock))
        try:
            current = await self._service.load(session.handle)
            if current is None:
                return Rejected("session_gone")
            now = self._service.clock.now()
            if not current.data.tokens.needs_refresh(now):
                return Refreshed(current, by_us=False)
            rt = current.data.tokens.refresh_token
            if rt is None:
                return Unavailable(current, current.data.tokens.access_token_valid(now))
            try:
                new = await self._refresher(rt, current.data.sub)
            except RefreshRejectedError as exc:
                await self._service.destroy(current)
                return Rejected(exc.error)
            except RefreshUnavailableError:
                return Unavailable(current, current.data.tokens.access_token_valid(now))
            saved = await self._service.replace_tokens(current, new)
            if saved is None:
                # Only possible if our lease was lost; the other writer's result stands.
                reread = await self._service.load(session.handle)
                return Refreshed(reread, by_us=False) if reread else Rejected("session_gone")
            if self._on_refreshed:
                self._on_refreshed(saved)
            return Refreshed(saved, by_us=True)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            await lock.release()

    async def _renew(self, lock: StoreLock) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(Exception):
                await lock.extend()

    async def _after_wait(self, session: LoadedSession) -> Outcome:
        current = await self._service.load(session.handle)
        if current is None:
            return Rejected("session_gone")
        now = self._service.clock.now()
        if not current.data.tokens.needs_refresh(now):
            return Refreshed(current, by_us=False)
        return Unavailable(current, current.data.tokens.access_token_valid(now))
