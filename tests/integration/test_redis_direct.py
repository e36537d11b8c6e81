"""store.redis_direct against a real redis-server: a connection is reused only in step (never
with a reply still in flight), scripts load themselves, the idle list is bounded, and a
write's WAIT counts that write (same connection)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bffgate.errors import StoreUnavailable
from bffgate.store.redis import RedisStore, create_redis_client
from bffgate.store.redis_direct import DirectCommands
from support.redis import RedisSentinelSet, RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    c = create_redis_client(redis_server.url, timeout=5.0)
    yield c
    await c.aclose()


async def test_a_command_cut_off_before_its_reply_never_answers_the_next(
        client: aioredis.Redis) -> None:
    """Cancelled between the command and its reply (BLPOP still waiting): the connection is
    dropped (by redis-py's reply reading, and here for a cut anywhere). Reused, its late
    reply (the element pushed below) would be read as GET's."""
    direct = DirectCommands(client.connection_pool, keep=4)
    queue, key = f"q:{secrets.token_hex(4)}", f"k:{secrets.token_hex(4)}"
    await client.set(key, b"mine")
    waiting = asyncio.create_task(direct.run(("BLPOP", queue, 5)))
    await asyncio.sleep(0.2)  # sent, and blocked in Redis
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await client.rpush(queue, b"late")  # what the dropped connection's BLPOP now returns
    for _ in range(3):
        assert await direct.run(("GET", key)) == [b"mine"]
    await direct.close()


async def test_an_error_reply_is_read_whole_and_the_connection_kept(
        client: aioredis.Redis) -> None:
    direct = DirectCommands(client.connection_pool, keep=4)
    key = f"k:{secrets.token_hex(4)}"
    with pytest.raises(ResponseError):
        await direct.run(("SET", key, b"x"), ("INCR", key), ("SET", key, b"y"))
    assert len(direct._idle) == 1  # in step: kept
    assert await direct.run(("GET", key)) == [b"y"]  # the batch ran whole; the reply is GET's
    await direct.close()
    assert direct._idle == []


async def test_at_most_keep_idle_connections(client: aioredis.Redis) -> None:
    direct = DirectCommands(client.connection_pool, keep=2)
    await asyncio.gather(*[direct.run(("BLPOP", f"none:{i}", 0.2)) for i in range(6)])
    assert len(direct._idle) == 2
    await direct.close()


async def test_a_script_redis_forgot_is_loaded_and_sent_again(
        client: aioredis.Redis, redis_store: RedisStore) -> None:
    key = "h" * 64
    await redis_store.create_session(key, b"data", now_ms=1, idle_ms=60_000,
                                     absolute_expiry_ms=3_600_000, sub="alice", idp_sid=None)
    await client.script_flush()  # a restarted or failed-over Redis knows no script
    got = await redis_store.load_session(key, now_ms=2, idle_ms=60_000)
    assert got is not None and got.data == b"data"


@contextlib.asynccontextmanager
async def replicated(timeout: float, wait_timeout_ms: int) -> AsyncIterator[
        tuple[RedisStore, aioredis.Redis, RedisServer]]:
    """A primary and its replica, linked and acknowledging; a store on the primary with
    ``wait_replicas = 1``, a plain client on it, and the replica (to stop)."""
    with RedisServer(extra_args=["--repl-diskless-sync-delay", "0"]) as primary, RedisServer(
            extra_args=["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
        store = RedisStore(create_redis_client(primary.url, timeout=timeout),
                           key_prefix=f"w{secrets.token_hex(2)}:", wait_replicas=1,
                           wait_timeout_ms=wait_timeout_ms)
        probe = create_redis_client(primary.url)
        try:
            for _ in range(100):  # linked, in sync, and acknowledging
                await probe.set("ready", b"1")
                if await probe.execute_command("WAIT", 1, 100) == 1:
                    break
            yield store, probe, replica
        finally:
            await probe.aclose()
            await store.close()


@contextlib.contextmanager
def stopped(replica: RedisServer) -> Iterator[None]:
    assert replica.proc is not None
    os.kill(replica.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(replica.proc.pid, signal.SIGCONT)


async def test_a_write_counts_once_its_replica_acknowledges_it() -> None:
    """``wait_replicas``: WAIT goes on the write's own connection. With the replica stopped,
    nothing acknowledges the new session: refused (no session the browser is told about);
    once it runs again, the same write is acknowledged."""
    async with replicated(2.0, 300) as (store, _probe, replica):
        args = {"now_ms": 1, "idle_ms": 60_000, "absolute_expiry_ms": 3_600_000,
                "sub": "alice", "idp_sid": None}
        await store.create_session("a" * 64, b"one", **args)  # acknowledged
        with stopped(replica), pytest.raises(StoreUnavailable):
            await store.create_session("b" * 64, b"two", **args)
        await store.create_session("c" * 64, b"three", **args)


async def test_an_unacknowledged_write_has_landed_and_says_why() -> None:
    """A promoted replica knows no script and has no replica of its own (a Sentinel failover
    with ``wait_replicas``). The script is loaded and run first, WAIT only after it: the
    rotated tokens are in the record, though the write is refused as not replicated. And
    WAIT's reply is read whole though it takes longer than the socket's timeout."""
    async with replicated(0.5, 800) as (store, probe, replica):
        key = "d" * 64
        await store.create_session(key, b"one", now_ms=1, idle_ms=60_000,
                                   absolute_expiry_ms=3_600_000, sub="alice", idp_sid=None)
        await probe.script_flush()
        with stopped(replica), pytest.raises(StoreUnavailable) as refused:
            await store.replace_session(key, b"two", expected_generation=1, now_ms=2,
                                        idle_ms=60_000)
        assert "WAIT: 0 of 1" in str(refused.value.__cause__)
        got = await store.load_session(key, now_ms=3, idle_ms=60_000)
        assert got is not None and (got.generation, got.data) == (2, b"two")


async def test_on_sentinel_commands_go_to_the_master_sentinel_names() -> None:
    """A Sentinel-managed connection is connected as the pool connects it (to the master the
    sentinels name), never to its default address (localhost:6379, maybe another Redis)."""
    sset = RedisSentinelSet().start()
    client = create_redis_client("redis://127.0.0.1", timeout=2.0, sentinel={
        "master": RedisSentinelSet.MASTER_NAME, "hosts": sset.hosts})
    direct = DirectCommands(client.connection_pool, keep=2)
    key = f"k:{secrets.token_hex(4)}"
    try:
        await direct.run(("SET", key, b"here"))
        master = aioredis.Redis(port=sset.master.port)
        try:
            assert await master.get(key) == b"here"
        finally:
            await master.aclose()
    finally:
        await direct.close()
        await client.aclose()
        sset.close()
