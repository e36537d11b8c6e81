"""The session near-cache (session/near_cache.py): its own rules, then SessionService over
one memory store shared by two services, as two replicas share Redis."""

from __future__ import annotations

import secrets

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import LoadedSession, NewTokens, NoSession
from bffgate.session.near_cache import NearCache
from bffgate.session.service import SessionService
from bffgate.store.base import SessionChanges
from bffgate.store.memory import MemoryStore

KEY = secrets.token_urlsafe(32)


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class CountingStore(MemoryStore):
    """A memory store that counts the reads that reach it."""

    def __init__(self, clock: FrozenClock) -> None:
        super().__init__(clock)
        self.loads = 0

    async def load_session(self, key: str, *, now_ms: int, idle_ms: int):  # type: ignore[no-untyped-def]
        self.loads += 1
        return await super().load_session(key, now_ms=now_ms, idle_ms=idle_ms)


def _service(store: MemoryStore, clock: FrozenClock, ticker: Ticker,
             max_age: float = 1.0) -> SessionService:
    return SessionService(store, CookieCodec([KEY]), clock, idle_timeout=600,
                          absolute_timeout=3600, refresh_ahead=60,
                          near_cache=NearCache(max_age=max_age, monotonic=ticker))


async def _login(svc: SessionService, clock: FrozenClock) -> str:
    cookie, _ = await svc.create(NewTokens("at", "rt", None, clock.now() + 300), sub="alice",
                                 idp_sid="sid-1", claims={})
    return cookie


async def test_a_hot_session_is_read_from_the_store_once_per_max_age() -> None:
    clock, ticker = FrozenClock(), Ticker()
    store = CountingStore(clock)
    svc = _service(store, clock, ticker)
    cookie = await _login(svc, clock)
    for _ in range(50):
        assert isinstance(await svc.from_cookie(cookie), LoadedSession)
    assert store.loads == 1
    ticker.t += 1.0  # the entry is as old as the bound: read (and slide) again
    assert isinstance(await svc.from_cookie(cookie), LoadedSession)
    assert store.loads == 2


async def test_off_means_one_read_per_call() -> None:
    clock, ticker = FrozenClock(), Ticker()
    store = CountingStore(clock)
    svc = _service(store, clock, ticker, max_age=0)
    cookie = await _login(svc, clock)
    for _ in range(5):
        await svc.from_cookie(cookie)
    assert store.loads == 5


async def test_a_session_ended_by_another_replica_is_refused_at_once_when_told() -> None:
    clock, ticker = FrozenClock(), Ticker()
    store = MemoryStore(clock)
    a, b = _service(store, clock, ticker), _service(store, clock, ticker)
    cookie = await _login(a, clock)
    on_b = await b.from_cookie(cookie)
    assert isinstance(on_b, LoadedSession)
    session_on_a = await a.from_cookie(cookie)
    assert isinstance(session_on_a, LoadedSession)
    await a.destroy(session_on_a)
    assert await b.from_cookie(cookie) is NoSession.SESSION_UNKNOWN


async def test_an_announcement_lost_is_covered_by_the_age_bound() -> None:
    """B never hears of A's delete (its listener is gone, as if pub/sub lost the message):
    B serves its copy for less than max_age, then asks the store and refuses."""
    clock, ticker = FrozenClock(), Ticker()
    store = MemoryStore(clock)
    a, b = _service(store, clock, ticker), _service(store, clock, ticker)
    store.changes.remove(b._changed)
    cookie = await _login(a, clock)
    assert isinstance(await b.from_cookie(cookie), LoadedSession)
    session_on_a = await a.from_cookie(cookie)
    assert isinstance(session_on_a, LoadedSession)
    await a.destroy(session_on_a)
    ticker.t += 0.9
    assert isinstance(await b.from_cookie(cookie), LoadedSession)  # within the bound
    ticker.t += 0.1
    assert await b.from_cookie(cookie) is NoSession.SESSION_UNKNOWN


