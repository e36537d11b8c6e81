"""Integration: SessionRecords.peek_sessions (the admin API's read) against a real
redis-server and the memory store: records with their remaining TTL, in order, None for a
missing one, and no slide of the idle TTL (the load path's slide is what last_seen_at is
derived from: a peek must never move it)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from bffgate.store.base import SessionRecords
from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore, create_redis_client
from support.redis import RedisServer

pytestmark = pytest.mark.integration

IDLE_MS = 60_000


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest,
                redis_server: RedisServer) -> AsyncIterator[SessionRecords]:
    if request.param == "memory":
        yield MemoryStore()
        return
    redis = RedisStore(create_redis_client(redis_server.url, timeout=1.0),
                       key_prefix=f"peek{secrets.token_hex(4)}:")
    yield redis
    await redis.close()


def now_ms() -> int:
    return int(time.time() * 1000)


async def _create(store: SessionRecords, key: str, data: bytes, abs_in_ms: int = 3_600_000) -> None:
    t = now_ms()
    await store.create_session(key, data, now_ms=t, idle_ms=IDLE_MS,
                               absolute_expiry_ms=t + abs_in_ms, sub="alice", idp_sid=None)


async def test_peek_reads_records_and_ttl_in_order(store: SessionRecords) -> None:
    await _create(store, "k1", b"one")
    await _create(store, "k2", b"two|with|bars")
    got = await store.peek_sessions(["k2", "missing", "k1"])
    assert [g.data if g else None for g in got] == [b"two|with|bars", None, b"one"]
    for g in (got[0], got[2]):
        assert g is not None and g.generation == 1
        assert IDLE_MS - 2000 < g.ttl_ms <= IDLE_MS
    assert await store.peek_sessions([]) == []


async def test_peek_never_slides_the_idle_ttl_but_load_does(store: SessionRecords) -> None:
    await _create(store, "k", b"x")
    await asyncio.sleep(0.3)
    first = (await store.peek_sessions(["k"]))[0]
    await asyncio.sleep(0.3)
    second = (await store.peek_sessions(["k"]))[0]
    assert first is not None and second is not None
    assert second.ttl_ms <= first.ttl_ms - 250  # counted down: the peek wrote nothing
    assert second.ttl_ms <= IDLE_MS - 500
    await store.load_session("k", now_ms=now_ms(), idle_ms=IDLE_MS)  # the hot path's slide
    slid = (await store.peek_sessions(["k"]))[0]
    assert slid is not None and slid.ttl_ms > IDLE_MS - 200


async def test_peek_ttl_is_capped_by_the_absolute_expiry(store: SessionRecords) -> None:
    await _create(store, "k", b"x", abs_in_ms=5_000)
    got = (await store.peek_sessions(["k"]))[0]
    assert got is not None and 3_000 < got.ttl_ms <= 5_000


async def test_peek_of_a_deleted_record_is_none(store: SessionRecords) -> None:
    await _create(store, "k", b"x")
    assert await store.delete_session("k", sub="alice")
    assert await store.peek_sessions(["k"]) == [None]


async def test_redis_peek_skips_a_record_still_being_created(redis_store: RedisStore) -> None:
    """Generation 0 (a Cluster create in progress) never loads, so it is never listed."""
    await redis_store._r.set(redis_store._s("pending"), b"99999999999999|0|x", px=10_000)
    assert await redis_store.peek_sessions(["pending"]) == [None]


async def test_redis_peek_writes_nothing(redis_store: RedisStore) -> None:
    await _create(redis_store, "k", b"x")
    r = redis_store._r

    async def writes() -> int:
        stats = await r.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items()
                   if k.split("_", 1)[1] in ("set", "pexpire", "expire", "del", "publish",
                                             "evalsha", "eval"))

    before = await writes()
    for _ in range(5):
        await redis_store.peek_sessions(["k", "other"])
    assert await writes() == before


async def test_peek_and_the_admin_view_on_a_redis_cluster() -> None:
    """The records of one user live in different slots (and nodes): one non-transactional
    pipeline still reads them all, and the inventory lists and finds them."""
    from bffgate.clock import SystemClock
    from bffgate.crypto.cookie_codec import CookieCodec
    from bffgate.session.inventory import SessionInventory
    from bffgate.session.model import NewTokens, SessionOrigin
    from bffgate.session.service import SessionService
    from support.redis import RedisClusterSet

    cluster = RedisClusterSet().start()
    store = RedisStore(create_redis_client(cluster.url, timeout=2.0, cluster=True),
                       key_prefix=f"pc{secrets.token_hex(4)}:")
    try:
        svc = SessionService(store, CookieCodec([secrets.token_urlsafe(32)]), SystemClock(),
                             idle_timeout=600, absolute_timeout=3600, refresh_ahead=10)
        made = []
        for i in range(6):
            _, s = await svc.create(NewTokens("at", "rt", None, time.time() + 300), sub="zed",
                                    idp_sid=None, claims={},
                                    origin=SessionOrigin(f"10.0.0.{i}", "ua"))
            made.append(s)
        peeked = await store.peek_sessions([s.key for s in made] + ["missing"])
        assert [p is not None for p in peeked] == [True] * 6 + [False]
        inventory = SessionInventory(store, idle_timeout=600)
        views = await inventory.of_sub("zed", time.time())
        assert sorted(v.to_json()["client_ip"] for v in views) == [f"10.0.0.{i}"
                                                                  for i in range(6)]
        found = await inventory.by_id(views[3].id, time.time())
        assert found is not None and found.key == views[3].key
    finally:
        await store.close()
        cluster.close()
