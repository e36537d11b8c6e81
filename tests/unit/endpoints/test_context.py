"""Unit tests for the edge's request reading (bffgate.edge): the duplicate rule
(single_header / single_cookie), cookie parsing, the CSRF check, the X-Forwarded-For walk of
server.trusted_proxies, and the request context."""

from __future__ import annotations

import pytest
import structlog

from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.csrf import csrf_failure
from bffgate.edge.fields import cookie_values, list_header, single_cookie, single_header
from bffgate.edge.request_context import bind_log_context, read_request
from bffgate.errors import AmbiguousRequest, BadRequest

ORIGIN = "https://app.example.com"
H = list[tuple[bytes, bytes]]


def _h(*pairs: tuple[str, str]) -> H:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


# --- single_header: one place decides that a duplicate is a 400, never a guess ---------

@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], None, id="absent"),
        pytest.param([("x-csrf", "1")], "1", id="once"),
        pytest.param([("x-csrf", "")], "", id="empty-value"),
        pytest.param([("X-CSRF", "1")], "1", id="name-case-insensitive"),
        pytest.param([("x-other", "1"), ("x-csrf", "1")], "1", id="among-others"),
    ],
)
def test_single_header_returns_the_one_value(headers: list[tuple[str, str]],
                                             expected: str | None) -> None:
    assert single_header(_h(*headers), b"x-csrf") == expected


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("x-csrf", "1"), ("x-csrf", "2")], id="two-lines-different"),
        pytest.param([("x-csrf", "1"), ("x-csrf", "1")], id="two-lines-same"),
        pytest.param([("x-csrf", "1"), ("x-a", "b"), ("x-csrf", "1")], id="apart"),
        pytest.param([("x-csrf", "1, 2")], id="comma-list"),
        pytest.param([("x-csrf", "1,1")], id="comma-list-same"),
    ],
)
def test_single_header_refuses_duplicates_and_lists(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(AmbiguousRequest) as info:
        single_header(_h(*headers), b"x-csrf")
    assert info.value.reason == "duplicate_header:x-csrf"
    assert info.value.status == 400 and isinstance(info.value, BadRequest)
    assert "x-csrf" in info.value.detail
    assert "1" not in info.value.detail.replace("x-csrf", "")  # no value echoed


def test_list_header_combines_lines_in_order() -> None:
    """RFC 9110 5.3: several lines of a list header are one comma-separated list."""
    headers = _h(("x-forwarded-for", "1.1.1.1, 2.2.2.2"), ("x-a", "b"),
                 ("x-forwarded-for", "3.3.3.3"))
    assert list_header(headers, b"x-forwarded-for") == "1.1.1.1, 2.2.2.2, 3.3.3.3"
    assert list_header([], b"x-forwarded-for") is None


# --- cookies -----------------------------------------------------------------------------

NAME = "__Host-bffgate"


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        pytest.param([], [], id="no-cookie-header"),
        pytest.param(["a=1; __Host-bffgate=v1.x; b=2"], ["v1.x"], id="among-others"),
        pytest.param(["__Host-bffgate=v1.x"], ["v1.x"], id="alone"),
        pytest.param(['__Host-bffgate="v1.x"'], ["v1.x"], id="quoted"),
        pytest.param(["__Host-bffgate=a=b"], ["a=b"], id="equals-in-value"),
        pytest.param(["__host-bffgate=v1.x"], [], id="name-case-sensitive"),
        pytest.param(["\u2000__Host-bffgate=v1.x"], [], id="unicode-space-lookalike"),
        pytest.param(["__Host-bffgatex=v1.x"], [], id="longer-name"),
        pytest.param(["__Host-bffgate"], [], id="no-equals"),
        pytest.param(["__Host-bffgate=1; __Host-bffgate=2"], ["1", "2"], id="twice-one-header"),
        pytest.param(["__Host-bffgate=1", "__Host-bffgate=2"], ["1", "2"], id="twice-two-headers"),
        pytest.param(["\t__Host-bffgate = v1.x "], [], id="space-before-equals-is-another-name"),
    ],
)
def test_cookie_values(cookies: list[str], expected: list[str]) -> None:
    headers = [(b"cookie", c.encode("utf-8")) for c in cookies]
    assert cookie_values(headers, NAME) == expected


@pytest.mark.parametrize(
    "cookies",
    [
        pytest.param(["__Host-bffgate=1; __Host-bffgate=2"], id="one-header"),
        pytest.param(["__Host-bffgate=1", "__Host-bffgate=2"], id="two-headers"),
        pytest.param(["__Host-bffgate=1; a=b; __Host-bffgate=1"], id="same-value-twice"),
        pytest.param(["a=1; __Host-bffgate=1", "b=2; __Host-bffgate="], id="second-empty"),
    ],
)
def test_single_cookie_refuses_a_second_copy(cookies: list[str]) -> None:
    """Two session cookies (tossed or injected) are a 400, never 'first wins'."""
    headers = [(b"cookie", c.encode("latin-1")) for c in cookies]
    with pytest.raises(AmbiguousRequest) as info:
        single_cookie(headers, NAME)
    assert info.value.reason == f"duplicate_cookie:{NAME}"
    assert NAME in info.value.detail


