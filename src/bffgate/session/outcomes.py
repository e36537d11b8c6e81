"""What a refresh decides (a closed set the edge matches exhaustively), and what it is given:
the IdP call (``TokenRefresher``, with its two errors) and the observer it tells."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from bffgate.session.model import LoadedSession, NewTokens


class RefreshRejectedError(Exception):
    """The grant is refused for good: the IdP said so (invalid_grant, invalid_client...) or
    its answer can't be trusted (``id_token_invalid:<check>``)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class RefreshUnavailableError(Exception):
    """The IdP could not be reached or failed transiently; try again later."""


class TokenRefresher(Protocol):
    """(refresh_token, the session's sub[, its DPoP key]) -> the new tokens; raises the two
    errors above. The DPoP key (serialised) is passed only when the session has one."""

    def __call__(self, refresh_token: str, sub: str, dpop_key: str = ..., /) \
            -> Awaitable[NewTokens]: ...


@dataclass(frozen=True)
class Fresh:
    """The access token is valid and not yet due for refresh."""

    session: LoadedSession


@dataclass(frozen=True)
class Refreshed:
    """The tokens were rotated (by this request's grant, or another request's or replica's)."""

    session: LoadedSession


@dataclass(frozen=True)
class Ended:
    """The session is over and deleted. ``reason`` is the 401's (``access_token_expired``
    or ``refresh_rejected:<error>``); ``refresh_error`` the grant's refusal, if any."""

    session: LoadedSession  # as last read (for the audit), no longer stored
    reason: str
    refresh_error: str | None = None

    @classmethod
    def expired(cls, session: LoadedSession) -> Ended:
        """The access token expired and there is no refresh token to renew it."""
        return cls(session, "access_token_expired")

    @classmethod
    def rejected(cls, session: LoadedSession, error: str) -> Ended:
        return cls(session, f"refresh_rejected:{error}", error)


@dataclass(frozen=True)
class Unavailable:
    """The IdP could not refresh now; the session is kept. ``usable``: its access token is
    still valid (forward the request), else the edge answers 503."""

    session: LoadedSession
    usable: bool


Outcome = Fresh | Refreshed | Ended | Unavailable

# Told once per decision: a grant saved (Refreshed), a session ended, the IdP unavailable.
# (Fresh, and a result reused from another request or replica, are not news.)
RefreshObserver = Callable[[Refreshed | Ended | Unavailable], None]
