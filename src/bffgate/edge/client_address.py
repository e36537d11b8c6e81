"""The client's address: which peers may tell it through X-Forwarded-For (server.trusted_proxies)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

from bffgate.errors import AmbiguousRequest


class TrustedProxies:
    """Decides which peer may tell us the client's address via X-Forwarded-For."""

    def __init__(self, cidrs: Iterable[str]) -> None:
        self._nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        # a peer address is parsed once, not once per request (bounded: one per peer seen)
        self._trusted = functools.lru_cache(maxsize=4096)(self._trusts)

    def trusts(self, ip: str) -> bool:
        return bool(self._nets) and self._trusted(ip)

    def _trusts(self, ip: str) -> bool:
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
