"""In-process single flight: callers asking for one key at the same time share one task.

The first caller starts it, the others await the same task; each waits through
``asyncio.shield``, so one caller going away (a client that disconnects) cancels nobody's
result; the key is free again once the task is done, and its exception is always retrieved
(every waiter may have gone). Used by the token refresh, the near-cache's store reads, the
client-credentials and the token-exchange grants. Across processes and replicas the store's
lease locks do the same job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[T]] = {}

    def running(self, key: K) -> bool:
        """Whether a task for ``key`` is in flight (a caller that then calls ``run``
        joins it)."""
        return key in self._flights

    async def run(self, key: K, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """The result of the task in flight for ``key``, started with ``start()`` if none."""
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(start())
            self._flights[key] = task
            task.add_done_callback(lambda done: self._landed(key, done))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Future[T]) -> None:
        self._flights.pop(key, None)
        if not task.cancelled():
            task.exception()
