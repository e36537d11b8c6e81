"""Per-request facts every endpoint needs: request id, client IP, parsed cookies, CSRF.

Duplicates are never resolved silently: every header or cookie the gateway trusts is read
through ``single_header`` / ``single_cookie``, which raise ``AmbiguousRequest`` (400) when
it comes twice or, for a header, as a comma list (the combined form of two lines). The
one list header read, ``X-Forwarded-For`` from a trusted proxy, combines its lines in
order (RFC 9110 5.3) and refuses any element it would have to guess about.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

from bffgate.errors import AmbiguousRequest

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    client_ip: str
    user_agent: str
    method: str
    path: str


class TrustedProxies:
    """Decides which peer may tell us the client's address via X-Forwarded-For."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def trusts(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in n for n in self._nets)

    def client_ip(self, peer: str, xff: str | None) -> str:
        """Walk X-Forwarded-For right to left through trusted hops only.

        The first untrusted hop is the client (a trusted proxy wrote it). If that element is
        not a bare IP address (``unknown``, ``1.2.3.4:80``, garbage), the client's address
        cannot be known: ``AmbiguousRequest``, never a guess. Every hop trusted: the
        leftmost. An untrusted peer's header is ignored (anyone can write one).
        """
        if not xff or not self.trusts(peer):
            return peer
        hops = [h.strip(" \t") for h in xff.split(",")]
        hops = [h for h in hops if h]  # empty list elements are ignored (RFC 9110 5.6.1)
        for hop in reversed(hops):
            if self.trusts(hop):
                continue
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                raise AmbiguousRequest(
                    "X-Forwarded-For from a trusted proxy holds an element that is not an "
                    "IP address; check the proxy chain (server.trusted_proxies)",
                    reason="invalid_header:x-forwarded-for") from None
        return str(ipaddress.ip_address(hops[0])) if hops else peer


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of ``name``: only for informational headers (User-Agent) and for
    framing headers checked elsewhere; anything the gateway trusts uses single_header."""
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def single_header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The one value of header ``name`` (lower-case), or None; ``AmbiguousRequest`` when it
    is sent twice or as a comma list (what a proxy makes of two lines)."""
    found: str | None = None
    for k, v in headers:
        if k.lower() != name:
            continue
        if found is not None or b"," in v:
            label = name.decode("latin-1")
            raise AmbiguousRequest(f"header {label} must be sent once, with one value",
                                   reason=f"duplicate_header:{label}")
        found = v.decode("latin-1")
    return found


def list_header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """All lines of a list-valued header combined in order (RFC 9110 5.3), or None."""
    lines = [v.decode("latin-1") for k, v in headers if k.lower() == name]
    return ", ".join(lines) if lines else None


def cookie_values(headers: list[tuple[bytes, bytes]], name: str) -> list[str]:
    """Every value of cookie ``name``, across all Cookie headers (exact name match; no
    Unicode trimming, so a ``U+2000__Host-x`` lookalike never counts as ``__Host-x``)."""
    found = []
    for k, v in headers:
        if k.lower() != b"cookie":
            continue
        for part in v.decode("latin-1").split(";"):
            cname, sep, cval = part.strip(" \t").partition("=")
            if sep and cname == name:
                found.append(cval.strip(" \t").strip('"'))
    return found


def single_cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    """The one value of cookie ``name``, or None; ``AmbiguousRequest`` when it is sent twice
    (in one Cookie header or in two): a tossed or injected cookie, never "first wins"."""
    values = cookie_values(headers, name)
    if len(values) > 1:
        raise AmbiguousRequest(f"cookie {name} must be sent once; clear this site's cookies",
                               reason=f"duplicate_cookie:{name}")
    return values[0] if values else None


def request_info(scope: dict[str, object], proxies: TrustedProxies) -> RequestInfo:
    """Bind the request's log context and return its facts. A trusted proxy's ambiguous
    X-Forwarded-For or X-Request-Id raises ``AmbiguousRequest`` after the context is bound
    (with the peer's address and a fresh request id), so the refusal is still logged."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]  # type: ignore[assignment]
    client = scope.get("client") or ("", 0)
    peer = str(client[0]) if isinstance(client, tuple | list) else ""
    ip, rid, problem = peer, "", None
    if proxies.trusts(peer):
        try:
            ip = proxies.client_ip(peer, list_header(headers, b"x-forwarded-for"))
            inbound = single_header(headers, b"x-request-id")
            rid = inbound if inbound and _SAFE_REQUEST_ID.match(inbound) else ""
        except AmbiguousRequest as exc:
            ip, rid, problem = peer, "", exc
    rid = rid or secrets.token_hex(12)
    ua = (header(headers, b"user-agent") or "")[:256]
    info = RequestInfo(rid, ip, ua, str(scope.get("method", "")), str(scope.get("path", ""))[:512])
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid, client_ip=ip, user_agent=ua,
                                           method=info.method, path=info.path)
    if problem is not None:
        raise problem
    return info


def csrf_failure(method: str, headers: list[tuple[bytes, bytes]], public_origin: str) -> str | None:
    """Duende-style static header check plus an Origin check for unsafe methods.

    Requiring a custom header forces a CORS preflight for cross-origin callers, which the
    gateway never approves; the Origin check is defence in depth. Returns a reason or None;
    a duplicated X-CSRF or Origin raises ``AmbiguousRequest``.
    """
    if single_header(headers, b"x-csrf") != "1":
        return "csrf_header_missing"
    if method not in ("GET", "HEAD", "OPTIONS"):
        origin = single_header(headers, b"origin")
        if origin is not None and origin != public_origin:
            return "origin_mismatch"
    return None
