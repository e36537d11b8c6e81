"""Pure route matching: longest prefix on segment boundaries, with path-escape checks.

A request must never reach an upstream path outside its route. The raw (still
percent-encoded) path is checked and forwarded as sent, so the gateway and the upstream
cannot disagree about what it means. Refused (400) before anything is forwarded:

- encoded separators (``%2f``, ``%5c``), encoded or double-encoded dots, NUL;
- dot segments, also in their servlet form: a segment whose part before ``;`` is ``.`` or
  ``..`` (``/api/..;/secret``, Tomcat/Jetty/Spring read it as ``..``), raw or decoded;
- ``;`` (raw or ``%3b``) anywhere, unless the route sets ``allow_matrix_params``; then the
  route prefix itself must still appear without parameters (``/api;x/y`` is refused), and
  routes are matched on the path with its ``;params`` removed, as a servlet would see it;
- percent-encoded bytes that are not valid UTF-8 once decoded: overlong forms of ``.`` and
  ``/`` (``%c0%ae``, ``%e0%80%ae``, ``%f0%80%80%ae``, ``%c0%af``), lone continuation bytes,
  surrogates. A lenient decoder behind the gateway could read them as ``..`` or ``/``;
  a real UTF-8 name (``%C3%A9``) passes;
- raw bytes outside printable ASCII (controls, space, DEL, anything above 0x7e: a client
  percent-encodes those), backslashes, empty segments.

Methods: TRACE, TRACK and CONNECT are never proxied (TRACE echoes the request, bearer
included, back to whoever sent it); each route allows a configured list, by default
``DEFAULT_METHODS``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from bffgate.proxy.timeouts import Timeouts

DEFAULT_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
FORBIDDEN_METHODS = frozenset({"TRACE", "TRACK", "CONNECT"})
# What a route may list: the methods an API behind a gateway plausibly serves (RFC 9110,
# PATCH from RFC 5789, WebDAV from RFC 4918, QUERY from the httpbis draft).
KNOWN_METHODS = frozenset({
    *DEFAULT_METHODS, "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
    "QUERY",
})

_BAD_ENCODED = re.compile(r"%(2[fF]|5[cC]|2[eE]|00)|%25[0-9a-fA-F]{2}")
# A "%" that starts no %XX escape: decoders disagree (kept, refused, or IIS's %u002e = ".").
_BAD_PERCENT = re.compile(r"%(?![0-9a-fA-F]{2})")
_MAX_DECODES = 4  # percent-decodings examined for a hidden escape
# Raw path: printable ASCII only (RFC 9112 request-target), no backslash.
_RAW_FORBIDDEN = re.compile(r"[^\x21-\x7e]|\\")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# After decoding, an encoded space (%20) is ordinary path data; controls still are not.
_DECODED_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_ENCODED_SEMICOLON = re.compile(r"%3[bB]")
_DOTS = (".", "..")


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
    methods: frozenset[str] = frozenset(DEFAULT_METHODS)
    allow_matrix_params: bool = False
    # Unset: filled in from ``timeout`` (Timeouts.of); idle_timeout 0 is no idle limit.
    connect_timeout: float | None = None
    response_timeout: float | None = None
    idle_timeout: float | None = None

    @functools.cached_property
    def timeouts(self) -> Timeouts:
        return Timeouts.of(self.timeout, connect=self.connect_timeout,
                           response=self.response_timeout, idle=self.idle_timeout)

    @functools.cached_property  # computed once per route, not per proxied request
    def upstream_base_path(self) -> str:
        return urlsplit(self.upstream).path.rstrip("/")

    @functools.cached_property
    def upstream_origin(self) -> str:
        parts = urlsplit(self.upstream)
        return f"{parts.scheme}://{parts.netloc}"

    @functools.cached_property
    def allow_header(self) -> bytes:
        """The ``Allow`` value of this route's 405 answers (RFC 9110 10.2.1)."""
        ordered = [m for m in DEFAULT_METHODS if m in self.methods]
        ordered += sorted(self.methods - set(DEFAULT_METHODS))
        return ", ".join(ordered).encode("ascii")


def _is_dot_segment(segment: str) -> bool:
    return segment.partition(";")[0] in _DOTS


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


