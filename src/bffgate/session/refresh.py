"""Single-flight token refresh, per session, within a process and across replicas.

Algorithm (oauth2-proxy's lock → reload → re-check → refresh → save, plus what it lacks):
1. In-process: concurrent requests for one session share one refresh task.
2. Across replicas: a store lease lock per session (token-checked release), renewed every
   lease/3 while the grant is in flight so a slow IdP can't let a second replica in.
3. After acquiring: reload the session and re-check; another replica may have refreshed
   already, in which case its result is reused and no grant is sent.
4. The rotated token set is saved with compare-and-set on the record's generation, so two
   writers can never both save (no lost update of a single-use refresh token).
5. Waiters that could not get the lock in ``wait_seconds`` re-read the session.

``ensure_fresh`` decides everything about the session's tokens, expiry included, and
returns a closed set the edge matches exhaustively (outcomes.py). Each decision is told
once to the injected observer (metrics, audit). The IdP call is injected too
(``TokenRefresher``): this module knows no OIDC; the refresher validates what the IdP
returns (a refreshed ID token: OIDC Core 12.2) and raises RefreshRejectedError for a grant
refused or not to be trusted, which ends the session here.
"""

from __future__ import annotations

import asyncio
import contextlib

from bffgate.clock import Clock
from bffgate.session.model import LoadedSession
from bffgate.session.outcomes import (
    Ended,
    Fresh,
    Outcome,
    Refreshed,
    RefreshObserver,
    RefreshRejectedError,
    RefreshUnavailableError,
    TokenRefresher,
    Unavailable,
)
from bffgate.session.service import SessionService
from bffgate.single_flight import SingleFlight
from bffgate.store.base import RefreshLocks, StoreLock

# Named constants (oauth2-proxy style, but the lease is renewed while in flight).
LEASE_SECONDS = 10.0
WAIT_SECONDS = 15.0


def _ignore(outcome: Refreshed | Ended | Unavailable) -> None:
    return None


class RefreshCoordinator:
    def __init__(self, sessions: SessionService, locks: RefreshLocks, clock: Clock,
                 refresher: TokenRefresher, *, observer: RefreshObserver = _ignore,
                 lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self._sessions, self._locks, self._clock = sessions, locks, clock
        self._refresher, self._observe = refresher, observer
        self._lease, self._wait = lease_seconds, wait_seconds
        self._inflight: SingleFlight[str, Outcome] = SingleFlight()

    async def ensure_fresh(self, session: LoadedSession) -> Outcome:
        if session.data.tokens.refresh_token_due(self._clock.now()) is None:
            return await self._settle(session, session)
        # one grant per session in this process, whoever asks (and whoever leaves)
        return await self._inflight.run(session.key, lambda: self._refresh(session))

    async def _settle(self, came_with: LoadedSession, current: LoadedSession) -> Outcome:
        """The outcome when no grant is due: ``current`` is usable as it is (Fresh, or
        Refreshed when another request or replica rotated it since ``came_with`` was read),
        or its access token expired with no way to refresh it and the session is over."""
        if current.data.tokens.access_token_valid(self._clock.now()):
            if current.generation != came_with.generation:
                return Refreshed(current)
            return Fresh(current)
        await self._sessions.destroy(current)
        return self._told(Ended.expired(current))

    def _told(self, outcome: Refreshed | Ended | Unavailable) -> Outcome:
        self._observe(outcome)
        return outcome

    def _unavailable(self, current: LoadedSession) -> Outcome:
        usable = current.data.tokens.access_token_valid(self._clock.now())
        return self._told(Unavailable(current, usable))

    async def _refresh(self, session: LoadedSession) -> Outcome:
        lock = self._locks.refresh_lock(session.key, self._lease)
        if not await lock.acquire(self._wait):
            return await self._after_wait(session)
        renew = asyncio.create_task(self._renew(lock))
        try:
            return await self._refresh_locked(session)
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            await lock.release()

    async def _refresh_locked(self, session: LoadedSession) -> Outcome:
        current = await self._sessions.load(session.handle)
        if current is None:
            return self._told(Ended.rejected(session, "session_gone"))
        refresh_token = current.data.tokens.refresh_token_due(self._clock.now())
        if refresh_token is None:  # another replica refreshed while we waited for the lock
            return await self._settle(session, current)
        try:
            key = current.data.tokens.dpop_key  # DPoP: a refresh is proved with the same key
            new = await (self._refresher(refresh_token, current.data.sub, key) if key
                         else self._refresher(refresh_token, current.data.sub))
        except RefreshRejectedError as exc:
            await self._sessions.destroy(current)
            return self._told(Ended.rejected(current, exc.error))
        except RefreshUnavailableError:
            return self._unavailable(current)
        saved = await self._sessions.replace_tokens(current, new)
        if saved is not None:
            return self._told(Refreshed(saved))
        # Lost the compare-and-set: only possible once our lease was lost; the other
        # writer's result stands (ours is dropped unsaved).
        reread = await self._sessions.load(session.handle)
        if reread is None:
            return self._told(Ended.rejected(session, "session_gone"))
        if reread.data.tokens.refresh_token_due(self._clock.now()) is not None:
            return self._unavailable(reread)
        return await self._settle(session, reread)

    async def _renew(self, lock: StoreLock) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            with contextlib.suppress(Exception):
                await lock.extend()

    async def _after_wait(self, session: LoadedSession) -> Outcome:
        current = await self._sessions.load(session.handle)
        if current is None:
            return self._told(Ended.rejected(session, "session_gone"))
        if current.data.tokens.refresh_token_due(self._clock.now()) is None:
            return await self._settle(session, current)
        return self._unavailable(current)