async def test_rotated_tokens_on_one_replica_replace_the_copy_on_the_other() -> None:
    clock, ticker = FrozenClock(), Ticker()
    store = MemoryStore(clock)
    a, b = _service(store, clock, ticker), _service(store, clock, ticker)
    cookie = await _login(a, clock)
    on_b = await b.from_cookie(cookie)
    assert isinstance(on_b, LoadedSession)
    current = await a.load(on_b.handle)
    assert current is not None
    saved = await a.replace_tokens(current, NewTokens("at-2", "rt-2", None, clock.now() + 300))
    assert saved is not None
    again = await b.from_cookie(cookie)
    assert isinstance(again, LoadedSession)
    assert again.data.tokens.access_token == "at-2" and again.generation == saved.generation
    # A's own write is cached at its new generation: no read needed on A
    assert a.near_cache.get(saved.key) is saved


async def test_idle_and_absolute_expiry_are_checked_on_a_hit() -> None:
    clock, ticker = FrozenClock(), Ticker()
    svc = _service(MemoryStore(clock), clock, ticker)
    cookie = await _login(svc, clock)
    assert isinstance(await svc.from_cookie(cookie), LoadedSession)
    clock.advance(601)  # idle timeout passed on the request clock, cache entry still young
    assert await svc.from_cookie(cookie) is NoSession.SESSION_UNKNOWN


async def test_a_change_heard_while_a_read_is_in_flight_is_not_overwritten() -> None:
    cache = NearCache(monotonic=Ticker())
    clock = FrozenClock()
    svc = _service(MemoryStore(clock), clock, Ticker())
    cookie = await _login(svc, clock)
    session = await svc.from_cookie(cookie)
    assert isinstance(session, LoadedSession)
    mark = cache.mark()
    cache.changed(session.key, None)  # deleted while the read was on the wire
    cache.put(session, since=mark)
    assert cache.get(session.key) is None
    cache.put(session, since=cache.mark())
    assert cache.get(session.key) is session


async def test_gap_in_announcements_drops_everything() -> None:
    clock, ticker = FrozenClock(), Ticker()
    store = MemoryStore(clock)
    svc = _service(store, clock, ticker)
    cookie = await _login(svc, clock)
    await svc.from_cookie(cookie)
    assert len(svc.near_cache) == 1
    store.changes.tell(None, None)  # "anything may have changed" (subscription restarted)
    assert len(svc.near_cache) == 0


def test_size_bound_evicts_the_oldest_read() -> None:
    ticker = Ticker()
    cache = NearCache(size=2, monotonic=ticker)

    class S:
        def __init__(self, key: str) -> None:
            self.key, self.generation = key, 1

    for k in ("a", "b", "c"):
        cache.put(S(k))  # type: ignore[arg-type]
    assert cache.get("a") is None and cache.get("b") is not None and cache.get("c") is not None
    assert len(cache) == 2


def test_listeners_hear_every_change_in_order() -> None:
    heard: list[tuple[str | None, int | None]] = []
    changes = SessionChanges()
    changes.add(lambda k, g: heard.append((k, g)))
    changes.tell("k", 2)
    changes.tell("k", None)
    changes.tell(None, None)
    assert heard == [("k", 2), ("k", None), (None, None)]


async def test_concurrent_misses_share_one_read() -> None:
    """The burst when a hot entry ages out: 20 requests at once, one store read."""
    import asyncio

    clock, ticker = FrozenClock(), Ticker()
    store = CountingStore(clock)
    svc = _service(store, clock, ticker)
    cookie = await _login(svc, clock)
    found = await asyncio.gather(*(svc.from_cookie(cookie) for _ in range(20)))
    assert all(isinstance(f, LoadedSession) for f in found)
    assert store.loads == 1
    off = _service(store, clock, ticker, max_age=0)  # cache off: each request reads itself
    await asyncio.gather(*(off.from_cookie(cookie) for _ in range(5)))
    assert store.loads == 6
