"""The anti-forgery rule for /bff/user and token routes: the check and the rejection.

Duende-style static header (``X-CSRF: 1``) plus an Origin check for unsafe methods.
Requiring a custom header forces a CORS preflight for cross-origin callers, which the
gateway never approves; the Origin check is defence in depth.
"""

from __future__ import annotations

from collections.abc import Callable

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.edge.fields import Headers, single_header
from bffgate.errors import CsrfRejected

_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def csrf_failure(method: str, headers: Headers, public_origin: str) -> str | None:
    """The reason the request fails the check, or None; a duplicated X-CSRF or Origin
    raises ``AmbiguousRequest``."""
    if single_header(headers, b"x-csrf") != "1":
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
