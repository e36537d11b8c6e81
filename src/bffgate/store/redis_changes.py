"""Following the session writes of every process through Redis pub/sub.

The Redis store publishes ``<key> <generation>`` on ``{prefix}changed`` after it rewrites a
session record, ``<key> -`` after it deletes one, in the same round trip as the write
(store/redis.py). Each process follows the channel and tells its listeners (the session
near-cache, session/near_cache.py). Pub/sub is at-most-once: whenever the subscription
(re)starts, changes may have been missed, so the listeners then hear key None ("anything
may have changed"); the near-cache's own age bound covers the gap in between.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bffgate.store.base import SessionChanges

_BACKOFF = (0.1, 2.0)  # first and longest wait before subscribing again
_POLL_SECONDS = 1.0  # longest single wait for a message


async def follow_changes(client: Any, channel: str, changes: SessionChanges,
                         on_error: Callable[[], None] | None) -> None:
    """Until cancelled: deliver every message of ``channel`` to ``changes``."""
    backoff = _BACKOFF[0]
    while True:
        pubsub = None
        try:
            if hasattr(client, "initialize"):  # Cluster: the slot map first (pubsub needs it)
                await client.initialize()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(channel)
            changes.tell(None, None)  # subscribed: what happened before may have been missed
            backoff = _BACKOFF[0]
            while True:
                # a bounded wait, not listen()'s unbounded read: a read redis-py blocks
                # in for ever may not come back when the task is cancelled at shutdown
                message = await pubsub.get_message(timeout=_POLL_SECONDS)
                if message is not None and message.get("type") == "message":
                    _deliver(changes, message.get("data"))
        except asyncio.CancelledError:
            raise
        except Exception:  # whatever fails, the follower must live on
            # Redis down, a failover, a Cluster slot map not known yet (redis-py raises
            # KeyError there): missed changes are possible, so the listeners drop all.
            changes.tell(None, None)
            if on_error:
                on_error()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF[1])
        finally:
            if pubsub is not None:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def _deliver(changes: SessionChanges, data: Any) -> None:
    text = data.decode("ascii", "replace") if isinstance(data, bytes) else str(data)
    key, _, generation = text.partition(" ")
    # ASCII digits of a 64-bit count only: str.isdigit() admits '²', int() refuses 4,301 digits
    number = generation.isascii() and generation.isdigit() and len(generation) <= 19
    changes.tell(key, int(generation) if number else None)
