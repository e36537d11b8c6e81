"""The session near-cache: each process keeps the sessions it read lately, for a bounded time.

Why: a hot session would otherwise cost one store round trip per proxied call (read the
record, slide its idle TTL, unseal the tokens). With the cache, a call on a session this
process read less than ``max_age`` ago costs no round trip; the store is read (and the idle
TTL slid) at most once per ``max_age`` per session per process.

What keeps it correct:
- Bounded staleness, whatever happens to the network: an entry is served for at most
  ``max_age`` seconds (monotonic clock) after it was read from the store. A session ended
  on another replica (logout, back-channel logout, admin revoke, refresh failure) is
  therefore refused here within ``max_age`` (1 s), even if its invalidation is lost.
- Server-assisted invalidation: every write or delete of a session record is announced by
  the store (Redis pub/sub, published in the same round trip as the write), and each
  process drops its entry as soon as it hears of it, typically within milliseconds. When
  the subscription (re)starts, changes may have been missed: the whole cache is dropped.
- A write by this process (rotated tokens, an exchanged token, the end of a session)
  updates or drops the entry at once, before anyone else can read it.
- Every per-request check still runs on a hit: the cookie's signature (before the cache is
  asked), absolute and idle expiry against the request's clock, token expiry and refresh.

The idle timeout keeps its meaning to within ``max_age``: activity served from the cache in
the last ``max_age`` before the idle deadline does not slide the TTL (README "Sessions").
Memory is bounded by ``size`` entries (oldest-read evicted first).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bffgate.session.model import LoadedSession

MAX_AGE_SECONDS = 1.0  # the stated bound for "ended on any replica, refused on every one"
DEFAULT_SIZE = 10_000


class NearCache:
    def __init__(self, *, max_age: float = MAX_AGE_SECONDS, size: int = DEFAULT_SIZE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_age, self.size = max_age, size
        self._monotonic = monotonic
        # key -> (read at, session); dict order is read order: the first is the oldest
        self._entries: dict[str, tuple[float, LoadedSession]] = {}
        self._heard = 0  # changes heard so far (see mark())

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.size > 0

    def get(self, key: str) -> LoadedSession | None:
        """The session read for ``key`` less than ``max_age`` ago, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._monotonic() - entry[0] >= self.max_age:
            del self._entries[key]
            return None
        return entry[1]

    def mark(self) -> int:
        """Take before reading the store; give to ``put``: a change heard while the read
        was in flight may be newer than what it returns (the reply and the announcement
        travel on different connections), so that read is then not cached."""
        return self._heard

    def put(self, session: LoadedSession, *, since: int | None = None) -> None:
        """Remember ``session`` as just read from (``since`` = ``mark()`` before the read)
        or written to (``since`` None) the store."""
        if not self.enabled or (since is not None and since != self._heard):
            return
        entries = self._entries
        entries.pop(session.key, None)
        entries[session.key] = (self._monotonic(), session)
        if len(entries) > self.size:
            del entries[next(iter(entries))]

    def changed(self, key: str, generation: int | None) -> None:
        """The store says ``key`` was rewritten to ``generation`` (None: deleted). An entry
        already at that generation (this process's own write) is kept."""
        self._heard += 1
        entry = self._entries.get(key)
        if entry is not None and (generation is None or entry[1].generation < generation):
            del self._entries[key]

    def drop(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._heard += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
