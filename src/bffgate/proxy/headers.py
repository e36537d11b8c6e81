"""Pure header policy for proxied requests and responses.

Request: drop hop-by-hop headers and those named in ``Connection``; drop the browser's
``Cookie`` and ``Authorization`` and anything that claims identity or routing
(``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``, ``DPoP``...), matching names
case-insensitively and with ``_`` read as ``-`` (so ``X_Forwarded_For`` can't slip through
a server that aliases them); then add the gateway's own credential headers
(``Authorization``, ``DPoP``: given, built by bffgate.tokens),
``X-Forwarded-For/Proto/Host``, ``X-Request-Id`` and ``traceparent`` exactly once.
Response: drop hop-by-hop headers and ``Set-Cookie`` (an upstream never sets cookies on the
gateway's origin); add ``Cache-Control: no-store`` unless the upstream chose caching.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bffgate.ids import hex_id
from bffgate.telemetry.context import format_traceparent, incoming_parent, parse_traceparent

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"trailers",
    b"transfer-encoding", b"upgrade", b"proxy-authenticate", b"proxy-authorization",
})
REQUEST_DROP = HOP_BY_HOP | frozenset({
    b"cookie", b"cookie2", b"authorization", b"host", b"forwarded", b"x-forwarded-for",
    b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port", b"x-forwarded-prefix",
    b"x-forwarded-uri", b"x-original-url", b"x-rewrite-url", b"x-real-ip", b"x-client-ip",
    b"true-client-ip", b"cf-connecting-ip", b"x-request-id", b"traceparent", b"tracestate",
    b"dpop", b"x-csrf", b"x-forwarded-user", b"x-forwarded-email", b"x-auth-request-user",
    b"x-auth-request-email", b"x-forwarded-access-token", b"x-id-token", b"x-access-token",
    b"x-userinfo", b"x-remote-user", b"remote-user",
})
# x-request-id: the gateway adds its own (an upstream echoing it would make two).
RESPONSE_DROP = HOP_BY_HOP | frozenset({
    b"set-cookie", b"set-cookie2", b"date", b"server", b"x-request-id",
})
_DIGITS = re.compile(rb"[0-9]{1,18}")  # fullmatch


def _valid_traceparent(value: bytes) -> bool:
    return parse_traceparent(value.decode("latin-1")) is not None


def _connection_named(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    named: set[bytes] = set()
    for k, v in headers:
        if k.lower() == b"connection":
            named.update(_norm(t.strip()) for t in v.split(b",") if t.strip())
    return named


def _norm(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-")


def upstream_request_headers(
    headers: list[tuple[bytes, bytes]], *, auth_headers: Sequence[tuple[bytes, bytes]],
    client_ip: str, proto: str, host: str, request_id: str, traceparent: bytes | None,
) -> list[tuple[bytes, bytes]]:
    """The upstream request's headers: the client's, filtered, then ``auth_headers`` (the
    route's credential as bffgate.tokens presents it: Authorization, and DPoP for a DPoP
    token; empty for none) and the gateway's forwarding headers."""
    named = _connection_named(headers)
    # Every X-Forwarded-* is the gateway's to say (-Ssl, -Scheme, -Client-Cert...), not just
    # the listed ones. (_norm written out: this runs for every header of every call.)
    out = [(k, v) for k, v in headers
           if (n := k.lower().replace(b"_", b"-")) not in REQUEST_DROP and n not in named
           and not n.startswith(b"x-forwarded-")]
    out.extend(auth_headers)
    out.append((b"x-forwarded-for", client_ip.encode("latin-1")))
    out.append((b"x-forwarded-proto", proto.encode("latin-1")))
    out.append((b"x-forwarded-host", host.encode("latin-1")))
    out.append((b"x-request-id", request_id.encode("latin-1")))
    out.append((b"traceparent", traceparent if traceparent and _valid_traceparent(traceparent)
                else new_traceparent()))
    return out


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length, or None when it has none (its body then goes out
    chunked). ValueError for a second Content-Length or one that is not 1*DIGIT: the edge
    refuses those first, this keeps the forwarder from ever trusting one."""
    values = [v for k, v in headers if k.lower() == b"content-length"]
    if not values:
        return None
    if len(values) > 1 or _DIGITS.fullmatch(values[0]) is None:
        msg = "ambiguous or malformed Content-Length"
        raise ValueError(msg)
    return int(values[0])


def new_traceparent() -> bytes:
    ids = hex_id(24)  # trace id (16 bytes) and span id (8): each must not be all zeros
    trace, span = ids[:32], ids[32:]
    if trace.strip("0") and span.strip("0"):
        return f"00-{trace}-{span}-01".encode()
    return f"00-{hex_id(16)}-{hex_id(8)}-01".encode()


def incoming_traceparent(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The request's trace context for the upstream (W3C, parsed by the one parser,
    bffgate.telemetry.context): its trace id and flags with a new span id for our hop; None
    without exactly one valid ``traceparent``. Whether it may be continued at all is the
    caller's: only from a trusted source (endpoints.api)."""
    parent = incoming_parent(headers)
    if parent is None:
        return None
    return format_traceparent(parent.trace_id, int(hex_id(8), 16), parent.flags).encode()


def downstream_response_headers(headers: list[tuple[bytes, bytes]], *,
                                request_id: str) -> list[tuple[bytes, bytes]]:
    named = _connection_named(headers)
    out = [(k, v) for k, v in headers
           if (n := k.lower().replace(b"_", b"-")) not in RESPONSE_DROP and n not in named]
    if not any(k.lower() == b"cache-control" for k, _ in out):
        out.append((b"cache-control", b"no-store"))
    out.append((b"vary", b"Cookie"))
    out.append((b"x-request-id", request_id.encode("latin-1")))
    return out
