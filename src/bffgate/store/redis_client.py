"""The redis-py asyncio client for the configured topology (standalone, Sentinel, Cluster),
with the pool and retry settings the store relies on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import ConnectionError as RedisConnectionError

T = TypeVar("T")

POOL_HEADROOM = 32  # connections beyond the store's command limit, for lock polling


def create_redis_client(
    url: str, *, sentinel: dict[str, Any] | None = None, cluster: bool = False,
    timeout: float = 2.0, max_connections: int = 256,
) -> Any:
    """Build the redis-py asyncio client for the configured topology.

    redis-py's pools raise "Too many connections" instead of waiting once full; the store
    bounds its concurrent commands below the pool size (``RedisStore(max_concurrency=...)``)
    so that a burst queues for a connection instead of failing with 503s.
    """
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": 15,
        "max_connections": max_connections + POOL_HEADROOM,
    }
    if sentinel:
        hosts = []
        for h in sentinel["hosts"]:
            host, _, port = str(h).rpartition(":")
            hosts.append((host, int(port)))
        parts = urlsplit(url)
        sentinel_kwargs = {k: _plain(v) for k, v in (("password", sentinel.get("password")),
                                                      ("username", sentinel.get("username"))) if v}
        s = Sentinel(  # type: ignore[no-untyped-call]
            hosts, sentinel_kwargs=sentinel_kwargs or None, password=parts.password,
            username=parts.username or None, ssl=parts.scheme == "rediss", **common)
        return s.master_for(str(sentinel["master"]))
    if cluster:
        return RedisCluster.from_url(url, **common)
    return aioredis.from_url(url, **common)


def _plain(value: Any) -> str:
    """Config secrets arrive as ``Secret``; redis-py wants the string."""
    return str(value.get()) if hasattr(value, "get") else str(value)


async def once_more_if_dead(fn: Callable[[], Awaitable[T]]) -> T:
    """``fn()``, sent once more when it meets a dead pooled connection (Redis restarted, a
    proxy dropped it): the pool opens a new one rather than the call failing. Connection
    errors only, never a timeout (a command that timed out may have run). Not for the
    change feed's subscription, which must see its own breaks (store.redis_changes)."""
    try:
        return await fn()
    except RedisConnectionError:
        return await fn()
