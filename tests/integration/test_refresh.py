"""Integration tests: single-flight refresh over a real redis-server, with an injected
token refresher (the IdP side is covered by tests/e2e/test_refresh_replicas.py)."""

from __future__ import annotations

import asyncio
import secrets

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
from bffgate.store.redis import RedisStore, create_redis_client
from support.redis import RedisServer

pytestmark = pytest.mark.integration
KEY = secrets.token_urlsafe(32)


class FakeIdP:
    """Rotating refresh tokens, each usable once; counts grants; can be slow or fail."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.valid = {"rt-0"}
        self.grants = 0
        self.delay = 0.0
        self.fail: Exception | None = None
        self.n = 0
        self.subs: list[str] = []
        self.told: list[object] = []  # what the coordinators reported (their observer)

    async def refresh(self, rt: str, sub: str) -> NewTokens:
        self.grants += 1
        self.subs.append(sub)
        await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        if rt not in self.valid:
            raise RefreshRejectedError("invalid_grant")
        self.valid.discard(rt)
        self.n += 1
        new_rt = f"rt-{self.n}"
        self.valid.add(new_rt)
        return NewTokens(f"at-{self.n}", new_rt, None, self.clock.now() + 60)


def make(redis_server: RedisServer, clock: FrozenClock, prefix: str,
         idp: FakeIdP, lease: float = 2.0) -> tuple[SessionService, RefreshCoordinator]:
    store = RedisStore(create_redis_client(redis_server.url, timeout=1.0), key_prefix=prefix)
    svc = SessionService(store, CookieCodec([KEY]), clock, idle_timeout=600,
                         absolute_timeout=3600, refresh_ahead=10)
    return svc, RefreshCoordinator(svc, store, clock, idp.refresh, lease_seconds=lease,
                                   wait_seconds=5, observer=idp.told.append)


@pytest.fixture
def clock() -> FrozenClock:
    import time

    return FrozenClock(time.time())


@pytest.fixture
def prefix() -> str:
    return f"r{secrets.token_hex(4)}:"


async def _new_session(svc: SessionService, clock: FrozenClock) -> LoadedSession:
    _, s = await svc.create(NewTokens("at-0", "rt-0", None, clock.now() + 60), sub="alice",
                            idp_sid=None, claims={})
    return s


async def test_fresh_token_needs_no_grant(redis_server, clock, prefix) -> None:
    idp = FakeIdP(clock)
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    assert isinstance(await coord.ensure_fresh(s), Fresh)
    assert idp.grants == 0


async def test_many_concurrent_requests_one_grant_per_process(redis_server, clock, prefix) -> None:
    idp = FakeIdP(clock)
    idp.delay = 0.2
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    clock.advance(55)  # inside refresh_ahead
    outcomes = await asyncio.gather(*[coord.ensure_fresh(s) for _ in range(100)])
    assert idp.grants == 1
    assert all(isinstance(o, Refreshed) for o in outcomes)
    assert {o.session.data.tokens.access_token for o in outcomes} == {"at-1"}  # type: ignore[union-attr]


async def test_replicas_share_one_grant(redis_server, clock, prefix) -> None:
    """Three coordinators with their own Redis clients (as three replicas would have)."""
    idp = FakeIdP(clock)
    idp.delay = 0.3
    replicas = [make(redis_server, clock, prefix, idp) for _ in range(3)]
    s = await _new_session(replicas[0][0], clock)
    clock.advance(55)
    loaded = [await svc.load(s.handle) for svc, _ in replicas]
    outcomes = await asyncio.gather(*[
        coord.ensure_fresh(loaded[i % 3]) for i in range(90) for _, coord in [replicas[i % 3]]])
    assert idp.grants == 1
    assert {o.session.data.tokens.access_token for o in outcomes} == {"at-1"}  # type: ignore[union-attr]
    assert all(isinstance(o, Refreshed) for o in outcomes)
    # one grant, reported once (by the replica that made it); the others reused its result
    assert [type(o) for o in idp.told] == [Refreshed]


async def test_lease_is_renewed_while_the_grant_is_slow(redis_server, clock, prefix) -> None:
    """A grant slower than the lease must not let a second replica in (lease renewal)."""
    idp = FakeIdP(clock)
    idp.delay = 2.5
    a = make(redis_server, clock, prefix, idp, lease=1.2)
    b = make(redis_server, clock, prefix, idp, lease=1.2)
    s = await _new_session(a[0], clock)
    clock.advance(55)
    first = asyncio.create_task(a[1].ensure_fresh(s))
    await asyncio.sleep(1.6)  # past a's original lease
    second = await b[1].ensure_fresh(await b[0].load(s.handle))  # type: ignore[arg-type]
    await first
    assert idp.grants == 1
    assert isinstance(second, Refreshed)
    assert [type(o) for o in idp.told] == [Refreshed]  # the reuse is no news


async def test_invalid_grant_ends_the_session(redis_server, clock, prefix) -> None:
    idp = FakeIdP(clock)
    idp.valid.clear()
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    clock.advance(55)
    out = await coord.ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:invalid_grant"
    assert await svc.load(s.handle) is None


async def test_idp_down_keeps_session_and_reports_usability(redis_server, clock, prefix) -> None:
    idp = FakeIdP(clock)
    idp.fail = RefreshUnavailableError("down")
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    clock.advance(55)
    out = await coord.ensure_fresh(s)
    assert isinstance(out, Unavailable) and out.usable
    clock.advance(10)  # token now expired
    out = await coord.ensure_fresh(await svc.load(s.handle))  # type: ignore[arg-type]
    assert isinstance(out, Unavailable) and not out.usable
    assert await svc.load(s.handle) is not None  # nothing lost
    idp.fail = None
    out = await coord.ensure_fresh(await svc.load(s.handle))  # type: ignore[arg-type]
    assert isinstance(out, Refreshed) and out.session.data.tokens.access_token == "at-1"


async def test_refresh_keeps_absolute_expiry(redis_server, clock, prefix) -> None:
    idp = FakeIdP(clock)
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    clock.advance(55)
    out = await coord.ensure_fresh(s)
    assert isinstance(out, Refreshed)
    assert out.session.data.absolute_expires_at == s.data.absolute_expires_at
    assert out.session.generation == s.generation + 1


async def test_refreshed_id_token_that_fails_a_check_ends_the_session(redis_server, clock,
                                                                       prefix) -> None:
    """OIDC Core 12.2: the refresher is told whose session it refreshes, and a grant whose ID
    token fails a check (here: it names someone else) ends the session with that check."""
    idp = FakeIdP(clock)
    svc, coord = make(redis_server, clock, prefix, idp)
    s = await _new_session(svc, clock)
    clock.advance(55)
    idp.fail = RefreshRejectedError("id_token_invalid:sub")
    out = await coord.ensure_fresh(s)
    assert isinstance(out, Ended) and out.reason == "refresh_rejected:id_token_invalid:sub"
    assert idp.subs == ["alice"]
    assert await svc.load(s.handle) is None
