"""Open WebSockets by session, and the watcher that closes those whose session has ended.

Each process keeps its own registry. While any socket is open, a watcher asks the store once
a second (one round trip for all of them: ``sessions_exist``) which sessions are gone —
logout, back-channel logout, admin revoke, idle timeout or a failed refresh all delete the
record, on whichever replica — and checks each session's absolute expiry locally. A socket
therefore ends at most ``interval`` + one store round trip after its session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bffgate import logs
from bffgate.clock import Clock
from bffgate.errors import GatewayError

SESSION_ENDED = "session_ended"  # the record is gone (logout, revoke, idle, failed refresh)
SESSION_EXPIRED = "session_expired"  # past its absolute lifetime


class SessionProbe(Protocol):
    async def sessions_exist(self, keys: list[str]) -> list[bool]: ...


@dataclass(eq=False)
class OpenSocket:
    """One open socket: ``end(reason)`` is called once, from the watcher."""

    session_key: str
    absolute_expires_at: float
    end: Callable[[str], None]
    ended: bool = field(default=False)


class SocketRegistry:
    def __init__(self, probe: SessionProbe, clock: Clock, *, interval: float = 1.0) -> None:
        self._probe, self._clock, self.interval = probe, clock, interval
        self._open: set[OpenSocket] = set()
        self._watcher: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._open)

    def add(self, socket: OpenSocket) -> None:
        """Watch ``socket``; the watcher runs while at least one socket is open."""
        self._open.add(socket)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch())

    def remove(self, socket: OpenSocket) -> None:
        self._open.discard(socket)

    async def check_once(self) -> int:
        """End the sockets whose session is gone or expired; how many were ended. A store
        error ends nothing (the next check asks again) and propagates."""
        sockets = [s for s in self._open if not s.ended]
        if not sockets:
            return 0
        now = self._clock.now()
        keys = sorted({s.session_key for s in sockets})
        alive = dict(zip(keys, await self._probe.sessions_exist(keys), strict=True))
        ended = 0
        for s in sockets:
            reason = (SESSION_ENDED if not alive[s.session_key]
                      else SESSION_EXPIRED if now >= s.absolute_expires_at else None)
            if reason is not None:
                s.ended = True
                self._open.discard(s)
                s.end(reason)
                ended += 1
        return ended

    async def _watch(self) -> None:
        while self._open:
            await asyncio.sleep(self.interval)
            try:
                await self.check_once()
            except GatewayError as exc:  # StoreUnavailable: keep the sockets, ask again
                logs.get_logger().warning("websocket.watch_failed", reason=exc.reason)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
