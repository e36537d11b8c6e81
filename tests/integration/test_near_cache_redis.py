"""The session near-cache over a real redis-server: two services on two Redis clients (as two
replicas), each following the store's change channel. A session ended or rotated on one is
seen by the other within the bound (measured, typically a few ms), a hot session costs no
Redis command, and a lost subscription is repaired (the cache is dropped when it is back)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bffgate.clock import SystemClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import LoadedSession, NewTokens, NoSession
from bffgate.session.near_cache import MAX_AGE_SECONDS, NearCache
from bffgate.session.service import SessionService
from bffgate.store.redis import RedisStore, create_redis_client
from support.redis import RedisClusterSet, RedisServer

pytestmark = pytest.mark.integration
KEY = secrets.token_urlsafe(32)


class Replica:
    def __init__(self, redis_server: RedisServer | RedisClusterSet, prefix: str,
                 *, cluster: bool = False) -> None:
        self.store = RedisStore(create_redis_client(redis_server.url, timeout=1.0,
                                                    cluster=cluster), key_prefix=prefix)
        self.sessions = SessionService(self.store, CookieCodec([KEY]), SystemClock(),
                                       idle_timeout=600, absolute_timeout=3600,
                                       refresh_ahead=10, near_cache=NearCache())
        self.follower = asyncio.create_task(self.store.follow_session_changes())

    async def close(self) -> None:
        self.follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.follower
        await self.store.close()


@pytest.fixture
async def replicas(redis_server: RedisServer) -> AsyncIterator[tuple[Replica, Replica]]:
    prefix = f"nc{secrets.token_hex(4)}:"
    a, b = Replica(redis_server, prefix), Replica(redis_server, prefix)
    await _subscribed(redis_server, prefix, 2)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def _subscribed(redis_server: RedisServer, prefix: str, n: int) -> None:
    r = aioredis.from_url(redis_server.url)
    try:
        for _ in range(200):
            counts = dict(await r.pubsub_numsub(f"{prefix}changed"))
            if counts.get(f"{prefix}changed".encode(), 0) >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the replicas never subscribed")
    finally:
        await r.aclose()


async def _subscribed_on_cluster(cluster: RedisClusterSet, prefix: str, n: int) -> None:
    """PUBSUB NUMSUB is per node on a cluster: the subscribers, summed over the nodes."""
    channel = f"{prefix}changed"
    clients = [aioredis.from_url(node.url) for node in cluster.nodes]
    try:
        for _ in range(500):
            total = 0
            for r in clients:
                total += dict(await r.pubsub_numsub(channel)).get(channel.encode(), 0)
            if total >= n:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the replicas never subscribed")
    finally:
        for r in clients:
            await r.aclose()


async def _sees_generation(b: Replica, cookie: str, generation: int,
                           within: float = 0.5) -> LoadedSession:
    """B serves the session at ``generation`` within ``within`` seconds: pub/sub, not the
    1 s age bound, brought the rotation."""
    started = time.monotonic()
    while True:
        seen = await b.sessions.from_cookie(cookie)
        assert isinstance(seen, LoadedSession)
        if seen.generation == generation:
            return seen
        assert time.monotonic() - started < within, "B kept the old token set"
        await asyncio.sleep(0.004)


async def _refused_within(b: Replica, cookie: str, bound: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < bound + 0.5:
        if await b.sessions.from_cookie(cookie) is NoSession.SESSION_UNKNOWN:
            return time.monotonic() - started
        await asyncio.sleep(0.001)
    raise AssertionError(f"still served after {bound + 0.5} s")


async def _login(a: Replica) -> str:
    cookie, _ = await a.sessions.create(NewTokens("at", "rt", None, time.time() + 300),
                                        sub="alice", idp_sid="sid-1", claims={})
    return cookie


async def _commands(redis_server: RedisServer) -> int:
    r = aioredis.from_url(redis_server.url)
    try:
        stats = await r.info("commandstats")
        return sum(int(v["calls"]) for k, v in stats.items()
                   if k not in ("cmdstat_info", "cmdstat_pubsub|numsub"))
    finally:
        await r.aclose()


async def test_a_hot_session_costs_no_redis_command(
        replicas: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    a, b = replicas
    cookie = await _login(a)
    assert isinstance(await b.sessions.from_cookie(cookie), LoadedSession)  # one read
    before = await _commands(redis_server)
    for _ in range(200):
        assert isinstance(await b.sessions.from_cookie(cookie), LoadedSession)
    assert await _commands(redis_server) - before <= 1  # the INFO itself at most


@pytest.mark.parametrize("how", ["destroy", "revoke_by_sub"])
async def test_ended_on_a_is_refused_on_b_within_the_bound(
        replicas: tuple[Replica, Replica], how: str) -> None:
    a, b = replicas
    cookie = await _login(a)
    assert isinstance(await b.sessions.from_cookie(cookie), LoadedSession)  # cached on B
    if how == "destroy":
        on_a = await a.sessions.from_cookie(cookie)
        assert isinstance(on_a, LoadedSession)
        await a.sessions.destroy(on_a)
    else:
        from bffgate.session.ending import BySub, end_sessions
        assert await end_sessions(a.store, BySub("alice"), reason="admin") == 1
    took = await _refused_within(b, cookie, MAX_AGE_SECONDS)
    assert took < 0.25, f"pub/sub invalidation took {took:.3f} s"


async def test_rotated_on_a_is_read_fresh_on_b(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    cookie = await _login(a)
    on_b = await b.sessions.from_cookie(cookie)
    assert isinstance(on_b, LoadedSession)
    current = await a.sessions.load(on_b.handle)
    assert current is not None
    saved = await a.sessions.replace_tokens(current, NewTokens("at-2", "rt-2", None,
                                                               time.time() + 300))
    assert saved is not None
    seen = await _sees_generation(b, cookie, saved.generation)
    assert seen.data.tokens.access_token == "at-2"


async def test_a_killed_subscription_is_restored_and_drops_the_cache(
        replicas: tuple[Replica, Replica], redis_server: RedisServer) -> None:
    a, b = replicas
    cookie = await _login(a)
    assert isinstance(await b.sessions.from_cookie(cookie), LoadedSession)
    r = aioredis.from_url(redis_server.url)
    try:
        await r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await r.aclose()
    await _subscribed(redis_server, a.store._channel.removesuffix("changed"), 2)
    await asyncio.sleep(0.05)
    assert len(b.sessions.near_cache) == 0  # resubscribed: what was missed is dropped
    on_a = await a.sessions.from_cookie(cookie)
    assert isinstance(on_a, LoadedSession)
    await a.sessions.destroy(on_a)
    assert await _refused_within(b, cookie, MAX_AGE_SECONDS) < 0.25


async def test_on_redis_cluster_an_ended_session_is_refused_on_b_within_the_bound() -> None:
    """Cluster: the rotation's PUBLISH runs inside the Lua script on the record's node,
    the delete's on any node; Redis Cluster forwards both to subscribers on every node."""
    cluster = RedisClusterSet().start()
    prefix = f"ncc{secrets.token_hex(4)}:"
    a = Replica(cluster, prefix, cluster=True)
    b = Replica(cluster, prefix, cluster=True)
    try:
        await _subscribed_on_cluster(cluster, prefix, 2)
        cookie = await _login(a)
        on_b = await b.sessions.from_cookie(cookie)
        assert isinstance(on_b, LoadedSession)
        current = await a.sessions.load(on_b.handle)
        assert current is not None
        saved = await a.sessions.replace_tokens(current, NewTokens("at-2", "rt-2", None,
                                                                   time.time() + 300))
        assert saved is not None
        await _sees_generation(b, cookie, saved.generation)
        await a.sessions.destroy(saved)
        assert await _refused_within(b, cookie, MAX_AGE_SECONDS) < 0.5
    finally:
        await a.close()
        await b.close()
        cluster.close()
