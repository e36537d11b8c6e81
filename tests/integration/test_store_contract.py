"""Integration tests: the shared SessionStore contract against a real redis-server and
against the in-memory store (unit-level, same suite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore
from contract.store_contract import StoreContract

pytestmark = pytest.mark.integration


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def store(self, redis_store: RedisStore) -> AsyncIterator[RedisStore]:
        yield redis_store


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        yield MemoryStore()


async def test_burst_beyond_pool_size_waits_instead_of_failing(redis_server) -> None:
    """redis-py pools raise 'Too many connections' when full; the store queues instead."""
    import asyncio

    from bffgate.store.redis import create_redis_client

    store = RedisStore(create_redis_client(redis_server.url, max_connections=8),
                       key_prefix="burst:", max_concurrency=8)
    try:
        await store.create_session("k", b"d", now_ms=0, idle_ms=10**9,
                                   absolute_expiry_ms=10**12, sub="s", idp_sid=None)
        results = await asyncio.gather(*[store.load_session("k", now_ms=1, idle_ms=10**9)
                                         for _ in range(500)])
        assert all(r is not None for r in results)
    finally:
        await store.close()


class TestRedisStoreOverUnixSocket(StoreContract):
    """The same contract through ``unix://`` (a sidecar Redis on a shared socket)."""

    @pytest.fixture(scope="class")
    def unix_redis(self, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
        from support.redis import RedisServer

        sock = tmp_path_factory.mktemp("redis-unix") / "redis.sock"
        with RedisServer(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"]) as srv:
            yield f"unix://{sock}?db=0"
            srv.stop()

    @pytest.fixture
    async def store(self, unix_redis: str) -> AsyncIterator[RedisStore]:
        from bffgate.store.redis import create_redis_client

        s = RedisStore(create_redis_client(unix_redis), key_prefix="unix:")
        await s._r.flushdb()
        yield s
        await s.close()


async def test_pooled_connections_dead_after_a_redis_restart_are_reconnected() -> None:
    """Redis restarts (an upgrade, a failover to the same address): every connection the
    pool holds is dead. The next commands reconnect and succeed; before, each dead pooled
    connection failed one command with a 503 (redis-py retries nothing by default)."""
    import asyncio

    from bffgate.store.redis import create_redis_client
    from support.redis import RedisServer

    server = RedisServer(appendonly=True).start()
    store = RedisStore(create_redis_client(server.url, max_connections=8, timeout=1),
                       key_prefix="restart:", max_concurrency=8)
    try:
        await store.create_session("k", b"d", now_ms=0, idle_ms=10**9,
                                   absolute_expiry_ms=10**12, sub="s", idp_sid=None)
        # Several connections in the pool, all idle and alive.
        await asyncio.gather(*[store.load_session("k", now_ms=1, idle_ms=10**9)
                               for _ in range(8)])
        server.stop()
        server.start()
        results = await asyncio.gather(*[store.load_session("k", now_ms=2, idle_ms=10**9)
                                         for _ in range(8)])
        assert all(r is not None for r in results)
        # The refresh lease lock too (redis-py's Lock, outside the store's commands).
        await asyncio.gather(*[store.load_session("k", now_ms=3, idle_ms=10**9)
                               for _ in range(8)])
        server.stop()
        server.start()
        locks = [store.refresh_lock(f"lease-{i}", 5.0) for i in range(8)]
        assert all(await asyncio.gather(*[lock.acquire(1.0) for lock in locks]))
    finally:
        await store.close()
        server.close()