def check_path(raw_path: str, *, allow_matrix_params: bool = False) -> str:
    """Validate a raw request path; return it unchanged or raise PathNotAllowed."""
    if not raw_path.startswith("/"):
        raise PathNotAllowed("not_absolute")
    if len(raw_path) > 8192:
        raise PathNotAllowed("too_long")
    if _RAW_FORBIDDEN.search(raw_path):
        raise PathNotAllowed("non_ascii" if _NON_ASCII.search(raw_path)
                             else "control_or_backslash")
    if _BAD_ENCODED.search(raw_path) or _escape_after_decoding(raw_path):
        raise PathNotAllowed("encoded_separator_or_dot")
    if _BAD_PERCENT.search(raw_path):
        raise PathNotAllowed("bad_percent")
    if "%" in raw_path:
        try:
            decoded = unquote_to_bytes(raw_path).decode("utf-8")  # strict: no overlong forms
        except UnicodeDecodeError:
            raise PathNotAllowed("invalid_utf8") from None
        if _DECODED_CONTROL.search(decoded):
            raise PathNotAllowed("control_or_backslash")
    else:  # printable ASCII without escapes (checked above) decodes to itself
        decoded = raw_path
    raw_segments = raw_path.split("/")[1:]
    # %2f and %5c are refused above, so decoded segments line up with the raw ones.
    for i, (seg, plain) in enumerate(zip(raw_segments, decoded.split("/")[1:], strict=True)):
        # Raw and decoded: "..;", ".;x" and "..%3b" are dot segments to a servlet.
        if _is_dot_segment(seg) or _is_dot_segment(plain):
            raise PathNotAllowed("dot_segment")
        if seg == "" and i != len(raw_segments) - 1:
            raise PathNotAllowed("empty_segment")
    if not allow_matrix_params and _has_params(raw_path):
        raise PathNotAllowed("matrix_params")
    return raw_path


def _has_params(raw_path: str) -> bool:
    return ";" in raw_path or _ENCODED_SEMICOLON.search(raw_path) is not None


def _without_params(raw_path: str) -> str:
    """The path as a servlet container matches it: every segment's ``;params`` removed."""
    if ";" not in raw_path:
        return raw_path
    return "/".join(seg.partition(";")[0] for seg in raw_path.split("/"))


# Paths resolved lately (by exact raw path, up to 256 characters): a path's verdict depends
# on the path alone, and an API's calls repeat their paths. Refused paths are never kept
# (each is checked again); oldest out first.
RESOLVED_MAX = 4096
_RESOLVED_PATH_MAX = 256
_MISS = object()


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)
        self._resolved: dict[str, Route | None] = {}

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def match(self, raw_path: str) -> Route | None:
        """Longest prefix on a segment boundary (``/api`` matches ``/api/x``, not ``/apix``),
        compared with the path's ``;params`` removed (``/api;x/y`` is under ``/api``)."""
        path = _without_params(raw_path)
        for r in self._routes:
            if r.prefix == "/":
                return r
            if path == r.prefix or path.startswith(r.prefix + "/"):
                return r
        return None

    def resolve(self, raw_path: str) -> Route | None:
        """The route for a raw request path, after every path check (raises PathNotAllowed);
        None when no route matches. The one entry point the proxy uses."""
        found = self._resolved.get(raw_path, _MISS)
        if found is not _MISS:
            return found  # type: ignore[return-value]
        route = self._resolve(raw_path)
        if len(raw_path) <= _RESOLVED_PATH_MAX:
            if len(self._resolved) >= RESOLVED_MAX:
                del self._resolved[next(iter(self._resolved))]
            self._resolved[raw_path] = route
        return route

    def _resolve(self, raw_path: str) -> Route | None:
        check_path(raw_path, allow_matrix_params=True)  # refused whatever it targets
        route = self.match(raw_path)
        if route is None:
            return None
        if not route.allow_matrix_params:
            if _has_params(raw_path):  # the route did not opt in: any ';' is refused
                raise PathNotAllowed("matrix_params")
        elif route.prefix != "/" and not (raw_path == route.prefix
                                          or raw_path.startswith(route.prefix + "/")):
            raise PathNotAllowed("matrix_params_in_prefix")
        return route

    @staticmethod
    def upstream_path(route: Route, raw_path: str) -> str:
        rest = raw_path[len(route.prefix):] if route.strip_prefix and route.prefix != "/" \
            else raw_path
        if not rest.startswith("/"):
            rest = "/" + rest
        return route.upstream_base_path + rest
