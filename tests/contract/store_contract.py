"""The SessionStore contract, written once and run against every store (memory, Redis):
one class per concern of store/base.py, and ``StoreContract`` for a whole backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from bffgate.errors import StoreUnavailable
from bffgate.store.base import (
    LoginRecordStore,
    RefreshLocks,
    ReplayGuard,
    SessionRecords,
    SessionStore,
)
from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore, create_redis_client
from support.idp import free_port

NOW = int(time.time() * 1000)
IDLE = 60_000
ABS = NOW + 3_600_000


class LoginRecordsContract:
    async def test_login_record_is_single_use(self, store: LoginRecordStore) -> None:
        await store.put_login("state-1", b"record", 60)
        assert await store.take_login("state-1") == b"record"
        assert await store.take_login("state-1") is None

    async def test_unknown_login_record(self, store: LoginRecordStore) -> None:
        assert await store.take_login("nope") is None

    async def test_login_record_expires(self, store: LoginRecordStore) -> None:
        await store.put_login("state-2", b"record", 1)
        await asyncio.sleep(1.2)
        assert await store.take_login("state-2") is None



class SessionRecordsContract:
    async def test_create_and_load_session(self, store: SessionRecords) -> None:
        await store.create_session("k1", b"data", now_ms=NOW, idle_ms=IDLE,
                                   absolute_expiry_ms=ABS, sub="alice", idp_sid="sid-1")
        got = await store.load_session("k1", now_ms=NOW, idle_ms=IDLE)
        assert got is not None
        assert got.data == b"data" and got.absolute_expiry_ms == ABS and got.generation == 1

    async def test_idle_timeout_ends_session(self, store: SessionRecords) -> None:
        await store.create_session("k-idle", b"d", now_ms=NOW, idle_ms=1000,
                                   absolute_expiry_ms=ABS, sub="a", idp_sid=None)
        assert await store.load_session("k-idle", now_ms=NOW, idle_ms=1000) is not None
        await asyncio.sleep(1.3)
        assert await store.load_session("k-idle", now_ms=NOW + 1300, idle_ms=1000) is None

    async def test_absolute_expiry_is_never_extended(self, store: SessionRecords) -> None:
        await store.create_session("k-abs", b"d", now_ms=NOW, idle_ms=IDLE,
                                   absolute_expiry_ms=NOW + 500, sub="a", idp_sid=None)
        assert await store.load_session("k-abs", now_ms=NOW + 600, idle_ms=IDLE) is None

    async def test_replace_is_compare_and_set(self, store: SessionRecords) -> None:
        await store.create_session("k-cas", b"v1", now_ms=NOW, idle_ms=IDLE,
                                   absolute_expiry_ms=ABS, sub="a", idp_sid=None)
        assert await store.replace_session("k-cas", b"v2", expected_generation=1, now_ms=NOW,
                                           idle_ms=IDLE)
        # a second writer that read generation 1 loses
        assert not await store.replace_session("k-cas", b"v3", expected_generation=1,
                                               now_ms=NOW, idle_ms=IDLE)
        got = await store.load_session("k-cas", now_ms=NOW, idle_ms=IDLE)
        assert got is not None and got.data == b"v2" and got.generation == 2
        assert got.absolute_expiry_ms == ABS

    async def test_replace_missing_session_fails(self, store: SessionRecords) -> None:
        assert not await store.replace_session("k-none", b"x", expected_generation=1,
                                               now_ms=NOW, idle_ms=IDLE)

    async def test_delete_and_indexes(self, store: SessionRecords) -> None:
        for k in ("ka", "kb"):
            await store.create_session(k, b"d", now_ms=NOW, idle_ms=IDLE, absolute_expiry_ms=ABS,
                                       sub="bob", idp_sid="sid-bob")
        assert await store.keys_for_sub("bob") == ["ka", "kb"]
        assert await store.keys_for_idp_sid("sid-bob") == ["ka", "kb"]
        assert await store.delete_session("ka", sub="bob", idp_sid="sid-bob")
        assert not await store.delete_session("ka", sub="bob")
        assert await store.keys_for_sub("bob") == ["kb"]
        assert await store.load_session("ka", now_ms=NOW, idle_ms=IDLE) is None



class RefreshLocksContract:
    async def test_lock_is_exclusive_and_token_checked(self, store: RefreshLocks) -> None:
        a = store.refresh_lock("k-lock", 5)
        b = store.refresh_lock("k-lock", 5)
        assert await a.acquire(1)
        assert not await b.acquire(0.2)
        await b.release()  # not the holder: must not free a's lock
        assert not await b.acquire(0.1)
        assert await a.extend()
        await a.release()
        assert await b.acquire(1)
        await b.release()

    async def test_lock_lease_expires(self, store: RefreshLocks) -> None:
        a = store.refresh_lock("k-lease", 0.3)
        assert await a.acquire(1)
        b = store.refresh_lock("k-lease", 0.3)
        assert await b.acquire(2)  # a's lease ran out
        assert not await a.extend()  # a learns it lost the lock
        await b.release()



class ReplayGuardContract:
    async def test_claim_once_is_a_replay_guard(self, store: ReplayGuard) -> None:
        assert await store.claim_once("jti-1", 60)
        assert not await store.claim_once("jti-1", 60)
        assert await store.claim_once("jti-2", 60)



class StoreContract(LoginRecordsContract, SessionRecordsContract, RefreshLocksContract,
                    ReplayGuardContract):
    """Subclasses provide a ``store`` fixture yielding a fresh SessionStore."""

    @pytest.fixture
    async def unreachable_store(self, store: SessionStore) -> AsyncIterator[SessionStore | None]:
        """The same kind of store with nothing behind it (None: a store with no backend,
        which is always reachable). Override for a store the contract doesn't know."""
        if isinstance(store, MemoryStore):
            yield None
        elif isinstance(store, RedisStore):
            gone = RedisStore(create_redis_client(f"redis://127.0.0.1:{free_port()}/0",
                                                  timeout=1), key_prefix="gone:")
            yield gone
            await gone.close()
        else:
            raise AssertionError(f"override unreachable_store for {type(store).__name__}")

    async def test_ping(self, store: SessionStore,
                        unreachable_store: SessionStore | None) -> None:
        """/readyz relies on ping: it answers for a store that works, and raises the typed
        StoreUnavailable (never a raw driver error, never silence) when the backend is gone."""
        assert await store.ping() is None
        await store.put_login("after-ping", b"r", 60)  # the store still works after a ping
        assert await store.take_login("after-ping") == b"r"
        if unreachable_store is not None:
            with pytest.raises(StoreUnavailable):
                await unreachable_store.ping()
