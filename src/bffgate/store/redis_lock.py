"""The refresh lease lock on Redis: redis-py's token-checked Lock, its errors kept inside."""

from __future__ import annotations

from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from bffgate.errors import StoreUnavailable
from bffgate.store.redis_client import once_more_if_dead


class RedisLock:
    """redis-py's token-checked Lock, with its errors kept inside the store."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    async def acquire(self, wait_seconds: float) -> bool:
        try:
            return bool(await once_more_if_dead(lambda: self._lock.acquire(
                blocking=True, blocking_timeout=wait_seconds)))
        except RedisError as exc:
            raise StoreUnavailable(reason="redis_error") from exc

    async def extend(self) -> bool:
        try:
            return bool(await once_more_if_dead(self._lock.reacquire))
        except LockError:
            return False
        except RedisError as exc:
            raise StoreUnavailable(reason="redis_error") from exc

    async def release(self) -> None:
        try:
            await self._lock.release()
        except (LockError, RedisError):
            # Not ours any more (lease expired) or Redis is away: the lease TTL frees it.
            return
