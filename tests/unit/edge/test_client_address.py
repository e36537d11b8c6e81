"""Unit tests for bffgate.edge.client_address: the X-Forwarded-For walk of
server.trusted_proxies."""

from __future__ import annotations

import pytest

from bffgate.edge.client_address import TrustedProxies
from bffgate.errors import AmbiguousRequest

# --- X-Forwarded-For walk ----------------------------------------------------------------

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        pytest.param("203.0.113.9", "1.2.3.4", "203.0.113.9", id="untrusted-peer-ignored"),
        pytest.param("10.0.0.1", None, "10.0.0.1", id="trusted-peer-no-header"),
        pytest.param("10.0.0.1", "", "10.0.0.1", id="trusted-peer-empty-header"),
        pytest.param("10.0.0.1", "1.2.3.4", "1.2.3.4", id="one-hop"),
        pytest.param("10.0.0.1", "6.6.6.6, 1.2.3.4", "1.2.3.4", id="client-forged-left-ignored"),
        pytest.param("10.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.1.1", "1.2.3.4",
                     id="through-two-trusted-hops"),
        pytest.param("10.0.0.1", "garbage, 1.2.3.4", "1.2.3.4", id="garbage-left-of-client"),
        pytest.param("10.0.0.1", "10.2.2.2, 10.1.1.1", "10.2.2.2", id="all-trusted-leftmost"),
        pytest.param("10.0.0.1", " 1.2.3.4 ,, ", "1.2.3.4", id="empty-elements-ignored"),
        pytest.param("10.0.0.1", "2001:db8::1", "2001:db8::1", id="ipv6-client"),
        pytest.param("fd00::1", "2001:db8::1, fd00::2", "2001:db8::1", id="ipv6-proxies"),
        pytest.param("10.0.0.1", "2001:DB8:0::1", "2001:db8::1", id="ipv6-normalised"),
        pytest.param("not-an-ip", "1.2.3.4", "not-an-ip", id="peer-not-an-ip-not-trusted"),
    ],
)
def test_client_ip_walks_trusted_hops(peer: str, xff: str | None, expected: str) -> None:
    assert PROXIES.client_ip(peer, xff) == expected


@pytest.mark.parametrize(
    "xff",
    [
        pytest.param("unknown", id="unknown"),
        pytest.param("1.2.3.4:5678", id="ip-with-port"),
        pytest.param("[2001:db8::1]:443", id="bracketed-ipv6-with-port"),
        pytest.param("1.2.3.4, garbage", id="garbage-where-the-client-should-be"),
        pytest.param("evil.example, 10.1.1.1", id="hostname-behind-trusted-hop"),
    ],
)
def test_client_ip_refuses_what_it_would_have_to_guess(xff: str) -> None:
    with pytest.raises(AmbiguousRequest) as info:
        PROXIES.client_ip("10.0.0.1", xff)
    assert info.value.reason == "invalid_header:x-forwarded-for"


def test_no_trusted_proxies_trusts_nobody() -> None:
    assert TrustedProxies([]).client_ip("10.0.0.1", "1.2.3.4") == "10.0.0.1"
