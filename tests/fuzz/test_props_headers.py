"""Property tests: the proxy's header policy, for any header list a client can send."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.proxy.headers import (
    HOP_BY_HOP,
    downstream_response_headers,
    incoming_traceparent,
    upstream_request_headers,
)

pytestmark = pytest.mark.fuzz

CLAIMS = ["forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
          "x-forwarded-port", "x-forwarded-prefix", "x-real-ip", "cookie", "cookie2",
          "authorization", "x-csrf", "x-request-id", "traceparent", "dpop", "host",
          "x-forwarded-user", "x-forwarded-access-token", "proxy-authorization"]
HOPS = [h.decode() for h in HOP_BY_HOP]
ORDINARY = ["accept", "content-type", "x-app", "user-agent", "content-length", "if-match"]


@st.composite
def header_name(draw: st.DrawFn) -> bytes:
    """A name from the lists above in any case and with '-' as '_' (or not), or random."""
    base = draw(st.sampled_from(CLAIMS + HOPS + ORDINARY + ["x-forwarded-anything"]))
    rnd = random.Random(draw(st.integers(0, 2**32)))
    name = "".join(c.upper() if rnd.random() < 0.5 else c for c in base)
    if draw(st.booleans()):
        name = name.replace("-", "_")
    return draw(st.one_of(st.just(name.encode()),
                          st.binary(min_size=1, max_size=12)))


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    headers = draw(st.lists(st.tuples(header_name(), st.binary(max_size=40)), max_size=12))
    if draw(st.booleans()):  # a Connection header naming some of them
        named = draw(st.lists(header_name(), max_size=3))
        headers.append((b"Connection", b", ".join(n for n in named if b"," not in n)))
    return headers


def _norm(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-")


@given(header_lists(), st.one_of(st.none(), st.just("access.token.value")))
def test_upstream_request_headers_policy(headers: list[tuple[bytes, bytes]],
                                         bearer: str | None) -> None:
    auth = [(b"authorization", b"Bearer " + bearer.encode())] if bearer is not None else []
    out = upstream_request_headers(headers, auth_headers=auth, client_ip="203.0.113.7",
                                   proto="https", host="app.example", request_id="rid-12345678",
                                   traceparent=incoming_traceparent(headers))
    names = [_norm(k) for k, _ in out]
    assert not set(names) & HOP_BY_HOP
    assert b"cookie" not in names and b"cookie2" not in names and b"host" not in names
    auth = [v for k, v in out if _norm(k) == b"authorization"]
    if bearer is None:
        assert auth == []
    else:
        assert auth == [b"Bearer " + bearer.encode()]  # exactly one, the gateway's own
    forwarded = [(k, v) for k, v in out
                 if _norm(k) == b"forwarded" or _norm(k).startswith(b"x-forwarded-")]
    assert sorted(forwarded) == sorted([(b"x-forwarded-for", b"203.0.113.7"),
                                        (b"x-forwarded-proto", b"https"),
                                        (b"x-forwarded-host", b"app.example")])
    assert names.count(b"x-request-id") == 1 and names.count(b"traceparent") == 1
    assert b"x-csrf" not in names and b"x-real-ip" not in names and b"dpop" not in names
    connection_named = {_norm(t.strip()) for k, v in headers if _norm(k) == b"connection"
                        for t in v.split(b",") if t.strip()}
    gateway_added = {b"authorization", b"x-forwarded-for", b"x-forwarded-proto",
                     b"x-forwarded-host", b"x-request-id", b"traceparent"}
    assert not (set(names) - gateway_added) & connection_named
    # Whatever is not dropped is passed on untouched and in order.
    kept = [(k, v) for k, v in headers if _norm(k) not in gateway_added]
    assert [h for h in out if _norm(h[0]) not in gateway_added] == \
        [h for h in kept if h in out]


@given(header_lists())
def test_downstream_response_headers_policy(headers: list[tuple[bytes, bytes]]) -> None:
    out = downstream_response_headers(headers, request_id="rid-12345678")
    names = [_norm(k) for k, _ in out]
    assert not set(names) & HOP_BY_HOP
    assert b"set-cookie" not in names and b"set-cookie2" not in names
    assert names.count(b"x-request-id") == 1
    assert b"cache-control" in names


@given(st.lists(st.tuples(st.sampled_from([b"traceparent", b"TraceParent", b"x"]),
                          st.one_of(st.binary(max_size=60),
                                    st.from_regex(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\n?",
                                                  fullmatch=True))), max_size=3))
def test_incoming_traceparent_is_valid_or_none(headers: list[tuple[bytes, bytes]]) -> None:
    tp = incoming_traceparent(headers)
    if tp is not None:
        assert len(tp) == 55 and tp.startswith(b"00-") and b"\n" not in tp
