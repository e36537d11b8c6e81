"""A route's three upstream timeouts and how the ``timeout`` shorthand fills them in."""

from __future__ import annotations

from dataclasses import dataclass

# Today's connect bound: a TCP/TLS connect that takes longer is a dead upstream, not a
# slow one (the route's timeout still caps it when it is shorter).
DEFAULT_CONNECT = 5.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``connect``: TCP/TLS connect (and the wait for a pooled connection);
    ``response``: from the request sent to the response headers; ``idle``: between two
    reads of the response body, None for no limit (a quiet Server-Sent Events stream)."""

    connect: float
    response: float
    idle: float | None

    @classmethod
    def of(cls, timeout: float, *, connect: float | None = None,
           response: float | None = None, idle: float | None = None) -> Timeouts:
        """``timeout`` is the shorthand: it is the response and idle timeouts unless they
        are given, and caps the default connect timeout, so a route that sets only
        ``timeout`` behaves as before the split. ``idle = 0`` means no idle limit."""
        return cls(
            connect=connect if connect is not None else min(DEFAULT_CONNECT, timeout),
            response=response if response is not None else timeout,
            idle=timeout if idle is None else (idle or None),
        )
