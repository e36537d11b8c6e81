"""Redis SessionStore: standalone (redis://, rediss://, unix://), Sentinel or Cluster.

Key scheme (``prefix`` defaults to ``bffgate:``):
- ``{prefix}login:{state}``  login record, TTL = login timeout, taken with GETDEL
- ``{prefix}s:{<h>}``         session record; ``h`` = SHA-256 of the session id
- ``{prefix}lock:{<h>}``      refresh lease lock (same hash tag: same Cluster slot)
- ``{prefix}sub:{sub}`` / ``{prefix}sid:{idp_sid}``  sets of ``h`` for revocation
- ``{prefix}once:{name}``    replay guard (back-channel logout ``jti``), SET NX with a TTL
- ``{prefix}ct:{<k>}``        a sealed client-credentials token, TTL = until it is renewed
  (``k`` = hash of issuer, client and the route's token request; lock ``lock:{ct:<k>}``)
- channel ``{prefix}changed``  ``<h> <generation>`` after a session record is rewritten,
  ``<h> -`` after it is deleted, published in the same round trip as the write; every
  process follows it (``follow_session_changes``) to drop its near-cached copy

A session value is ``<absolute_expiry_ms>|<generation>|<payload>``: the header lets one Lua
call read the record AND slide its TTL to min(idle, absolute remaining) on the hot path,
and lets a rotated token set be saved with compare-and-set on the generation. Generation 0
is a record still being created (Cluster only, see ``create_session``): it never loads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio.cluster import RedisCluster
from redis.asyncio.lock import Lock
from redis.exceptions import RedisError

from bffgate.errors import StoreUnavailable
from bffgate.store.base import SessionChanges, StoredSession
from bffgate.store.redis_changes import follow_changes
from bffgate.store.redis_client import POOL_HEADROOM as POOL_HEADROOM
from bffgate.store.redis_client import create_redis_client as create_redis_client
from bffgate.store.redis_client import once_more_if_dead
from bffgate.store.redis_direct import DIRECT_IDLE, DirectCommands
from bffgate.store.redis_lock import RedisLock
from bffgate.store.redis_peek import RedisPeek
from bffgate.store.redis_scripts import CREATE, LOAD, REPLACE

T = TypeVar("T")

class RedisStore(RedisPeek):
    """SessionStore on Redis; every RedisError becomes StoreUnavailable."""

    def __init__(self, client: Any, key_prefix: str = "bffgate:",
                 on_error: Callable[[], None] | None = None, *, wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000, max_concurrency: int = 256,
                 cluster: bool | None = None) -> None:
        self._r = client
        self._cluster = isinstance(client, RedisCluster) if cluster is None else cluster
        if self._cluster and wait_replicas > 0:  # as the config refuses it: WAIT is per node
            raise ValueError("wait_replicas needs a standalone or Sentinel Redis")
        self._slots = asyncio.Semaphore(max_concurrency)
        self._wait_replicas, self._wait_timeout_ms = wait_replicas, wait_timeout_ms
        self._p = key_prefix
        self._load = client.register_script(LOAD)
        self._replace = client.register_script(REPLACE)
        self._create = client.register_script(CREATE)
        # The login path's commands past redis-py's per-command machinery (redis_direct);
        # at most DIRECT_IDLE of its connections stay open between commands.
        self._direct = None if self._cluster else DirectCommands(
            client.connection_pool, keep=min(DIRECT_IDLE, max_concurrency))
        self._on_error = on_error
        self.changes = SessionChanges()
        self._channel = f"{key_prefix}changed"

    def _s(self, key: str) -> str:
        return f"{self._p}s:{{{key}}}"

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            async with self._slots:
                return await once_more_if_dead(fn)
        except (TimeoutError, RedisError, OSError) as exc:
            if self._on_error:
                self._on_error()
            raise StoreUnavailable(reason="redis_error") from exc

    async def _command(self, *command: Any) -> Any:
        if self._direct is None:
            return await self._r.execute_command(*command)
        return (await self._direct.run(command))[0]

    async def _script(self, script: Any, keys: list[Any], args: list[Any], *,
                      write: bool = False) -> tuple[Any, Callable[[], None]]:
        """The script's reply, and for a ``write`` the check that makes it count only once
        ``wait_replicas`` replicas have it (Redis WAIT, sent right after it on the same
        connection: WAIT counts its own connection's writes), so a failover never loses a
        session the browser was told about. The caller runs the check if it wrote."""
        if self._direct is None:  # a Cluster, which has no wait_replicas (refused above)
            return await script(keys=keys, args=args), lambda: None
        wait = ("WAIT", self._wait_replicas, self._wait_timeout_ms) \
            if write and self._wait_replicas > 0 else None
        # WAIT's reply may take its whole timeout: the socket's must not cut it first.
        replies = await self._direct.script(script, keys, args, then=wait,
                                            then_timeout=self._wait_timeout_ms / 1000 + 1.0)
        acked = int(replies[1]) if wait else None
        return replies[0], lambda: self._check_acked(acked)

    def _check_acked(self, acked: int | None) -> None:
        if acked is not None and acked < self._wait_replicas:
            raise RedisError(f"WAIT: {acked} of {self._wait_replicas} replicas acknowledged")

    async def put_login(self, state: str, data: bytes, ttl_seconds: int) -> None:
        await self._call(lambda: self._command("SET", f"{self._p}login:{state}", data,
                                               "EX", ttl_seconds))

    async def take_login(self, state: str) -> bytes | None:
        value = await self._call(lambda: self._command("GETDEL", f"{self._p}login:{state}"))
        return bytes(value) if value is not None else None

    async def create_session(
        self, key: str, data: bytes, *, now_ms: int, idle_ms: int, absolute_expiry_ms: int,
        sub: str, idp_sid: str | None,
    ) -> None:
        """Record and indexes together. Standalone and Sentinel: one script (``CREATE``), the
        record last. Cluster: the indexes live in other slots than the record, so no transaction
        spans them; the record is written first as pending (generation 0: it never loads),
        then the indexes, then it is made live. A failure part-way leaves at worst a pending
        record nobody holds a cookie for (it expires with its idle TTL), never a live session
        that revocation by sub or IdP sid would miss; and an index entry is never written
        before its record, so the readers' pruning of dead entries can't race a login."""
        ttl = min(idle_ms, absolute_expiry_ms - now_ms)
        index_ttl = max(1, (absolute_expiry_ms - now_ms) // 1000 + 60)

        def record(generation: int) -> bytes:
            return f"{absolute_expiry_ms}|{generation}|".encode() + data

        def index(pipe: Any) -> None:
            pipe.sadd(f"{self._p}sub:{sub}", key)
            pipe.expire(f"{self._p}sub:{sub}", index_ttl, gt=True)
            pipe.expire(f"{self._p}sub:{sub}", index_ttl, nx=True)
            if idp_sid:
                pipe.sadd(f"{self._p}sid:{idp_sid}", key)
                pipe.expire(f"{self._p}sid:{idp_sid}", index_ttl)

        async def run() -> None:
            if self._cluster:  # a cluster pipeline runs per node, in no set order
                await self._r.set(self._s(key), record(0), px=ttl)
                pipe = self._r.pipeline(transaction=False)
                index(pipe)
                await pipe.execute()
                if not await self._r.set(self._s(key), record(1), px=ttl, xx=True):
                    raise RedisError("session record gone while it was being created")
            else:  # one script: a third of the client's CPU of a MULTI of six commands
                indexes = [f"{self._p}sub:{sub}"] + ([f"{self._p}sid:{idp_sid}"] if idp_sid else [])
                _, replicated = await self._script(self._create, [self._s(key), *indexes],
                                                   [record(1), ttl, key, index_ttl], write=True)
                replicated()

        await self._call(run)

    async def load_session(self, key: str, *, now_ms: int, idle_ms: int) -> StoredSession | None:
        raw, _ = await self._call(lambda: self._script(self._load, [self._s(key)],
                                                       [now_ms, idle_ms]))
        if not raw:
            return None
        raw = bytes(raw)
        abs_part, _, rest = raw.partition(b"|")
        gen_part, _, data = rest.partition(b"|")
        return StoredSession(data, int(abs_part), int(gen_part))

    async def replace_session(
        self, key: str, data: bytes, *, expected_generation: int, now_ms: int, idle_ms: int
    ) -> bool:
        async def run() -> bool:
            result, replicated = await self._script(
                self._replace, [self._s(key)],
                [expected_generation, data, now_ms, idle_ms, self._channel, key], write=True)
            if int(result) == 1:
                self.changes.tell(key, expected_generation + 1)
                replicated()
                return True
            return False

        return await self._call(run)

    async def sessions_exist(self, keys: list[str]) -> list[bool]:
        async def run() -> list[bool]:
            # A non-transactional pipeline of EXISTS: one round trip, and Cluster-safe (the
            # keys live in different slots).
            pipe = self._r.pipeline(transaction=False)
            for key in keys:
                pipe.exists(self._s(key))
            return [bool(n) for n in await pipe.execute()]

        return await self._call(run) if keys else []

    async def delete_session(self, key: str, *, sub: str | None = None,
                             idp_sid: str | None = None) -> bool:
        async def run() -> int:
            deleted = int(await self._r.delete(self._s(key)))
            self.changes.tell(key, None)
            # Not in the pipeline: a Cluster pipeline can't route a keyless PUBLISH.
            await self._r.publish(self._channel, f"{key} -")
            if sub or idp_sid:
                pipe = self._r.pipeline(transaction=False)
                if sub:
                    pipe.srem(f"{self._p}sub:{sub}", key)
                if idp_sid:
                    pipe.srem(f"{self._p}sid:{idp_sid}", key)
                await pipe.execute()
            return deleted

        return await self._call(run) > 0

    async def _members(self, index: str) -> list[str]:
        """The index's members whose record still exists; the others are pruned."""
        async def run() -> list[str]:
            members = sorted(m.decode() if isinstance(m, bytes) else str(m)
                             for m in await self._r.smembers(index))
            live = []
            for m in members:
                if await self._r.exists(self._s(m)):
                    live.append(m)
                else:
                    await self._r.srem(index, m)
            return live

        return await self._call(run)

    async def keys_for_sub(self, sub: str) -> list[str]:
        return await self._members(f"{self._p}sub:{sub}")

    async def keys_for_idp_sid(self, idp_sid: str) -> list[str]:
        return await self._members(f"{self._p}sid:{idp_sid}")

    async def follow_session_changes(self) -> None:
        await follow_changes(self._r, self._channel, self.changes, self._on_error)

    async def claim_once(self, name: str, ttl_seconds: int) -> bool:
        result = await self._call(lambda: self._r.set(f"{self._p}once:{name}", b"1",
                                                       nx=True, ex=ttl_seconds))
        return bool(result)

    async def get_cached_token(self, key: str) -> bytes | None:
        value = await self._call(lambda: self._r.get(f"{self._p}ct:{{{key}}}"))
        return bytes(value) if value is not None else None

    async def put_cached_token(self, key: str, blob: bytes, ttl_ms: int) -> None:
        await self._call(lambda: self._r.set(f"{self._p}ct:{{{key}}}", blob, px=ttl_ms))

    def refresh_lock(self, key: str, lease_seconds: float) -> RedisLock:
        name = f"{self._p}lock:{{{key}}}"
        return RedisLock(Lock(self._r, name, timeout=lease_seconds, sleep=0.02,
                              thread_local=False))

    async def ping(self) -> None:
        await self._call(lambda: self._r.ping())

    async def close(self) -> None:
        try:
            if self._direct is not None:
                await self._direct.close()
            await self._r.aclose()
        except (RedisError, OSError):
            return
