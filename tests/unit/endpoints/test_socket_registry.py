"""The WebSocket watcher: a socket whose session is gone or past its absolute lifetime is
ended once, in one store round trip for all open sockets; a store error ends nothing."""

from __future__ import annotations

import asyncio

import pytest

from bffgate.clock import FrozenClock
from bffgate.endpoints.socket_registry import (
    SESSION_ENDED,
    SESSION_EXPIRED,
    OpenSocket,
    SocketRegistry,
)
from bffgate.errors import StoreUnavailable


class Probe:
    def __init__(self) -> None:
        self.live: set[str] = set()
        self.calls: list[list[str]] = []
        self.fail = False

    async def sessions_exist(self, keys: list[str]) -> list[bool]:
        self.calls.append(keys)
        if self.fail:
            raise StoreUnavailable(reason="redis_error")
        return [k in self.live for k in keys]


def _socket(key: str, ends: list[tuple[str, str]], absolute: float = 1e12) -> OpenSocket:
    return OpenSocket(key, absolute, lambda why: ends.append((key, why)))


async def test_only_the_sockets_of_ended_sessions_are_ended_once() -> None:
    probe, ends = Probe(), []
    probe.live = {"a"}
    reg = SocketRegistry(probe, FrozenClock(1000.0), interval=3600)
    for key in ("a", "b", "b"):
        reg.add(_socket(key, ends))
    assert await reg.check_once() == 2
    assert ends == [("b", SESSION_ENDED), ("b", SESSION_ENDED)]
    assert probe.calls == [["a", "b"]]  # one round trip, each session asked once
    assert await reg.check_once() == 0 and len(reg) == 1
    await reg.stop()


async def test_absolute_expiry_is_checked_locally() -> None:
    probe, ends = Probe(), []
    probe.live = {"a"}
    clock = FrozenClock(1000.0)
    reg = SocketRegistry(probe, clock, interval=3600)
    reg.add(_socket("a", ends, absolute=1010.0))
    assert await reg.check_once() == 0
    clock.advance(10)
    assert await reg.check_once() == 1
    assert ends == [("a", SESSION_EXPIRED)]
    await reg.stop()


async def test_a_store_error_ends_nothing() -> None:
    probe, ends = Probe(), []
    probe.fail = True
    reg = SocketRegistry(probe, FrozenClock(1000.0), interval=3600)
    reg.add(_socket("a", ends))
    with pytest.raises(StoreUnavailable):
        await reg.check_once()
    assert ends == [] and len(reg) == 1
    await reg.stop()


async def test_the_watcher_ends_a_socket_within_one_interval_and_then_stops() -> None:
    probe, ends = Probe(), []
    reg = SocketRegistry(probe, FrozenClock(1000.0), interval=0.05)
    sock = _socket("gone", ends)
    reg.add(sock)
    for _ in range(40):
        if ends:
            break
        await asyncio.sleep(0.01)
    assert ends == [("gone", SESSION_ENDED)]
    await asyncio.sleep(0.1)
    assert reg._watcher is not None and reg._watcher.done()  # nothing left to watch
    reg.remove(sock)
    await reg.stop()
