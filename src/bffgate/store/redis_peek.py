"""Reading session records for the admin API without touching them: one non-transactional
pipeline of GET + PTTL per key (one round trip, Cluster-safe: the keys live in different
slots). No write, so no idle TTL slides and nothing is published. ``RedisPeek`` gives
RedisStore its ``peek_sessions`` (a mixin: redis.py stays under the size limit)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from bffgate.store.base import PeekedSession

T = TypeVar("T")


class _Store(Protocol):
    _r: Any

    def _s(self, key: str) -> str: ...

    async def _call(self, fn: Callable[[], Awaitable[T]]) -> T: ...


class RedisPeek:
    async def peek_sessions(self: _Store, keys: list[str]) -> list[PeekedSession | None]:
        return await self._call(lambda: peek_records(self._r, [self._s(k) for k in keys]))


async def peek_records(client: Any, names: list[str]) -> list[PeekedSession | None]:
    """``names``: full Redis key names of session records, in order."""
    if not names:
        return []
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
        pipe.pttl(name)
    replies = await pipe.execute()
    return [_parsed(replies[i], replies[i + 1]) for i in range(0, len(replies), 2)]


def _parsed(raw: Any, pttl: Any) -> PeekedSession | None:
    if raw is None or int(pttl) < 0:  # gone (-2), or not a record the store wrote (-1)
        return None
    abs_part, _, rest = bytes(raw).partition(b"|")
    gen_part, _, data = rest.partition(b"|")
    if not abs_part.isdigit() or not gen_part.isdigit() or gen_part == b"0":
        return None  # generation 0: still being created (Cluster), never loads
    return PeekedSession(data, int(abs_part), int(gen_part), int(pttl))
