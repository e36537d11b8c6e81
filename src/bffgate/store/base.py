"""The SessionStore contract shared by the Redis and in-memory stores.

A session record is opaque bytes to the store, plus two numbers the store itself needs:
the absolute expiry (so the TTL it slides never outlives it) and a generation counter
(so a rotated token set is saved with compare-and-set: two writers never both win).
Every backend failure surfaces as ``bffgate.errors.StoreUnavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StoredSession:
    data: bytes
    absolute_expiry_ms: int
    generation: int


class StoreLock(Protocol):
    """A lease lock with a token-checked release."""

    async def acquire(self, wait_seconds: float) -> bool: ...

    async def extend(self) -> bool: ...

    async def release(self) -> None: ...


class SessionStore(Protocol):
    async def put_login(self, state: str, data: bytes, ttl_seconds: int) -> None: ...

    async def take_login(self, state: str) -> bytes | None:
        """Atomically fetch and delete (single use)."""
        ...

    async def create_session(
        self, key: str, data: bytes, *, now_ms: int, idle_ms: int, absolute_expiry_ms: int,
        sub: str, idp_sid: str | None,
    ) -> None: ...

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

    async def keys_for_sub(self, sub: str) -> list[str]: ...

    async def keys_for_idp_sid(self, idp_sid: str) -> list[str]: ...

    async def claim_once(self, name: str, ttl_seconds: int) -> bool:
        """True the first time ``name`` is claimed within ``ttl_seconds`` (replay guard)."""
        ...

    def refresh_lock(self, key: str, lease_seconds: float) -> StoreLock: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
