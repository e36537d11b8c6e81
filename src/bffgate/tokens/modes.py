"""What each route token mode needs from the request before its token can be chosen."""

from __future__ import annotations

import enum


class SessionUse(enum.Enum):
    NONE = "none"          # no session read at all
    OPTIONAL = "optional"  # the session when a live one comes with the request, else none
    REQUIRED = "required"  # 401 without a live session


_SESSION_USE = {
    "none": SessionUse.NONE,
    "client": SessionUse.NONE,
    "user": SessionUse.REQUIRED,
    "exchange": SessionUse.REQUIRED,
    "user_optional": SessionUse.OPTIONAL,
    "user_or_client": SessionUse.OPTIONAL,
}


def session_use(mode: str) -> SessionUse:
    """How a route of token mode ``mode`` reads the session (an unknown mode is a
    programming error: config validation allows only these)."""
    return _SESSION_USE[mode]


def needs_csrf(mode: str) -> bool:
    """Every mode that puts a gateway-held token on the request requires X-CSRF: a
    cross-site page must not spend the user's token nor the gateway's own client token."""
    return mode != "none"
