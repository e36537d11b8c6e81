"""W3C Trace Context, pure: which incoming ``traceparent`` the gateway continues.

A browser can send any ``traceparent``; continuing it would let a page choose the trace
ids the gateway and the upstreams record (and attach a user's requests to someone else's
trace). It is continued only from a trusted source: the peer is one of
``server.trusted_proxies`` (the proxy in front set or vetted it), or the request is the
SPA's own (``Sec-Fetch-Site: same-origin``, which no page can forge, or an ``Origin``
equal to ``server.public_url``'s). Otherwise the request starts a new trace, and a
well-formed foreign context is kept only as a link (attribute ``bffgate.untrusted``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Headers = Sequence[tuple[bytes, bytes]]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")  # fullmatch
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16


@dataclass(frozen=True)
class Parent:
    """A parsed traceparent (version 00)."""

    trace_id: int
    span_id: int
    flags: int
    tracestate: str = ""


def parse_traceparent(value: str) -> Parent | None:
    """Version 00, lower-case hex, ids not all zero (W3C Trace Context 3.2); else None."""
    m = _TRACEPARENT.fullmatch(value)
    if m is None or m.group(1) == _ZERO_TRACE or m.group(2) == _ZERO_SPAN:
        return None
    return Parent(int(m.group(1), 16), int(m.group(2), 16), int(m.group(3), 16))


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def _values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for k, v in headers if k.lower() == name]


def incoming_parent(headers: Headers) -> Parent | None:
    """The request's trace context: exactly one valid ``traceparent`` (two or more: none,
    as W3C says for a header it cannot make one value of), with its ``tracestate``."""
    found = _values(headers, b"traceparent")
    if len(found) != 1:
        return None
    parent = parse_traceparent(found[0].decode("latin-1").strip(" \t"))
    if parent is None:
        return None
    state = b",".join(_values(headers, b"tracestate")).decode("latin-1")[:512]
    return Parent(parent.trace_id, parent.span_id, parent.flags, state)


def is_trusted(headers: Headers, peer: str, *, trusts: Callable[[str], bool],
               public_origin: str) -> bool:
    """Whether this request may set the trace it belongs to (see the module docstring)."""
    if trusts(peer):
        return True
    site = _values(headers, b"sec-fetch-site")
    if len(site) == 1 and site[0].strip().lower() == b"same-origin":
        return True
    origin = _values(headers, b"origin")
    return len(origin) == 1 and origin[0].decode("latin-1").strip() == public_origin


def trusted_parent(headers: Headers, peer: str, *, trusts: Callable[[str], bool],
                   public_origin: str) -> tuple[Parent | None, Parent | None]:
    """(parent to continue, foreign context to link): at most one of them is set."""
    parent = incoming_parent(headers)
    if parent is None:
        return None, None
    if is_trusted(headers, peer, trusts=trusts, public_origin=public_origin):
        return parent, None
    return None, parent
