"""Unit tests for the in-memory store's lease lock (the Redis lock's semantics, one process)."""

from __future__ import annotations

import asyncio

import pytest

from bffgate.clock import FrozenClock
from bffgate.store.memory import MemoryStore


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(1000.0)


@pytest.fixture
def store(clock: FrozenClock) -> MemoryStore:
    """The store's leases run on the injected clock (the same one as its sessions)."""
    return MemoryStore(clock)


async def test_first_acquire_wins_second_fails(store: MemoryStore, clock: FrozenClock) -> None:
    """While one holder has the lease, another lock on the same key cannot take it."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    assert await first.acquire(0)
    assert not await second.acquire(0)


async def test_locks_on_different_keys_are_independent(
    store: MemoryStore, clock: FrozenClock
) -> None:
    """Each session has its own lock."""
    assert await store.refresh_lock("h1", 10).acquire(0)
    assert await store.refresh_lock("h2", 10).acquire(0)


async def test_release_lets_the_next_one_in(store: MemoryStore, clock: FrozenClock) -> None:
    """After release, another lock acquires at once."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    await first.release()
    assert await second.acquire(0)


async def test_release_is_token_checked(store: MemoryStore, clock: FrozenClock) -> None:
    """A holder whose lease expired and was taken over cannot release the new holder's lock."""
    first, second, third = (store.refresh_lock("h1", 10) for _ in range(3))
    await first.acquire(0)
    clock.t += 11
    assert await second.acquire(0)
    await first.release()
    assert not await third.acquire(0)


async def test_lease_expires(store: MemoryStore, clock: FrozenClock) -> None:
    """A crashed holder's lock frees itself when the lease runs out."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    clock.t += 9.9
    assert not await second.acquire(0)
    clock.t += 0.1
    assert await second.acquire(0)


async def test_extend_renews_only_the_holders_lease(
    store: MemoryStore, clock: FrozenClock
) -> None:
    """extend() pushes the lease out for the holder; a non-holder's extend() fails."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    clock.t += 8
    assert await first.extend()
    assert not await second.extend()
    clock.t += 8
    assert not await second.acquire(0)


async def test_extend_after_losing_the_lock_fails(store: MemoryStore, clock: FrozenClock) -> None:
    """Once the lease lapsed and someone else took it, the old holder learns it lost."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    clock.t += 11
    await second.acquire(0)
    assert not await first.extend()


async def test_waiter_gets_the_lock_when_released(store: MemoryStore) -> None:
    """acquire(wait) polls until the holder releases (a few milliseconds, even on a frozen
    clock: the wait is counted in polls)."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    waiter = asyncio.create_task(second.acquire(2))
    await asyncio.sleep(0.02)
    assert not waiter.done()
    await first.release()
    assert await asyncio.wait_for(waiter, 1)


async def test_waiter_gives_up_after_its_wait(store: MemoryStore) -> None:
    """acquire(wait) returns False when the lock stays held past the wait."""
    first, second = store.refresh_lock("h1", 10), store.refresh_lock("h1", 10)
    await first.acquire(0)
    assert not await second.acquire(0.03)
