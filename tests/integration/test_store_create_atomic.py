"""Integration: creating a session never leaves a record that its indexes miss.

Revocation (logout by the IdP, admin, CLI) finds sessions through the sub and IdP-sid
indexes, so a record stored without its index entries would outlive a revocation. The
failure between the writes is injected by the real redis-server: an ACL user that may not
run one of the commands (the server refuses it as it would refuse any failed write).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bffgate.errors import StoreUnavailable
from bffgate.store.redis import RedisStore, create_redis_client
from support.redis import RedisServer

pytestmark = pytest.mark.integration
NOW = 1_700_000_000_000
ABS = NOW + 3_600_000


@pytest.fixture
async def admin(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def _store_without(redis_server: RedisServer, admin: aioredis.Redis, command: str,
                         *, cluster: bool) -> RedisStore:
    user, password = f"no{command}{secrets.token_hex(3)}", secrets.token_hex(16)
    await admin.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*",
                                "+@all", f"-{command}")
    url = redis_server.url.replace("redis://", f"redis://{user}:{password}@")
    return RedisStore(create_redis_client(url, timeout=1.0),
                      key_prefix=f"a{secrets.token_hex(4)}:", cluster=cluster)


async def _assert_no_unindexed_record(admin: aioredis.Redis, prefix: str) -> None:
    """Every live record (generation >= 1: one a cookie can name) is in its sub and sid
    index, whatever else a failure left behind."""
    async for name in admin.scan_iter(match=f"{prefix}s:*"):
        generation = (await admin.get(name)).split(b"|", 2)[1]
        if generation == b"0":  # pending: it never loads (and no cookie was issued)
            continue
        key = name.decode().split("{", 1)[1].rstrip("}")
        assert await admin.sismember(f"{prefix}sub:alice", key), "record missing from sub index"
        assert await admin.sismember(f"{prefix}sid:sid-1", key), "record missing from sid index"


async def _create(store: RedisStore) -> None:
    await store.create_session("k1", b"data", now_ms=NOW, idle_ms=60_000,
                               absolute_expiry_ms=ABS, sub="alice", idp_sid="sid-1")


@pytest.mark.parametrize("cluster", [False, True], ids=["script", "cluster-order"])
@pytest.mark.parametrize("refused", ["sadd", "expire", "set"])
async def test_a_failed_write_leaves_no_unindexed_session(redis_server, admin, refused,
                                                          cluster) -> None:
    """Whichever write fails, the caller is told (StoreUnavailable: no cookie is issued) and
    no record exists outside its indexes. (Before: the record was SET first and the indexes
    written after it, so a refused SADD or EXPIRE left a session revocation could not find.)"""
    store = await _store_without(redis_server, admin, refused, cluster=cluster)
    try:
        with pytest.raises(StoreUnavailable):
            await _create(store)
        await _assert_no_unindexed_record(admin, store._p)
        if not cluster:  # one script, the record last: no record at all was written
            assert await admin.keys(f"{store._p}s:*") == []
        assert await store.load_session("k1", now_ms=NOW, idle_ms=60_000) is None
    finally:
        await store.close()


async def test_a_pending_record_never_loads(redis_server, admin) -> None:
    """The cluster order's leftover when the index write fails: a record at generation 0
    that no read returns, no compare-and-set accepts, and revocation can still delete."""
    store = await _store_without(redis_server, admin, "sadd", cluster=True)
    try:
        with pytest.raises(StoreUnavailable):
            await _create(store)
        assert await admin.exists(f"{store._p}s:{{k1}}")  # the leftover
        assert await store.load_session("k1", now_ms=NOW, idle_ms=60_000) is None
        assert not await store.replace_session("k1", b"x", expected_generation=0, now_ms=NOW,
                                               idle_ms=60_000)
        assert await store.delete_session("k1", sub="alice", idp_sid="sid-1")
    finally:
        await store.close()


async def test_a_session_created_whole_is_indexed(redis_server, admin) -> None:
    for cluster in (False, True):
        store = RedisStore(create_redis_client(redis_server.url, timeout=1.0),
                           key_prefix=f"w{secrets.token_hex(4)}:", cluster=cluster)
        try:
            await _create(store)
            await _assert_no_unindexed_record(admin, store._p)
            assert await store.keys_for_sub("alice") == ["k1"]
            assert await store.keys_for_idp_sid("sid-1") == ["k1"]
        finally:
            await store.close()
