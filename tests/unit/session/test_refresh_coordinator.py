"""Unit tests for the refresh coordinator on the in-memory store (no redis-server): the edge
cases of single-flight refresh, each outcome and what the observer is told."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import pytest

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import LoadedSession, NewTokens
from bffgate.session.outcomes import (
    Ended,
    Fresh,
    Refreshed,
    RefreshRejectedError,
    RefreshUnavailableError,
    Unavailable,
)
from bffgate.session.refresh import RefreshCoordinator
from bffgate.session.service import SessionService
from bffgate.store.memory import MemoryStore

Refresher = Callable[[str, str], Awaitable[NewTokens]]


class World:
    """One store, one service and one coordinator on a frozen clock; records grants and
    what the coordinator reported."""

    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.store = MemoryStore(self.clock)
        self.svc = SessionService(self.store, CookieCodec([secrets.token_urlsafe(32)]),
                                  self.clock, idle_timeout=3600, absolute_timeout=7200,
                                  refresh_ahead=10, jitter=lambda _bound: 0.0)
        self.grants: list[tuple[str, str]] = []
        self.told: list[object] = []
        self.grant: Refresher = self._rotate

    def coordinator(self, *, wait: float = 1.0) -> RefreshCoordinator:
        return RefreshCoordinator(self.svc, self.store, self.clock, self._refresher,
                                  observer=self.told.append, lease_seconds=5,
                                  wait_seconds=wait)

    async def _refresher(self, refresh_token: str, sub: str) -> NewTokens:
        self.grants.append((refresh_token, sub))
        return await self.grant(refresh_token, sub)

    async def _rotate(self, refresh_token: str, sub: str) -> NewTokens:
        n = len(self.grants)
        return NewTokens(f"at-{n}", f"rt-{n}", None, self.clock.now() + 60)

    async def session(self, refresh_token: str | None = "rt-0") -> LoadedSession:
        _, s = await self.svc.create(NewTokens("at-0", refresh_token, None,
                                               self.clock.now() + 60),
                                     sub="alice", idp_sid="sid-1", claims={})
        return s


@pytest.fixture
def world() -> World:
    return World()


async def test_a_valid_token_not_yet_due_is_fresh(world: World) -> None:
    s = await world.session()
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Fresh) and out.session is s
    assert world.grants == [] and world.told == []


async def test_no_refresh_token_keeps_the_session_while_its_token_is_valid(world: World) -> None:
    s = await world.session(refresh_token=None)
    world.clock.advance(55)  # past the refresh point: nothing to refresh with
    assert isinstance(await world.coordinator().ensure_fresh(s), Fresh)
    assert world.grants == []


async def test_no_refresh_token_and_an_expired_token_ends_the_session(world: World) -> None:
    """Decided by the coordinator: the session is deleted and the end reported (before, a
    Fresh outcome carried the expired token and the edge had to notice)."""
    s = await world.session(refresh_token=None)
    world.clock.advance(60)
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "access_token_expired"
    assert out.refresh_error is None
    assert world.told == [out]
    assert await world.svc.load(s.handle) is None
    assert world.grants == []


async def test_a_due_token_is_refreshed_once_for_concurrent_requests(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)
    gate = asyncio.Event()
    rotate = world.grant

    async def slow(rt: str, sub: str) -> NewTokens:
        await gate.wait()
        return await rotate(rt, sub)

    world.grant = slow
    coord = world.coordinator()
    pending = [asyncio.create_task(coord.ensure_fresh(s)) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    outcomes = await asyncio.gather(*pending)
    assert world.grants == [("rt-0", "alice")]
    assert {o.session.data.tokens.access_token for o in outcomes} == {"at-1"}  # type: ignore[union-attr]
    assert all(isinstance(o, Refreshed) for o in outcomes)
    assert len(world.told) == 1 and isinstance(world.told[0], Refreshed)
    stored = await world.svc.load(s.handle)
    assert stored is not None and stored.data.tokens.refresh_token == "rt-1"


async def test_a_refresh_by_another_replica_is_reused_without_a_grant(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)
    assert isinstance(await world.coordinator().ensure_fresh(s), Refreshed)  # "replica A"
    world.told.clear()
    out = await world.coordinator().ensure_fresh(s)  # "replica B", with the stale copy
    assert isinstance(out, Refreshed) and out.session.data.tokens.access_token == "at-1"
    assert len(world.grants) == 1 and world.told == []


async def test_a_refused_grant_ends_the_session(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)

    async def refuse(rt: str, sub: str) -> NewTokens:
        raise RefreshRejectedError("invalid_grant")

    world.grant = refuse
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:invalid_grant"
    assert out.refresh_error == "invalid_grant" and world.told == [out]
    assert await world.svc.load(s.handle) is None


async def test_a_grant_for_another_subject_ends_the_session(world: World) -> None:
    """Sub mismatch: the refresher is told whose session it refreshes; when the refreshed ID
    token names someone else it refuses the grant, and the session ends with that check."""
    s = await world.session()
    world.clock.advance(55)

    async def other_sub(rt: str, sub: str) -> NewTokens:
        raise RefreshRejectedError("id_token_invalid:sub" if sub == "alice" else "?")

    world.grant = other_sub
    out = await world.coordinator().ensure_fresh(s)
    assert world.grants == [("rt-0", "alice")]
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:id_token_invalid:sub"
    assert await world.svc.load(s.handle) is None


async def test_an_idp_outage_keeps_the_session_and_says_if_it_is_usable(world: World) -> None:
    s = await world.session()

    async def down(rt: str, sub: str) -> NewTokens:
        raise RefreshUnavailableError("down")

    world.grant = down
    world.clock.advance(55)
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Unavailable) and out.usable
    world.clock.advance(10)  # the access token has expired meanwhile
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Unavailable) and not out.usable
    assert [type(o) for o in world.told] == [Unavailable, Unavailable]
    assert await world.svc.load(s.handle) is not None


async def test_a_lost_compare_and_set_keeps_the_other_writers_tokens(world: World) -> None:
    """Our lease lapsed and another writer saved first: its tokens stand, ours are dropped,
    and no refresh is reported for a grant that was not saved."""
    s = await world.session()
    world.clock.advance(55)
    rotate = world.grant

    async def overtaken(rt: str, sub: str) -> NewTokens:
        other = await world.svc.load(s.handle)
        assert other is not None
        await world.svc.replace_tokens(other, NewTokens("at-other", "rt-other", None,
                                                        world.clock.now() + 60))
        return await rotate(rt, sub)

    world.grant = overtaken
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Refreshed) and out.session.data.tokens.access_token == "at-other"
    assert world.told == []
    stored = await world.svc.load(s.handle)
    assert stored is not None and stored.data.tokens.refresh_token == "rt-other"


async def test_a_lost_compare_and_set_on_a_deleted_session_ends_it(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)
    rotate = world.grant

    async def logged_out_meanwhile(rt: str, sub: str) -> NewTokens:
        await world.svc.destroy(s)
        return await rotate(rt, sub)

    world.grant = logged_out_meanwhile
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:session_gone"


async def test_a_session_gone_before_the_grant_ends_without_one(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)
    await world.svc.destroy(s)
    out = await world.coordinator().ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:session_gone"
    assert world.grants == []


async def test_a_waiter_that_cannot_get_the_lock_rereads_the_session(world: World) -> None:
    s = await world.session()
    world.clock.advance(55)
    held = world.store.refresh_lock(s.key, 5)
    assert await held.acquire(0)  # another replica's grant in flight
    out = await world.coordinator(wait=0.05).ensure_fresh(s)
    assert isinstance(out, Unavailable) and out.usable
    assert world.grants == []
    await held.release()
