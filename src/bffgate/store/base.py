"""The store contracts, one Protocol per concern, that the Redis and in-memory stores implement.

- ``SessionRecords``: session records and the sub / IdP-sid indexes that revocation reads.
  A record is opaque bytes plus two numbers the store itself needs: the absolute expiry (so
  the TTL it slides never outlives it) and a generation counter (so a rotated token set is
  saved with compare-and-set: two writers never both win).
- ``LoginRecordStore``: single-use login records (one per login in flight).
- ``ReplayGuard``: names claimed once within a window (back-channel logout ``jti``).
- ``RefreshLocks``: lease locks, one per session, for the single-flight refresh (and one per
  client-token cache key).
- ``TokenCache``: sealed blobs with a TTL, shared by the replicas (client-credentials tokens).

``SessionStore`` is all five plus the backend's lifecycle: what app.py builds and closes.
Every backend failure surfaces as ``bffgate.errors.StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

# (store key, its new generation or None when deleted); key None: anything may have changed
ChangeListener = Callable[[str | None, int | None], None]


class SessionChanges:
    """Who hears of session writes. A store tells its listeners of every record it rewrites
    or deletes at once, in the writing process; a shared store (Redis) also tells the other
    processes, whose ``follow_session_changes`` task delivers them there (and says
    "anything may have changed", key None, whenever it may have missed some)."""

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

    def add(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def remove(self, listener: ChangeListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def tell(self, key: str | None, generation: int | None) -> None:
        for listener in self._listeners:
            listener(key, generation)


@dataclass(frozen=True)
class StoredSession:
    data: bytes
    absolute_expiry_ms: int
    generation: int


@dataclass(frozen=True)
class PeekedSession:
    """A record as the store holds it, read without sliding its idle TTL: ``ttl_ms`` is what
    is left of it (the last slide was ``idle - ttl_ms`` ago while the idle window binds)."""

    data: bytes
    absolute_expiry_ms: int
    generation: int
    ttl_ms: int


class SessionRecords(Protocol):
    changes: SessionChanges

    async def create_session(
        self, key: str, data: bytes, *, now_ms: int, idle_ms: int, absolute_expiry_ms: int,
        sub: str, idp_sid: str | None,
    ) -> None:
        """Store a new record, indexed by ``sub`` and ``idp_sid``: a record that exists is
        always in its indexes (a failure part-way never leaves one that revocation misses)."""
        ...

    async def load_session(self, key: str, *, now_ms: int, idle_ms: int) -> StoredSession | None:
        """Read the record and slide its idle TTL, in one round trip."""
        ...

    async def replace_session(
        self, key: str, data: bytes, *, expected_generation: int, now_ms: int, idle_ms: int
    ) -> bool:
        """Compare-and-set: write only if the generation is unchanged; bumps it."""
        ...

    async def delete_session(self, key: str, *, sub: str | None = None,
                             idp_sid: str | None = None) -> bool: ...

    async def sessions_exist(self, keys: list[str]) -> list[bool]:
        """Which of these sessions are still live, in one round trip, without sliding their
        idle TTL (the WebSocket watcher, bffgate.endpoints.socket_registry)."""
        ...

    async def keys_for_sub(self, sub: str) -> list[str]: ...

    async def follow_session_changes(self) -> None:
        """Until cancelled: tell ``changes`` of the writes other processes make (nothing to
        do for a store no other process shares)."""
        ...

    async def keys_for_idp_sid(self, idp_sid: str) -> list[str]: ...

    async def peek_sessions(self, keys: list[str]) -> list[PeekedSession | None]:
        """The records of these keys with their remaining TTL, in one round trip, WITHOUT
        sliding it (the admin API, the per-user limit); None for a key with no live record."""
        ...


class LoginRecordStore(Protocol):
    async def put_login(self, state: str, data: bytes, ttl_seconds: int) -> None: ...

    async def take_login(self, state: str) -> bytes | None:
        """Atomically fetch and delete (single use)."""
        ...


class ReplayGuard(Protocol):
    async def claim_once(self, name: str, ttl_seconds: int) -> bool:
        """True the first time ``name`` is claimed within ``ttl_seconds``."""
        ...


class StoreLock(Protocol):
    """A lease lock with a token-checked release."""

    async def acquire(self, wait_seconds: float) -> bool: ...

    async def extend(self) -> bool: ...

    async def release(self) -> None: ...


class RefreshLocks(Protocol):
    def refresh_lock(self, key: str, lease_seconds: float) -> StoreLock: ...


class TokenCache(Protocol):
    """Sealed blobs shared by every replica, each with its own TTL (client-credentials tokens:
    the caller seals them; the store never sees a token in clear)."""

    async def get_cached_token(self, key: str) -> bytes | None: ...

    async def put_cached_token(self, key: str, blob: bytes, ttl_ms: int) -> None: ...


class SessionStore(SessionRecords, LoginRecordStore, ReplayGuard, RefreshLocks, TokenCache,
                   Protocol):
    """A whole backend: every concern above, plus its health check and shutdown."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
