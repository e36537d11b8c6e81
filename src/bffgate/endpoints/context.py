"""Per-request facts every endpoint needs: request id, client IP, parsed cookies, CSRF."""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import structlog

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
        """Walk X-Forwarded-For right to left through trusted hops only."""
        if not xff or not self.trusts(peer):
            return peer
        hops = [h.strip() for h in xff.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer


def header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def cookie_values(headers: list[tuple[bytes, bytes]], name: str) -> list[str]:
    """Every value of cookie ``name`` (exact name match; no Unicode trimming, so a
    ``U+2000__Host-x`` lookalike never counts as ``__Host-x``)."""
    found = []
    for k, v in headers:
        if k.lower() != b"cookie":
            continue
        for part in v.decode("latin-1").split(";"):
            cname, sep, cval = part.strip(" \t").partition("=")
            if sep and cname == name:
                found.append(cval.strip(" \t").strip('"'))
    return found


def request_info(scope: dict[str, object], proxies: TrustedProxies) -> RequestInfo:
    headers: list[tuple[bytes, bytes]] = scope["headers"]  # type: ignore[assignment]
    client = scope.get("client") or ("", 0)
    peer = str(client[0]) if isinstance(client, tuple | list) else ""
    ip = proxies.client_ip(peer, header(headers, b"x-forwarded-for"))
    inbound = header(headers, b"x-request-id")
    rid = inbound if inbound and proxies.trusts(peer) and _SAFE_REQUEST_ID.match(inbound) \
        else secrets.token_hex(12)
    ua = (header(headers, b"user-agent") or "")[:256]
    info = RequestInfo(rid, ip, ua, str(scope.get("method", "")), str(scope.get("path", ""))[:512])
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid, client_ip=ip, user_agent=ua,
                                           method=info.method, path=info.path)
    return info


def csrf_failure(method: str, headers: list[tuple[bytes, bytes]], public_origin: str) -> str | None:
    """Duende-style static header check plus an Origin check for unsafe methods.

    Requiring a custom header forces a CORS preflight for cross-origin callers, which the
    gateway never approves; the Origin check is defence in depth. Returns a reason or None.
    """
    if header(headers, b"x-csrf") != "1":
        return "csrf_header_missing"
    if method not in ("GET", "HEAD", "OPTIONS"):
        origin = header(headers, b"origin")
        if origin is not None and origin != public_origin:
            return "origin_mismatch"
    return None
