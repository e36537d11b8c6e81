"""SessionService: sessions over the store's SessionRecords and the cookie codec.

A session is created with a new random id (fixation-proof), read for a request from the
near-cache when this process read it less than a second ago, else from the store (which
slides its idle TTL in the same round trip: session/near_cache.py), its tokens replaced with
compare-and-set after a refresh, and deleted. The record's bytes: session/record.py; when new tokens are
due for refresh: session/schedule.py; login records: session/logins.py.
"""

from __future__ import annotations

import secrets
from typing import Any

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.crypto.cookie_codec import CookieCodec, CookieInvalid, SessionHandle
from bffgate.session.model import (
    ExchangedToken,
    LoadedSession,
    NewTokens,
    NoSession,
    SessionData,
    SessionOrigin,
)
from bffgate.session.near_cache import NearCache
from bffgate.session.record import RecordUnreadable, decode_session, encode_session
from bffgate.session.schedule import Jitter, RefreshSchedule
from bffgate.single_flight import SingleFlight
from bffgate.store.base import SessionRecords


class SessionService:
    def __init__(self, store: SessionRecords, codec: CookieCodec, clock: Clock, *,
                 idle_timeout: int, absolute_timeout: int, refresh_ahead: int,
                 jitter: Jitter | None = None, near_cache: NearCache | None = None) -> None:
        self._store, self._codec, self._clock = store, codec, clock
        self.idle, self.absolute = idle_timeout, absolute_timeout
        self._schedule = RefreshSchedule(refresh_ahead, jitter)
        # Off unless given (Gateway gives one per process: session.near_cache).
        self.near_cache = near_cache if near_cache is not None else NearCache(max_age=0)
        store.changes.add(self._changed)
        self._reading: SingleFlight[str, LoadedSession | None] = SingleFlight()

    def _changed(self, key: str | None, generation: int | None) -> None:
        if key is None:
            self.near_cache.clear()
        else:
            self.near_cache.changed(key, generation)

    def _ms(self, now: float) -> dict[str, int]:
        return {"now_ms": int(now * 1000), "idle_ms": self.idle * 1000}

    def _loaded(self, handle: SessionHandle, data: SessionData, generation: int,
                now: float) -> LoadedSession:
        return LoadedSession(handle, data, generation,
                             min(now + self.idle, data.absolute_expires_at))

    async def create(self, new: NewTokens, *, sub: str, idp_sid: str | None,
                     claims: dict[str, Any], origin: SessionOrigin | None = None,
                     ) -> tuple[str, LoadedSession]:
        """A brand-new session (new random id: fixation-proof). Returns the cookie value.
        ``origin``: the login's client address and User-Agent, shown by the admin API."""
        now = self._clock.now()
        handle = SessionHandle.new()
        data = SessionData(sub, idp_sid, claims, now, now + self.absolute,
                           secrets.token_urlsafe(16), self._schedule.tokens(new, now),
                           origin=origin)
        await self._store.create_session(
            handle.key, encode_session(handle, data), **self._ms(now),
            absolute_expiry_ms=int(data.absolute_expires_at * 1000), sub=sub, idp_sid=idp_sid)
        return self._codec.encode(handle), self._loaded(handle, data, 1, now)

    def decode_cookie(self, value: str | None) -> SessionHandle | None:
        if not value:
            return None
        try:
            return self._codec.decode(value)
        except CookieInvalid:
            return None

    async def from_cookie(self, value: str | None) -> LoadedSession | NoSession:
        """The session a request's cookie names (one store round trip), or why there is none.

        ``value`` is the single session-cookie value the edge found (None: no cookie); a
        cookie sent twice is the edge's to refuse before asking. A cookie that fails its
        signature or format check is audited here (``request.rejected``, ``cookie_invalid``)."""
        if not value:
            return NoSession.NO_COOKIE
        handle = self.decode_cookie(value)
        if handle is None:
            audit.emit(AuditEvent.REQUEST_REJECTED, level="warning",
                       reason=NoSession.COOKIE_INVALID.value, status=401)
            return NoSession.COOKIE_INVALID
        session = self._recent(handle) or await self._read(handle)
        return NoSession.SESSION_UNKNOWN if session is None else session

    async def _read(self, handle: SessionHandle) -> LoadedSession | None:
        """``load``, shared by the requests that miss the near-cache for one session at the
        same time (the burst when a hot entry ages out). Only with the near-cache on: a read
        in flight may predate a request by its round trip, which the cache's bound allows."""
        if not self.near_cache.enabled:
            return await self.load(handle)
        loaded = await self._reading.run(handle.key, lambda: self.load(handle))
        return loaded if loaded is None or loaded.handle == handle else None

    def _recent(self, handle: SessionHandle) -> LoadedSession | None:
        """The near-cached session of ``handle`` while neither of its expiries has passed
        on this request's clock (the store then decides: it may have slid the idle TTL)."""
        cached = self.near_cache.get(handle.key)
        if cached is None or cached.handle != handle:
            return None
        if self._clock.now() >= cached.idle_expires_at:  # idle_expires_at <= absolute
            return None
        return cached

    async def load(self, handle: SessionHandle) -> LoadedSession | None:
        """One store round trip: read and slide the idle TTL. None when gone or unopenable.
        Always the store's copy (the refresh and the exchange re-read under their lock)."""
        now = self._clock.now()
        mark = self.near_cache.mark()
        stored = await self._store.load_session(handle.key, **self._ms(now))
        if stored is None:
            self.near_cache.drop(handle.key)
            return None
        try:
            data = decode_session(handle, stored.data)
        except RecordUnreadable:
            return None
        if now >= data.absolute_expires_at:
            return None
        session = self._loaded(handle, data, stored.generation, now)
        self.near_cache.put(session, since=mark)
        return session

    async def replace_tokens(self, current: LoadedSession, new: NewTokens) -> LoadedSession | None:
        """Save a rotated token set with compare-and-set; None if someone else wrote first.

        A refresh response without a refresh token keeps the old one (RFC 6749 6), and
        without an ID token keeps the old one (for id_token_hint at logout)."""
        now = self._clock.now()
        old = current.data.tokens
        merged = NewTokens(new.access_token, new.refresh_token or old.refresh_token,
                           new.id_token or old.id_token, new.expires_at,
                           new.dpop_key or old.dpop_key, new.token_type)  # DPoP: same key
        data = current.data.with_tokens(self._schedule.tokens(merged, now), now)
        ok = await self._store.replace_session(
            current.key, encode_session(current.handle, data),
            expected_generation=current.generation, **self._ms(now))
        return self._saved(current, data, now) if ok else None

    def _saved(self, current: LoadedSession, data: SessionData, now: float) -> LoadedSession:
        session = self._loaded(current.handle, data, current.generation + 1, now)
        self.near_cache.put(session)  # our own write: the newest (compare-and-set)
        return session

    async def save_exchanged(self, current: LoadedSession, key: str,
                             token: ExchangedToken) -> LoadedSession | None:
        """Cache a token exchanged for ``current``'s access token under ``key`` (one per
        route), with compare-and-set; None if someone else wrote first."""
        now = self._clock.now()
        data = current.data.with_exchanged(key, token)
        ok = await self._store.replace_session(
            current.key, encode_session(current.handle, data),
            expected_generation=current.generation, **self._ms(now))
        return self._saved(current, data, now) if ok else None

    async def destroy(self, session: LoadedSession) -> bool:
        return await self._store.delete_session(session.key, sub=session.data.sub,
                                               idp_sid=session.data.idp_sid)
