"""The anti-forgery rule for /bff/user and token routes: the check and the rejection.

Duende-style static header (``X-CSRF: 1``) plus an Origin check for unsafe methods.
Requiring a custom header forces a CORS preflight for cross-origin callers, which the
gateway never approves; the Origin check is defence in depth.

One exception, for ``EventSource`` (which cannot set headers): a GET or HEAD whose
``Accept`` names ``text/event-stream`` passes without ``X-CSRF`` when the browser marks it
``Sec-Fetch-Site: same-origin``. This is the Fetch Metadata resource-isolation policy
(OWASP CSRF Prevention Cheat Sheet): ``Sec-*`` are forbidden header names, so no page can
set or forge them, and every major browser sends them since 2023 (Chromium 76, Firefox 90,
Safari 16.4). A cross-site, same-site (a sibling subdomain), ``none``
(typed URL, bookmark) or missing value never passes this way; the SameSite=Strict session
cookie stays the second line. Only a read-only stream is let through: anything else still
needs ``X-CSRF: 1``.
"""

from __future__ import annotations

from collections.abc import Callable

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.fields import Headers, list_header, single_header
from bffgate.errors import CsrfRejected

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_STREAM_METHODS = ("GET", "HEAD")  # what EventSource sends (GET); HEAD reads no more
_EVENT_STREAM = "text/event-stream"


def _accepts_event_stream(headers: Headers) -> bool:
    """Whether ``Accept`` names ``text/event-stream`` (any line, any parameters). Accept
    only selects this exception; Sec-Fetch-Site is what makes it safe, so a list here is
    read as a list, not refused."""
    accept = list_header(headers, b"accept")
    if accept is None:
        return False
    return any(part.split(";", 1)[0].strip(" \t").lower() == _EVENT_STREAM
               for part in accept.split(","))


def _same_origin_event_stream(method: str, headers: Headers) -> bool:
    """An EventSource-style read the browser itself marks as same-origin; a duplicated
    Sec-Fetch-Site raises ``AmbiguousRequest``."""
    if method not in _STREAM_METHODS or not _accepts_event_stream(headers):
        return False
    return single_header(headers, b"sec-fetch-site") == "same-origin"


def csrf_failure(method: str, headers: Headers, public_origin: str) -> str | None:
    """The reason the request fails the check, or None; a duplicated X-CSRF, Origin or
    Sec-Fetch-Site raises ``AmbiguousRequest``."""
    if single_header(headers, b"x-csrf") != "1":
        if _same_origin_event_stream(method, headers):
            return None
        return "csrf_header_missing"
    if method not in _SAFE_METHODS:
        origin = single_header(headers, b"origin")
        if origin is not None and origin != public_origin:
            return "origin_mismatch"
    return None


class CsrfGuard:
    """Checks a request and rejects it: counted, audited (``csrf.rejected``), 401."""

    def __init__(self, public_origin: str, on_reject: Callable[[], object]) -> None:
        self._origin, self._on_reject = public_origin, on_reject

    def require(self, method: str, headers: Headers, *, route: str | None = None) -> None:
        reason = csrf_failure(method, headers, self._origin)
        if reason is None:
            return
        self._on_reject()
        audit.emit(AuditEvent.CSRF_REJECTED, level="warning", reason=reason, route=route,
                   status=401)
        raise CsrfRejected(reason=reason, audited=True)