def test_single_cookie_one_or_none() -> None:
    assert single_cookie([(b"cookie", b"a=1; __Host-bffgate=v")], NAME) == "v"
    assert single_cookie([(b"cookie", b"a=1")], NAME) is None
    # another cookie name twice is not ours to judge
    assert single_cookie([(b"cookie", b"a=1; a=2; __Host-bffgate=v")], NAME) == "v"


# --- CSRF check --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        pytest.param("GET", [("x-csrf", "1")], None, id="get-ok"),
        pytest.param("GET", [], "csrf_header_missing", id="missing"),
        pytest.param("GET", [("x-csrf", "0")], "csrf_header_missing", id="zero"),
        pytest.param("GET", [("x-csrf", "")], "csrf_header_missing", id="empty"),
        pytest.param("GET", [("x-csrf", " 1")], "csrf_header_missing", id="padded"),
        pytest.param("POST", [("x-csrf", "1")], None, id="post-no-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", ORIGIN)], None, id="post-same-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", "https://evil.example")],
                     "origin_mismatch", id="post-foreign-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", "null")], "origin_mismatch",
                     id="post-null-origin"),
        pytest.param("DELETE", [("x-csrf", "1"), ("origin", ORIGIN + ".evil.example")],
                     "origin_mismatch", id="origin-suffix"),
        pytest.param("GET", [("x-csrf", "1"), ("origin", "https://evil.example")], None,
                     id="safe-method-origin-not-checked"),
    ],
)
def test_csrf_failure(method: str, headers: list[tuple[str, str]], expected: str | None) -> None:
    assert csrf_failure(method, _h(*headers), ORIGIN) == expected


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([("x-csrf", "1"), ("x-csrf", "2")], "duplicate_header:x-csrf",
                     id="csrf-twice"),
        pytest.param([("x-csrf", "2"), ("x-csrf", "1")], "duplicate_header:x-csrf",
                     id="csrf-twice-valid-last"),
        pytest.param([("x-csrf", "1"), ("origin", ORIGIN), ("origin", "https://evil.example")],
                     "duplicate_header:origin", id="origin-twice"),
        pytest.param([("x-csrf", "1"), ("origin", f"{ORIGIN}, https://evil.example")],
                     "duplicate_header:origin", id="origin-list"),
    ],
)
def test_csrf_check_refuses_duplicates(headers: list[tuple[str, str]], reason: str) -> None:
    """Issue 7, finding 3: X-CSRF sent as 1 and 2 passed before; now a typed 400."""
    with pytest.raises(AmbiguousRequest) as info:
        csrf_failure("POST", _h(*headers), ORIGIN)
    assert info.value.reason == reason


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


# --- read_request: combining XFF lines, duplicate X-Request-Id ----------------------------

def _scope(peer: str, *headers: tuple[str, str]) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": "/api/x", "client": (peer, 1234),
            "headers": _h(*headers)}


def test_read_request_combines_xff_lines_in_order() -> None:
    """Several X-Forwarded-For lines from a trusted proxy are one list, in order."""
    info = read_request(_scope("10.0.0.1", ("x-forwarded-for", "6.6.6.6"),
                               ("x-forwarded-for", "1.2.3.4, 10.9.9.9")), PROXIES)
    assert info.client_ip == "1.2.3.4"


def test_read_request_trusted_request_id_once() -> None:
    rid = "abcdef0123456789"
    info = read_request(_scope("10.0.0.1", ("x-request-id", rid)), PROXIES)
    assert info.request_id == rid
    untrusted = read_request(_scope("203.0.113.9", ("x-request-id", rid)), PROXIES)
    assert untrusted.request_id != rid
    # from an untrusted peer a duplicate is ignored along with the header itself
    read_request(_scope("203.0.113.9", ("x-request-id", rid), ("x-request-id", rid + "x")),
                 PROXIES)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([("x-request-id", "abcdef0123456789"), ("x-request-id", "0123456789abcdef")],
                     "duplicate_header:x-request-id", id="request-id-twice"),
        pytest.param([("x-forwarded-for", "unknown")], "invalid_header:x-forwarded-for",
                     id="xff-unknown"),
    ],
)
def test_read_request_refuses_ambiguous_trusted_headers(headers: list[tuple[str, str]],
                                                        reason: str) -> None:
    """The refusal is kept, not raised: the context still has the peer's address and a
    fresh id, so the edge can log and answer it under that request id."""
    info = read_request(_scope("10.0.0.1", *headers), PROXIES)
    assert info.refusal is not None and isinstance(info.refusal, AmbiguousRequest)
    assert info.refusal.reason == reason
    assert info.client_ip == "10.0.0.1" and len(info.request_id) == 24
    bind_log_context(info)
    bound = structlog.contextvars.get_contextvars()
    assert bound["client_ip"] == "10.0.0.1"
    assert bound["request_id"] == info.request_id
