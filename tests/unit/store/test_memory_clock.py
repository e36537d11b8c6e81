"""Unit tests: the in-memory store decides every expiry on one injected clock."""

from __future__ import annotations

import asyncio

from bffgate.clock import FrozenClock
from bffgate.store.memory import MemoryStore


async def test_login_records_expire_on_the_store_clock() -> None:
    clock = FrozenClock()
    store = MemoryStore(clock)
    await store.put_login("s1", b"r1", 60)
    await store.put_login("s2", b"r2", 60)
    clock.advance(59)
    assert await store.take_login("s1") == b"r1"
    clock.advance(1)
    assert await store.take_login("s2") is None


async def test_replay_claims_expire_on_the_store_clock() -> None:
    clock = FrozenClock()
    store = MemoryStore(clock)
    assert await store.claim_once("jti", 900)
    clock.advance(899)
    assert not await store.claim_once("jti", 900)
    clock.advance(1)
    assert await store.claim_once("jti", 900)


async def test_a_frozen_clock_never_expires_anything() -> None:
    """Nothing reads the process's own time: a record outlives its TTL in real time."""
    store = MemoryStore(FrozenClock())
    await store.put_login("s", b"r", 0)
    assert await store.take_login("s") is None  # a TTL of 0 is over at once
    await store.put_login("s", b"r", 1)
    await asyncio.sleep(1.05)
    assert await store.take_login("s") == b"r"
