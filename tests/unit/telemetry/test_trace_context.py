"""Unit tests for bffgate.telemetry.context: which incoming traceparent the gateway continues
(W3C Trace Context; trusted only from server.trusted_proxies or the SPA's own origin)."""

from __future__ import annotations

import pytest

from bffgate.telemetry.context import (
    Parent,
    format_traceparent,
    incoming_parent,
    parse_traceparent,
    trusted_parent,
)

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TP = f"00-{TRACE}-{SPAN}-01".encode()
ORIGIN = "https://app.example"
PROXY = "10.0.0.5"


def trusts(ip: str) -> bool:
    return ip == PROXY


@pytest.mark.parametrize("value", [
    pytest.param(f"00-{'0' * 32}-{SPAN}-01", id="zero-trace-id"),
    pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="zero-span-id"),
    pytest.param(f"00-{TRACE.upper()}-{SPAN}-01", id="upper-case"),
    pytest.param(f"01-{TRACE}-{SPAN}-01", id="other-version"),
    pytest.param(f"00-{TRACE}-{SPAN}-01\n", id="trailing-newline"),
    pytest.param(f"00-{TRACE}-{SPAN}", id="no-flags"),
    pytest.param("", id="empty"),
])
def test_malformed_traceparents_are_not_parsed(value: str) -> None:
    assert parse_traceparent(value) is None


def test_a_traceparent_round_trips() -> None:
    parent = parse_traceparent(TP.decode())
    assert parent == Parent(int(TRACE, 16), int(SPAN, 16), 1)
    assert format_traceparent(parent.trace_id, parent.span_id, parent.flags) == TP.decode()


def test_two_traceparent_headers_are_no_context() -> None:
    assert incoming_parent([(b"traceparent", TP), (b"traceparent", TP)]) is None


def test_tracestate_comes_along() -> None:
    parent = incoming_parent([(b"traceparent", TP), (b"tracestate", b"a=1"),
                              (b"tracestate", b"b=2")])
    assert parent is not None and parent.tracestate == "a=1,b=2"


@pytest.mark.parametrize(("peer", "headers", "continued"), [
    pytest.param(PROXY, [], True, id="trusted-proxy"),
    pytest.param("203.0.113.9", [(b"sec-fetch-site", b"same-origin")], True,
                 id="same-origin-fetch-metadata"),
    pytest.param("203.0.113.9", [(b"origin", ORIGIN.encode())], True, id="own-origin"),
    pytest.param("203.0.113.9", [], False, id="browser-without-metadata"),
    pytest.param("203.0.113.9", [(b"sec-fetch-site", b"cross-site")], False, id="cross-site"),
    pytest.param("203.0.113.9", [(b"sec-fetch-site", b"same-site")], False, id="same-site"),
    pytest.param("203.0.113.9", [(b"origin", b"https://evil.example")], False,
                 id="foreign-origin"),
    pytest.param("203.0.113.9", [(b"sec-fetch-site", b"same-origin"),
                                 (b"sec-fetch-site", b"same-origin")], False,
                 id="duplicated-fetch-metadata"),
])
def test_a_traceparent_is_continued_only_when_trusted(
        peer: str, headers: list[tuple[bytes, bytes]], continued: bool) -> None:
    parent, foreign = trusted_parent([(b"traceparent", TP), *headers], peer, trusts=trusts,
                                     public_origin=ORIGIN)
    expected = Parent(int(TRACE, 16), int(SPAN, 16), 1)
    assert (parent, foreign) == ((expected, None) if continued else (None, expected))


def test_no_traceparent_no_parent_no_link() -> None:
    assert trusted_parent([], PROXY, trusts=trusts, public_origin=ORIGIN) == (None, None)
