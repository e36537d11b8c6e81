"""When a session's new tokens are due for refresh: the refresh point plus injected jitter.

The jitter spreads the refreshes of sessions that logged in together (a deploy, a morning
rush) so they don't hit the IdP in one burst. It is injected: ``random_jitter(seed)`` in
production (unseeded), a seeded or constant one in tests.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from bffgate.session.model import NewTokens, Tokens, refresh_point

# upper bound (seconds) -> a jitter in [0, upper bound]
Jitter = Callable[[float], float]

MAX_JITTER = 5.0  # seconds; and never more than 10 % of refresh_ahead


def random_jitter(seed: int | None = None) -> Jitter:
    rng = random.Random(seed)  # noqa: S311 - spreading load, not a secret
    return lambda bound: rng.uniform(0, bound)


class RefreshSchedule:
    def __init__(self, refresh_ahead: int, jitter: Jitter | None = None) -> None:
        self.refresh_ahead = refresh_ahead
        self._jitter = jitter or random_jitter()

    def tokens(self, new: NewTokens, now: float) -> Tokens:
        """The token set to store for ``new``, issued at ``now``, with its refresh point."""
        jitter = self._jitter(min(MAX_JITTER, self.refresh_ahead * 0.1))
        return Tokens(new.access_token, new.refresh_token, new.id_token, new.expires_at,
                      refresh_point(now, new.expires_at, self.refresh_ahead, jitter),
                      new.dpop_key, new.token_type)
