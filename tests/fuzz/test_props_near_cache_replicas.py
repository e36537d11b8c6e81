"""Stateful property test: two replicas (SessionService, each with its near-cache) over one
store, as two gateway processes share Redis, with what the network does to them: a store
read that is served and answered in separate steps (a change can land in between), session
announcements delivered late, in order, or lost (pub/sub is at most once), rotations and
ends on either replica, time moving on. After every call on either replica:

- a live session is never refused, and its tokens are the ones of the generation it has;
- what a replica serves was the store's copy less than ``max_age`` ago (an ended session is
  refused on every replica within ``max_age``, however many announcements were lost);
- once a replica has heard of a change (its own writes at once), it never serves an older
  copy, nor an ended session: a read racing a change is not cached.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import LoadedSession, NewTokens, NoSession
from bffgate.session.near_cache import NearCache
from bffgate.session.service import SessionService
from bffgate.store.base import StoredSession
from bffgate.store.memory import MemoryStore

pytestmark = pytest.mark.fuzz

MAX_AGE = 1.0
KEY = secrets.token_urlsafe(32)
R = st.integers(0, 1)  # which replica
S = st.integers(0, 1)  # which session


class SteppedStore(MemoryStore):
    """A memory store whose reads, when ``stepped``, wait for the test twice: before the
    read (the request is on the wire) and after it (the reply is on the wire)."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(clock)
        self.stepped = False
        self.gates: deque[tuple[asyncio.Event, asyncio.Event]] = deque()

    async def load_session(self, key: str, *, now_ms: int, idle_ms: int
                           ) -> StoredSession | None:
        if not self.stepped:
            return await super().load_session(key, now_ms=now_ms, idle_ms=idle_ms)
        served, replied = asyncio.Event(), asyncio.Event()
        self.gates.append((served, replied))
        await served.wait()
        stored = await super().load_session(key, now_ms=now_ms, idle_ms=idle_ms)
        await replied.wait()
        return stored


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = 100.0
        self.clock = FrozenClock()
        self.store = SteppedStore(self.clock)
        self.replicas = [SessionService(
            self.store, CookieCodec([KEY]), self.clock, idle_timeout=3600,
            absolute_timeout=7200, refresh_ahead=60,
            near_cache=NearCache(max_age=MAX_AGE, monotonic=lambda: self.now))
            for _ in range(2)]
        for r in self.replicas:  # announcements go through the test: late, lost or on time
            self.store.changes.remove(r._changed)
        self.store.changes.add(self._announced)
        self.inbox: list[deque[tuple[str, int | None]]] = [deque(), deque()]
        self.writer: int | None = None
        self.pending: list[tuple[asyncio.Task[Any], str, tuple[Any, ...]] | None] = [None, None]
        self.cookies: list[str] = []
        self.keys: list[str] = []
        # per session: generation -> (access token, when it stopped being the store's copy)
        self.versions: list[dict[int, list[Any]]] = []
        self.current: list[int | None] = []  # the store's generation, None once ended
        self.heard: list[dict[str, int | None]] = [{}, {}]  # replica -> key -> newest heard
        for i in range(2):
            cookie, loaded = self.run(self.replicas[0].create(
                NewTokens(f"at-{i}-first", "rt", None, self.clock.now() + 3600),
                sub=f"user-{i}", idp_sid=None, claims={}))
            self.cookies.append(cookie)
            self.keys.append(loaded.key)
            self.versions.append({loaded.generation: [f"at-{i}-first", None]})
            self.current.append(loaded.generation)

    def teardown(self) -> None:
        for p in self.pending:
            if p is not None:
                p[0].cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def settle(self) -> None:
        for _ in range(5):
            self.run(asyncio.sleep(0))

    def _announced(self, key: str | None, generation: int | None) -> None:
        """The store told of a write: the writing replica hears it at once, and both hear
        it again later through their inbox (as pub/sub does; the writer's copy is a no-op)."""
        assert key is not None
        if self.writer is not None:
            self._hear(self.writer, key, generation)
        for box in self.inbox:
            box.append((key, generation))

    def _hear(self, r: int, key: str, generation: int | None) -> None:
        self.replicas[r]._changed(key, generation)
        before = self.heard[r].get(key, -1)
        if generation is None or (before is not None and generation > before):
            self.heard[r][key] = generation

    # -- the rules ------------------------------------------------------------------

    @rule(r=R, s=S)
    def call(self, r: int, s: int) -> None:
        """A request on replica r with session s's cookie (another read may be in flight)."""
        got = self.run(self.replicas[r].from_cookie(self.cookies[s]))
        key, current = self.keys[s], self.current[s]
        if isinstance(got, LoadedSession):
            token, superseded = self.versions[s][got.generation]
            assert got.data.tokens.access_token == token
            # served: the store's copy less than max_age ago
            assert superseded is None or superseded > self.now - MAX_AGE, (got.generation,
                                                                          current)
            heard = self.heard[r].get(key, -1)
            assert heard is not None, "served a session this replica heard had ended"
            assert got.generation >= heard, "served a copy older than a change it heard"
        else:
            assert got is NoSession.SESSION_UNKNOWN
            assert current is None, "a live session was refused"

    @rule(r=R, s=S)
    def start_read(self, r: int, s: int) -> None:
        """Replica r starts a store read of session s (its mark is taken now)."""
        if self.pending[r] is not None:
            return
        svc = self.replicas[r]
        handle = svc.decode_cookie(self.cookies[s])
        assert handle is not None
        self.store.stepped = True
        task = self.loop.create_task(svc.load(handle))
        self.settle()
        self.store.stepped = False
        self.pending[r] = (task, "sent", self.store.gates.pop())

    @precondition(lambda self: any(p is not None and p[1] == "sent" for p in self.pending))
    @rule(r=R)
    def serve_read(self, r: int) -> None:
        p = self.pending[r]
        if p is None or p[1] != "sent":
            return
        p[2][0].set()
        self.settle()
        self.pending[r] = (p[0], "served", p[2])

    @precondition(lambda self: any(p is not None and p[1] == "served" for p in self.pending))
    @rule(r=R)
    def reply_read(self, r: int) -> None:
        p = self.pending[r]
        if p is None or p[1] != "served":
            return
        p[2][1].set()
        self.settle()
        assert p[0].done()
        self.pending[r] = None

    def _fresh(self, r: int, s: int) -> tuple[Any, Any]:
        """Replica r's service and session s as it reads it from the store (a writer always
        starts from the stored record, never from its near-cache)."""
        svc = self.replicas[r]
        handle = svc.decode_cookie(self.cookies[s])
        assert handle is not None
        fresh = self.run(svc.load(handle))
        assert fresh is not None
        return svc, fresh

    @rule(r=R, s=S)
    def rotate(self, r: int, s: int) -> None:
        """Replica r refreshes session s: re-reads it and saves new tokens (compare-and-set)."""
        if self.current[s] is None:
            return
        svc, fresh = self._fresh(r, s)
        token = f"at-{s}-{fresh.generation + 1}"
        self.writer = r
        saved = self.run(svc.replace_tokens(fresh, NewTokens(token, None, None,
                                                              self.clock.now() + 3600)))
        self.writer = None
        assert saved is not None and saved.generation == fresh.generation + 1
        self.versions[s][fresh.generation][1] = self.now
        self.versions[s][saved.generation] = [token, None]
        self.current[s] = saved.generation

    @rule(r=R, s=S)
    def end(self, r: int, s: int) -> None:
        """Replica r ends session s (logout there, or an admin revoke)."""
        if self.current[s] is None:
            return
        svc, fresh = self._fresh(r, s)
        self.writer = r
        assert self.run(svc.destroy(fresh))
        self.writer = None
        self.versions[s][self.current[s]][1] = self.now
        self.current[s] = None

    @rule(r=R, s=S, write=st.sampled_from(["rotate", "end", None]), hear=st.booleans())
    def racing_read(self, r: int, s: int, write: str | None, hear: bool) -> None:
        """The race in one step: replica r's read is served, the other replica writes, r
        hears of it (or not) before the reply arrives; then a request on r."""
        if self.pending[r] is not None:
            return
        self.start_read(r, s)
        self.serve_read(r)
        if write == "rotate":
            self.rotate(1 - r, s)
        elif write == "end":
            self.end(1 - r, s)
        while hear and self.inbox[r]:
            self.deliver(r, lost=False)
        self.reply_read(r)
        self.call(r, s)

    @precondition(lambda self: self.pending == [None, None])
    @rule(r=R, s=S, write=st.sampled_from(["rotate", "end"]),
          dt=st.sampled_from([0.5, 0.999, 1.0, 1.5]))
    def lost_announcement(self, r: int, s: int, write: str, dt: float) -> None:
        """Replica r has the session cached, the other replica writes, r never hears of it:
        r may serve its copy for less than max_age, not after."""
        self.call(r, s)
        (self.rotate if write == "rotate" else self.end)(1 - r, s)
        self.inbox[r].clear()
        self.tick(dt)
        self.call(r, s)

    @precondition(lambda self: any(self.inbox))
    @rule(r=R, lost=st.booleans())
    def deliver(self, r: int, lost: bool) -> None:
        """The oldest announcement for replica r arrives, or is lost."""
        if self.inbox[r]:
            key, generation = self.inbox[r].popleft()
            if not lost:
                self._hear(r, key, generation)

    @precondition(lambda self: self.pending == [None, None])
    @rule(dt=st.sampled_from([0.001, 0.3, 0.5, 0.999, 1.0, 2.0]))
    def tick(self, dt: float) -> None:
        """Time moves on (not while a read is in flight: the bound assumes a quick read)."""
        self.now += dt


Replicas.TestCase.settings = settings(stateful_step_count=20)
test_near_cache_replicas = Replicas.TestCase
