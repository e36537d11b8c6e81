"""Stateful property test of the session near-cache (session/near_cache.py): any sequence of
reads (mark, then put with that mark), writes (put without a mark), gets, announced changes
(key, generation | None), drops, clears and time moving on, checked against a model after
every step:

- an entry is never returned at or after ``max_age`` since it was put;
- a change to a newer generation, or a delete (None), always removes the entry; one at the
  cached generation or older keeps it (this process's own write);
- a put whose mark is stale (a change or clear was heard since) is ignored;
- never more than ``size`` entries, the oldest put evicted first; a disabled cache holds none.
"""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.session.model import LoadedSession, SessionData, Tokens
from bffgate.session.near_cache import NearCache

pytestmark = pytest.mark.fuzz

N = 3  # few keys, so that changes and gets meet cached entries often
HANDLES = [SessionHandle(bytes([i]) * 32, bytes([i]) * 32) for i in range(N)]
KEYS = [h.key for h in HANDLES]
DATA = SessionData("alice", None, {}, 0.0, 1e12, "logout-id", Tokens("at", "rt", None, None))


def _session(i: int, generation: int) -> LoadedSession:
    return LoadedSession(HANDLES[i], DATA, generation, 1e12)


class NearCacheMachine(RuleBasedStateMachine):
    marks = Bundle("marks")

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        # model: key -> (put at, generation, the session object); dict order = put order
        self.model: dict[str, tuple[float, int, LoadedSession]] = {}
        self.heard = 0  # changes and clears heard: what a mark is compared with

    @initialize(max_age=st.sampled_from([1.0, 0.25, 0.0]), size=st.sampled_from([2, 1, 10, 0]))
    def start(self, max_age: float, size: int) -> None:
        self.cache = NearCache(max_age=max_age, size=size, monotonic=lambda: self.now)
        self.enabled = max_age > 0 and size > 0

    def _expire(self) -> None:
        """What the model says a get at ``now`` finds: entries at or past max_age are gone."""
        for key, (at, _, _) in list(self.model.items()):
            if self.now - at >= self.cache.max_age:
                del self.model[key]

    def _put(self, session: LoadedSession) -> None:
        key = session.key
        self.model.pop(key, None)
        self.model[key] = (self.now, session.generation, session)
        if len(self.model) > self.cache.size:
            del self.model[next(iter(self.model))]

    @rule(target=marks)
    def mark(self) -> int:
        """A read of the store starts: take the mark."""
        return self.cache.mark()

    @rule(since=consumes(marks), i=st.integers(0, N - 1), generation=st.integers(0, 3))
    def put_read(self, since: int, i: int, generation: int) -> None:
        """The read finishes: put with its mark (ignored when a change came in between)."""
        session = _session(i, generation)
        self.cache.put(session, since=since)
        if self.enabled and since == self.heard:
            self._put(session)

    @rule(i=st.integers(0, N - 1), generation=st.integers(0, 3))
    def put_written(self, i: int, generation: int) -> None:
        session = _session(i, generation)
        self.cache.put(session)
        if self.enabled:
            self._put(session)

    @rule(i=st.integers(0, N - 1))
    def get(self, i: int) -> None:
        key = KEYS[i]
        got = self.cache.get(key)
        entry = self.model.get(key)
        if entry is not None and self.now - entry[0] >= self.cache.max_age:
            del self.model[key]
            entry = None
        if entry is None:
            assert got is None
        else:
            assert got is entry[2]
            assert self.now - entry[0] < self.cache.max_age

    @rule(i=st.integers(0, N - 1), generation=st.one_of(st.none(), st.integers(0, 4)))
    def changed(self, i: int, generation: int | None) -> None:
        key = KEYS[i]
        self.cache.changed(key, generation)
        self.heard += 1
        entry = self.model.get(key)
        if entry is not None and (generation is None or entry[1] < generation):
            del self.model[key]

    @rule(i=st.integers(0, N - 1))
    def drop(self, i: int) -> None:
        self.cache.drop(KEYS[i])
        self.model.pop(KEYS[i], None)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.heard += 1
        self.model.clear()

    @rule(dt=st.sampled_from([0.0, 0.001, 0.1, 0.2499, 0.25, 0.5, 0.9999, 1.0, 60.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def bounded_and_agreeing(self) -> None:
        if not hasattr(self, "cache"):
            return
        assert len(self.cache) <= max(0, self.cache.size)
        if not self.enabled:
            assert len(self.cache) == 0
        # The cache may still hold expired entries (removed on their next get), never more
        # than the model's live ones plus those.
        live = {k for k, (at, _, _) in self.model.items() if self.now - at < self.cache.max_age}
        for key in KEYS:
            got = self.cache.get(key)
            if key in live:
                assert got is self.model[key][2]
            else:
                assert got is None
        self._expire()


# The fuzz profile's examples (conftest.py), each a run of up to 30 steps.
NearCacheMachine.TestCase.settings = settings(stateful_step_count=30)
test_near_cache_machine = NearCacheMachine.TestCase
