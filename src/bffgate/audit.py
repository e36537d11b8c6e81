"""The audit-event catalogue: event names, field names, and the one function that emits them.

Every event is a JSON line with ``event`` set to one of ``EVENTS`` and ``audit: true``;
common fields (``request_id``, ``client_ip``, ``user_agent``, ``method``, ``path``) come
from the request context bound by the edge. ``session`` is always a short hash of the
session handle, never the id or the cookie.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from bffgate import logs


class AuditEvent(StrEnum):
    LOGIN_STARTED = "login.started"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_FAILED = "login.failed"
    SESSION_CREATED = "session.created"
    SESSION_REFRESHED = "session.refreshed"
    SESSION_REFRESH_FAILED = "session.refresh_failed"
    SESSION_EXPIRED = "session.expired"
    SESSION_ENDED = "session.ended"
    SESSION_REVOKED = "session.revoked"
    SESSION_EVICTED = "session.evicted"  # session.max_per_user: a new login ended the oldest
    LOGOUT_BACKCHANNEL = "logout.backchannel"
    CSRF_REJECTED = "csrf.rejected"
    REQUEST_PROXIED = "request.proxied"
    REQUEST_REJECTED = "request.rejected"
    REQUEST_ABORTED = "request.aborted"
    TOKEN_EXCHANGED = "token.exchanged"  # RFC 8693, per route (bffgate.tokens.exchange)
    TOKEN_EXCHANGE_FAILED = "token.exchange_failed"
    TOKEN_CLIENT_ISSUED = "token.client_issued"  # client credentials, per route (tokens.client)
    WEBSOCKET_OPENED = "websocket.opened"  # endpoints.websocket
    WEBSOCKET_CLOSED = "websocket.closed"  # reason: who ended it; detail: the close code


# The documented field catalogue (README "Audit events"). emit() refuses anything else so
# that a typo can't silently fork the schema. The IdP's error code travels in ``reason``
# (``idp_error:<code>``, ``token_exchange:<error>``) and the upstream is named by ``route``:
# no second field for either.
FIELDS = frozenset(
    {
        "request_id", "session", "sub", "client_ip", "user_agent", "route", "method", "path",
        "status", "duration_ms", "reason", "detail", "count", "expires_in",
    }
)

# The redaction processor trusts `event` only on lines whose text is one of these.
logs.AUDIT_EVENT_NAMES.update(e.value for e in AuditEvent)
# Each event's name as a plain str, looked up once: an enum member's .value goes through a
# descriptor on every read, on the hot path once per proxied call.
_NAMES: dict[AuditEvent, str] = {e: e.value for e in AuditEvent}


def emit(event: AuditEvent, *, level: str = "info", **fields: Any) -> None:
    """Write one audit event. Unknown field names raise (a programming error)."""
    if not FIELDS.issuperset(fields):
        msg = f"unknown audit field(s) {sorted(set(fields) - FIELDS)} for {event}"
        raise ValueError(msg)
    if not logs.enabled(level):  # below the configured level: nothing to build
        return
    line = {k: v for k, v in fields.items() if v is not None}
    line["event"], line["audit"] = _NAMES[event], True
    logs.write(level, line)
