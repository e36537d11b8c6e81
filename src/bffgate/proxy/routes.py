"""Pure route matching: longest prefix on segment boundaries, with path-escape checks.

A request must never reach an upstream path outside its route. The raw (still
percent-encoded) path is checked and forwarded as sent, so the gateway and the upstream
cannot disagree about what it means: encoded separators (``%2f``, ``%5c``), encoded or
double-encoded dots, dot segments, empty segments, backslashes and control characters are
refused (400) before anything is forwarded.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

_BAD_ENCODED = re.compile(r"%(2[fF]|5[cC]|2[eE]|00)|%25[0-9a-fA-F]{2}")
_MAX_DECODES = 4  # percent-decodings examined for a hidden escape
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")  # raw path: no space either (RFC 9112)
# After decoding, an encoded space (%20) is ordinary path data; controls still are not.
_DECODED_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


class PathNotAllowed(ValueError):
    """The path could escape its route (reason says how)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Route:
    prefix: str  # normalised: no trailing slash, "/" for the root route
    upstream: str
    token: str
    strip_prefix: bool
    timeout: float
    name: str

    @functools.cached_property  # computed once per route, not per proxied request
    def upstream_base_path(self) -> str:
        return urlsplit(self.upstream).path.rstrip("/")

    @functools.cached_property
    def upstream_origin(self) -> str:
        parts = urlsplit(self.upstream)
        return f"{parts.scheme}://{parts.netloc}"


def _escape_after_decoding(raw_path: str) -> bool:
    """True when a hop that decodes again would find a refused escape: ``%25%32%65`` is
    ``%2e`` once decoded and ``.`` twice (and aiohttp's URL normalisation, ``%32`` -> ``2``,
    even forwards it as ``%252e``). A path still changing after a few decodings counts too."""
    form = raw_path
    for _ in range(_MAX_DECODES):
        decoded = unquote(form)
        if decoded == form:
            return False
        if _BAD_ENCODED.search(decoded):
            return True
        form = decoded
    return True


def check_path(raw_path: str) -> str:
    """Validate a raw request path; return it unchanged or raise PathNotAllowed."""
    if not raw_path.startswith("/"):
        raise PathNotAllowed("not_absolute")
    if len(raw_path) > 8192:
        raise PathNotAllowed("too_long")
    if _CONTROL.search(raw_path):
        raise PathNotAllowed("control_or_backslash")
    if _BAD_ENCODED.search(raw_path) or _escape_after_decoding(raw_path):
        raise PathNotAllowed("encoded_separator_or_dot")
    decoded = unquote(raw_path)
    if _DECODED_CONTROL.search(decoded):
        raise PathNotAllowed("control_or_backslash")
    segments = decoded.split("/")[1:]
    for i, seg in enumerate(segments):
        if seg in (".", ".."):
            raise PathNotAllowed("dot_segment")
        if seg == "" and i != len(segments) - 1:
            raise PathNotAllowed("empty_segment")
    return raw_path


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def match(self, raw_path: str) -> Route | None:
        """Longest prefix on a segment boundary (``/api`` matches ``/api/x``, not ``/apix``)."""
        for r in self._routes:
            if r.prefix == "/":
                return r
            if raw_path == r.prefix or raw_path.startswith(r.prefix + "/"):
                return r
        return None

    @staticmethod
    def upstream_path(route: Route, raw_path: str) -> str:
        rest = raw_path[len(route.prefix):] if route.strip_prefix and route.prefix != "/" \
            else raw_path
        if not rest.startswith("/"):
            rest = "/" + rest
        return route.upstream_base_path + rest
