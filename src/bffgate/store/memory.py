"""In-memory SessionStore for `bffgate demo` and tests: same contract, one process only.

One clock decides every expiry: the store's own (``clock``, the gateway's, so a test's
FrozenClock moves login records, replay claims and lock leases along with sessions, whose
times the caller passes as ``now_ms`` from that same clock).
"""

from __future__ import annotations

import asyncio
import math
import uuid

from bffgate.clock import Clock, SystemClock
from bffgate.store.base import PeekedSession, SessionChanges, StoredSession

_POLL = 0.01  # seconds between attempts of a waiting lock


class _Entry:
    __slots__ = ("abs_ms", "data", "expires_ms", "gen")

    def __init__(self, data: bytes, abs_ms: int, gen: int, expires_ms: int) -> None:
        self.data, self.abs_ms, self.gen, self.expires_ms = data, abs_ms, gen, expires_ms


class MemoryLock:
    """Lease lock over a shared dict; mirrors the Redis lock's semantics."""

    def __init__(self, owner: MemoryStore, key: str, lease: float) -> None:
        self._owner, self._key, self._lease = owner, key, lease
        self._token = uuid.uuid4().hex

    def _free(self) -> bool:
        held = self._owner._locks.get(self._key)
        return held is None or held[1] <= self._owner.clock.now()

    async def acquire(self, wait_seconds: float) -> bool:
        # The wait is counted in polls, not read off a clock: a frozen test clock must not
        # make a waiter wait for ever, and the lease itself is the store clock's business.
        for attempt in range(math.ceil(wait_seconds / _POLL) + 1):
            if attempt:
                await asyncio.sleep(_POLL)
            if self._free():
                self._owner._locks[self._key] = (self._token,
                                                 self._owner.clock.now() + self._lease)
                return True
        return False

    async def extend(self) -> bool:
        held = self._owner._locks.get(self._key)
        if not held or held[0] != self._token or held[1] <= self._owner.clock.now():
            return False
        self._owner._locks[self._key] = (self._token, self._owner.clock.now() + self._lease)
        return True

    async def release(self) -> None:
        held = self._owner._locks.get(self._key)
        if held and held[0] == self._token:
            del self._owner._locks[self._key]


class MemoryStore:
    """Dict-backed store with explicit expiry checks, all on one clock."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self._logins: dict[str, tuple[bytes, float]] = {}
        self._sessions: dict[str, _Entry] = {}
        self._index: dict[str, set[str]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._claims: dict[str, float] = {}
        self._cached: dict[str, tuple[bytes, float]] = {}
        self.changes = SessionChanges()

    async def put_login(self, state: str, data: bytes, ttl_seconds: int) -> None:
        now = self.clock.now()
        self._logins[state] = (data, now + ttl_seconds)
        if len(self._logins) > 10_000:
            for k in [k for k, (_, exp) in self._logins.items() if exp <= now]:
                del self._logins[k]

    async def take_login(self, state: str) -> bytes | None:
        item = self._logins.pop(state, None)
        if item is None or item[1] <= self.clock.now():
            return None
        return item[0]

    async def create_session(
        self, key: str, data: bytes, *, now_ms: int, idle_ms: int, absolute_expiry_ms: int,
        sub: str, idp_sid: str | None,
    ) -> None:
        self._sessions[key] = _Entry(data, absolute_expiry_ms, 1,
                                     min(now_ms + idle_ms, absolute_expiry_ms))
        self._index.setdefault("sub:" + sub, set()).add(key)
        if idp_sid:
            self._index.setdefault("sid:" + idp_sid, set()).add(key)

    def _live(self, key: str, now_ms: int) -> _Entry | None:
        entry = self._sessions.get(key)
        if entry is None:
            return None
        if entry.expires_ms <= now_ms:
            del self._sessions[key]
            return None
        return entry

    async def load_session(self, key: str, *, now_ms: int, idle_ms: int) -> StoredSession | None:
        entry = self._live(key, now_ms)
        if entry is None:
            return None
        entry.expires_ms = min(now_ms + idle_ms, entry.abs_ms)
        return StoredSession(entry.data, entry.abs_ms, entry.gen)

    async def replace_session(
        self, key: str, data: bytes, *, expected_generation: int, now_ms: int, idle_ms: int
    ) -> bool:
        entry = self._live(key, now_ms)
        if entry is None or entry.gen != expected_generation:
            return False
        entry.data, entry.gen = data, entry.gen + 1
        entry.expires_ms = min(now_ms + idle_ms, entry.abs_ms)
        self.changes.tell(key, entry.gen)
        return True

    async def sessions_exist(self, keys: list[str]) -> list[bool]:
        now_ms = int(self.clock.now() * 1000)
        return [self._live(key, now_ms) is not None for key in keys]

    async def delete_session(self, key: str, *, sub: str | None = None,
                             idp_sid: str | None = None) -> bool:
        for idx in (f"sub:{sub}" if sub else None, f"sid:{idp_sid}" if idp_sid else None):
            if idx and idx in self._index:
                self._index[idx].discard(key)
        deleted = self._sessions.pop(key, None) is not None
        self.changes.tell(key, None)
        return deleted

    async def keys_for_sub(self, sub: str) -> list[str]:
        return sorted(k for k in self._index.get("sub:" + sub, set()) if k in self._sessions)

    async def follow_session_changes(self) -> None:
        """One process only: every change was told when it was made."""
        return None

    async def keys_for_idp_sid(self, idp_sid: str) -> list[str]:
        return sorted(k for k in self._index.get("sid:" + idp_sid, set()) if k in self._sessions)

    async def claim_once(self, name: str, ttl_seconds: int) -> bool:
        now = self.clock.now()
        if len(self._claims) > 10_000:
            self._claims = {k: exp for k, exp in self._claims.items() if exp > now}
        if self._claims.get(name, 0.0) > now:
            return False
        self._claims[name] = now + ttl_seconds
        return True

    async def get_cached_token(self, key: str) -> bytes | None:
        item = self._cached.get(key)
        if item is None or item[1] <= self.clock.now():
            return None
        return item[0]

    async def put_cached_token(self, key: str, blob: bytes, ttl_ms: int) -> None:
        self._cached[key] = (blob, self.clock.now() + ttl_ms / 1000)

    def refresh_lock(self, key: str, lease_seconds: float) -> MemoryLock:
        return MemoryLock(self, key, lease_seconds)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def peek_sessions(self, keys: list[str]) -> list[PeekedSession | None]:
        now_ms = int(self.clock.now() * 1000)
        entries = [self._live(key, now_ms) for key in keys]
        return [None if e is None else PeekedSession(e.data, e.abs_ms, e.gen, e.expires_ms - now_ms)
                for e in entries]
