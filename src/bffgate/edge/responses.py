"""Responses the gateway builds itself: the auth-flow redirect (no-store, cookies)."""

from __future__ import annotations

from starlette.responses import Response

from bffgate.problems import NO_STORE


def redirect(location: str, *set_cookies: bytes) -> Response:
    """302 to ``location`` (ASCII: a checked local path or the IdP's URL), never cached,
    setting each of ``set_cookies`` (Set-Cookie values from CookieWriter)."""
    response = Response(status_code=302)
    response.raw_headers.extend([(b"location", location.encode("ascii")), *NO_STORE,
                                 *((b"set-cookie", c) for c in set_cookies)])
    return response
