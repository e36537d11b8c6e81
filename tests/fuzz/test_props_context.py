"""Property tests: CSRF check, cookie parsing and the X-Forwarded-For walk, for any input."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.csrf import csrf_failure
from bffgate.edge.fields import cookie_values
from bffgate.errors import BadRequest

pytestmark = pytest.mark.fuzz

ORIGIN = "https://app.example"
METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "get", "post"]
values = st.one_of(st.sampled_from(["1", "0", "", " 1", "1 ", "1,1", "1, 2", "true", ORIGIN,
                                    ORIGIN + "/", "null", "https://evil.example",
                                    ORIGIN + ".evil.example", ORIGIN.upper(), "same-origin",
                                    "cross-site", "same-site", "none", "Same-Origin",
                                    "text/event-stream", "text/html, text/event-stream"]),
                   st.text(st.characters(max_codepoint=0xFF), max_size=12))
names = st.sampled_from([b"x-csrf", b"X-CSRF", b"X-Csrf", b"origin", b"Origin", b"x_csrf",
                         b"x-csrf2", b"cookie", b"referer", b"sec-fetch-site",
                         b"Sec-Fetch-Site", b"accept"])


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k.lower() == name]


def _csrf(method: str, headers: list[tuple[bytes, bytes]]) -> str | None:
    try:
        return csrf_failure(method, headers, ORIGIN)
    except BadRequest:  # a duplicate refused outright (400) is fine; anything else is not
        return "refused"


def _check_csrf_invariant(method: str, headers: list[tuple[bytes, bytes]]) -> None:
    if _csrf(method, headers) is not None:
        return
    if _values(headers, b"x-csrf") != ["1"]:
        # Only a same-origin EventSource read passes without X-CSRF: the browser's own
        # Sec-Fetch-Site (a forbidden header), exactly once; cross-site never passes.
        assert method in ("GET", "HEAD"), headers
        assert _values(headers, b"sec-fetch-site") == ["same-origin"], headers
        assert "text/event-stream" in ",".join(_values(headers, b"accept")).lower(), headers
        return
    if method not in ("GET", "HEAD", "OPTIONS"):
        assert _values(headers, b"origin") in ([], [ORIGIN]), headers


single_headers = st.lists(st.tuples(names, values.map(lambda s: s.encode("latin-1"))),
                          max_size=5, unique_by=lambda h: h[0].lower())


@given(st.sampled_from(METHODS), single_headers)
@example("GET", [(b"accept", b"text/event-stream"), (b"sec-fetch-site", b"same-origin")])
@example("GET", [(b"accept", b"text/event-stream"), (b"sec-fetch-site", b"cross-site")])
def test_csrf_passes_only_the_exact_header_and_own_origin(
        method: str, headers: list[tuple[bytes, bytes]]) -> None:
    _check_csrf_invariant(method, headers)


@given(st.sampled_from(METHODS),
       st.lists(st.tuples(names, values.map(lambda s: s.encode("latin-1"))), max_size=6))
@example("GET", [(b"X-CSRF", b"1"), (b"X-CSRF", b"2")])
@example("POST", [(b"X-CSRF", b"1"), (b"Origin", ORIGIN.encode()),
                  (b"Origin", b"https://evil.example")])
def test_csrf_with_duplicates_never_passes_a_guess(
        method: str, headers: list[tuple[bytes, bytes]]) -> None:
    _check_csrf_invariant(method, headers)


COOKIE = "__Host-bffgate"
cookie_names = st.sampled_from([COOKIE, COOKIE.lower(), "\u2000" + COOKIE, "$Version", "",
                                "bffgate", COOKIE + "-login", " " + COOKIE, "\t" + COOKIE])
cookie_vals = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                    exclude_characters=';"'), max_size=20)


@given(st.lists(st.tuples(cookie_names, cookie_vals), max_size=6), st.integers(1, 3))
def test_cookie_values_finds_exactly_the_named_values(pairs: list[tuple[str, str]],
                                                      split: int) -> None:
    # The same pairs spread over one to three Cookie headers.
    chunks = [pairs[i::split] for i in range(split)]
    headers = [(b"cookie", "; ".join(f"{n}={v}" for n, v in chunk).encode("utf-8"))
               for chunk in chunks if chunk]
    expected = [v for chunk in chunks for n, v in chunk if n.strip(" \t") == COOKIE]
    assert cookie_values(headers, COOKIE) == expected


@given(st.lists(st.tuples(st.sampled_from([b"cookie", b"Cookie", b"cookie2"]),
                          st.binary(max_size=80)), max_size=4))
def test_cookie_values_never_raises(headers: list[tuple[bytes, bytes]]) -> None:
    for value in cookie_values(headers, COOKIE):
        assert ";" not in value


PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8", "127.0.0.1/32"])
hops = st.one_of(
    st.sampled_from(["10.1.2.3", "10.0.0.1", "203.0.113.9", "198.51.100.1", "fd00::1",
                     "2001:db8::1", "unknown", "1.2.3.4:80", "[2001:db8::1]", "", " ",
                     "::ffff:10.0.0.1", "010.1.2.3", "fe80::1%eth0", "2001:db8::1%x y",
                     "10.1.2.3/8", "_hidden", "203.0.113.9 "]),
    st.ip_addresses().map(str),
    st.text(max_size=15))
peers = st.sampled_from(["10.9.9.9", "127.0.0.1", "203.0.113.50", "fd00::9", "not-an-ip", ""])


def _walk(peer: str, xff: str | None) -> str:
    try:
        return PROXIES.client_ip(peer, xff)
    except BadRequest:  # an XFF from a trusted proxy that cannot be read: refused, fine
        return "refused"


@given(peers, st.one_of(st.none(), st.lists(hops, max_size=5).map(", ".join)))
def test_xff_walk_returns_the_peer_or_an_address(peer: str, xff: str | None) -> None:
    ip = _walk(peer, xff)
    if not PROXIES.trusts(peer):
        assert ip == peer  # an untrusted peer's X-Forwarded-For is ignored
        return
    if ip in (peer, "refused"):
        return
    assert str(ipaddress.ip_address(ip)) == ip, (peer, xff, ip)  # canonical text
    assert ip in [h.strip() for h in (xff or "").split(",")] or \
        ip in [str(ipaddress.ip_address(h.strip())) for h in (xff or "").split(",")
               if _is_ip(h.strip())]
    # The client is the first untrusted hop from the right, or (all trusted) the leftmost.
    listed = [h.strip() for h in (xff or "").split(",") if h.strip()]
    untrusted = [h for h in listed if not PROXIES.trusts(h)]
    if untrusted:
        assert ip == str(ipaddress.ip_address(untrusted[-1]))


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
