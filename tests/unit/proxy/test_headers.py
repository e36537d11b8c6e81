"""Unit tests for the proxy header policy (request and response side, tracing)."""

from __future__ import annotations

import itertools
import re

import pytest

from bffgate.proxy.headers import (
    HOP_BY_HOP,
    declared_length,
    downstream_response_headers,
    incoming_traceparent,
    new_traceparent,
    upstream_request_headers,
)

TRACEPARENT = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
VALID_TP = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
GATEWAY = {
    b"authorization": b"Bearer gateway-token",
    b"x-forwarded-for": b"203.0.113.7",
    b"x-forwarded-proto": b"https",
    b"x-forwarded-host": b"app.example.com",
    b"x-request-id": b"req-gw-1",
}
EVIL = b"browser-supplied"

# Headers a browser must never get through to an upstream.
DROPPED_REQUEST_HEADERS = [
    "Cookie", "Cookie2", "Authorization", "Proxy-Authorization", "X-Forwarded-For",
    "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "X-Forwarded-Prefix",
    "Forwarded", "X-Real-IP", "X-Client-IP", "True-Client-IP", "DPoP", "X-Request-Id",
    "Traceparent", "Tracestate", "X-CSRF", "X-Forwarded-User", "X-Forwarded-Email",
    "X-Forwarded-Access-Token", "X-Auth-Request-User", "X-Id-Token", "X-Access-Token",
    "X-Original-URL", "X-Rewrite-URL", "Remote-User", "Host",
    # hop-by-hop
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
    "Upgrade",
]


def _variants(name: str) -> list[str]:
    """Every spelling a server might alias to ``name``: case x '-'/'_'."""
    cases = {name, name.lower(), name.upper(), name.title(), name.swapcase()}
    return sorted({c.replace("-", sep) for c, sep in itertools.product(cases, ("-", "_"))})


REQUEST_MATRIX = [
    pytest.param(spelling.encode(), id=spelling)
    for name in DROPPED_REQUEST_HEADERS
    for spelling in _variants(name)
]


def _norm(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-")


def _forward(headers: list[tuple[bytes, bytes]], *, bearer: str | None = "gateway-token",
             traceparent: bytes | None = None) -> list[tuple[bytes, bytes]]:
    auth = [(b"authorization", b"Bearer " + bearer.encode())] if bearer is not None else []
    return upstream_request_headers(
        headers, auth_headers=auth, client_ip="203.0.113.7", proto="https",
        host="app.example.com", request_id="req-gw-1", traceparent=traceparent)


def _values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [v for k, v in headers if _norm(k) == name]


@pytest.mark.parametrize("name", REQUEST_MATRIX)
def test_browser_header_never_reaches_upstream(name: bytes) -> None:
    """No spelling of an identity, routing or hop-by-hop header is forwarded."""
    out = _forward([(name, EVIL), (b"accept", b"application/json")])
    assert all(v != EVIL for _, v in out), out
    assert (b"accept", b"application/json") in out


@pytest.mark.parametrize("name", REQUEST_MATRIX)
def test_gateway_values_appear_exactly_once(name: bytes) -> None:
    """Whatever the browser sent, each header the gateway sets is present once, with its value."""
    out = _forward([(name, EVIL), (name, EVIL)], traceparent=VALID_TP)
    for gw_name, gw_value in GATEWAY.items():
        assert _values(out, gw_name) == [gw_value]
    assert _values(out, b"traceparent") == [VALID_TP]


@pytest.mark.parametrize(
    "named",
    [pytest.param(spelling, id=spelling) for spelling in _variants("X-Internal-Secret")],
)
def test_headers_named_in_connection_are_dropped(named: str) -> None:
    """A header listed in Connection (any spelling on either side) is hop-by-hop: dropped."""
    for header_spelling in _variants("X-Internal-Secret"):
        headers = [
            (b"Connection", b"keep-alive, " + named.encode()),
            (header_spelling.encode(), EVIL),
            (b"x-kept", b"yes"),
        ]
        out = _forward(headers)
        assert all(v != EVIL for _, v in out), (named, header_spelling)
        assert (b"x-kept", b"yes") in out


def test_connection_may_not_name_the_gateways_own_headers_away() -> None:
    """Connection: authorization removes the browser's, never the gateway's Authorization."""
    out = _forward([(b"connection", b"Authorization, X-Forwarded-For, traceparent")])
    assert _values(out, b"authorization") == [b"Bearer gateway-token"]
    assert _values(out, b"x-forwarded-for") == [b"203.0.113.7"]
    assert len(_values(out, b"traceparent")) == 1


def test_no_bearer_means_no_authorization_header() -> None:
    """On a token=none route the browser's Authorization is still dropped, none is added."""
    out = _forward([(b"Authorization", b"Basic dXNlcjpwYXNz")], bearer=None)
    assert _values(out, b"authorization") == []


def test_ordinary_headers_pass_through_in_order() -> None:
    """Content headers and custom application headers are forwarded untouched."""
    headers = [
        (b"Accept", b"application/json"),
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"12"),
        (b"If-None-Match", b'"etag"'),
        (b"X-App-Version", b"1.2.3"),
        (b"User-Agent", b"Mozilla/5.0"),
    ]
    out = _forward(headers)
    assert out[: len(headers)] == headers


def test_hop_by_hop_set_is_complete() -> None:
    """RFC 9110 7.6.1's connection-specific fields are all in HOP_BY_HOP."""
    for name in (b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding",
                 b"upgrade", b"trailer", b"proxy-authenticate", b"proxy-authorization"):
        assert name in HOP_BY_HOP


# --- tracing ------------------------------------------------------------------------------


def test_valid_traceparent_is_forwarded_as_given() -> None:
    """A valid traceparent passed in is the one sent upstream (once)."""
    assert _values(_forward([], traceparent=VALID_TP), b"traceparent") == [VALID_TP]


def test_incoming_traceparent_keeps_the_trace_id_with_a_new_span() -> None:
    """Our hop continues the browser's trace: same trace id and flags, new parent id."""
    got = incoming_traceparent([(b"TraceParent", VALID_TP)])
    assert got is not None
    assert TRACEPARENT.fullmatch(got)
    assert got[:36] == VALID_TP[:36]
    assert got[-3:] == VALID_TP[-3:]
    assert got[36:52] != VALID_TP[36:52]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage", id="garbage"),
        pytest.param(VALID_TP.upper(), id="upper-case-hex"),
        pytest.param(b"01" + VALID_TP[2:], id="unknown-version"),
        pytest.param(b"ff" + VALID_TP[2:], id="version-ff"),
        pytest.param(VALID_TP + b"-extra", id="trailing-data"),
        pytest.param(VALID_TP[:-1], id="short"),
        pytest.param(b"00-" + b"0" * 32 + VALID_TP[35:], id="all-zero-trace-id"),
        pytest.param(VALID_TP[:36] + b"0" * 16 + VALID_TP[52:], id="all-zero-parent-id"),
        pytest.param(VALID_TP + b"\n", id="trailing-newline"),
    ],
)
def test_invalid_traceparent_is_replaced(value: bytes) -> None:
    """An invalid traceparent is neither continued nor forwarded; a new one is generated."""
    assert incoming_traceparent([(b"traceparent", value)]) is None
    out = _values(_forward([(b"traceparent", value)], traceparent=value), b"traceparent")
    assert len(out) == 1
    assert out[0] != value
    assert TRACEPARENT.fullmatch(out[0])


def test_missing_traceparent_is_generated() -> None:
    """Without an incoming trace, the gateway starts one (sampled flag set)."""
    out = _values(_forward([]), b"traceparent")
    assert len(out) == 1
    assert TRACEPARENT.fullmatch(out[0])


def test_new_traceparents_are_random() -> None:
    """Generated trace ids never repeat and are never all zeros."""
    values = {new_traceparent() for _ in range(200)}
    assert len(values) == 200
    assert all(v[3:35] != b"0" * 32 for v in values)


# --- response side ------------------------------------------------------------------------

RESPONSE_DROPPED = ["Set-Cookie", "Set-Cookie2", "Connection", "Keep-Alive", "Transfer-Encoding",
                    "Upgrade", "Trailer", "TE", "Proxy-Authenticate", "Proxy-Connection",
                    "X-Request-Id"]


@pytest.mark.parametrize(
    "name",
    [pytest.param(s.encode(), id=s) for n in RESPONSE_DROPPED for s in _variants(n)],
)
def test_response_drops_set_cookie_and_hop_by_hop(name: bytes) -> None:
    """An upstream can't set cookies on the gateway's origin or pass hop-by-hop headers."""
    out = downstream_response_headers([(name, b"upstream-value"), (b"content-type", b"text/x")],
                                      request_id="req-gw-1")
    assert all(v != b"upstream-value" for _, v in out)
    assert (b"content-type", b"text/x") in out


def test_response_drops_headers_named_in_connection() -> None:
    """A response header listed in the upstream's Connection header is dropped."""
    out = downstream_response_headers(
        [(b"Connection", b"X-Upstream-Internal"), (b"x_upstream_internal", b"secret"),
         (b"etag", b'"1"')], request_id="r")
    assert all(v != b"secret" for _, v in out)
    assert (b"etag", b'"1"') in out


@pytest.mark.parametrize(
    "upstream_cache",
    [
        pytest.param(None, id="none-sent"),
        pytest.param(b"max-age=60", id="max-age"),
        pytest.param(b"private, max-age=0", id="private"),
        pytest.param(b"no-cache", id="no-cache"),
    ],
)
@pytest.mark.parametrize("spelling", [b"Cache-Control", b"cache-control", b"CACHE-CONTROL"])
def test_no_store_is_added_only_when_upstream_chose_nothing(
    upstream_cache: bytes | None, spelling: bytes
) -> None:
    """Cache-Control: no-store is the default; an upstream's own Cache-Control is kept as is."""
    headers = [] if upstream_cache is None else [(spelling, upstream_cache)]
    out = _values(downstream_response_headers(headers, request_id="r"), b"cache-control")
    assert out == ([b"no-store"] if upstream_cache is None else [upstream_cache])


def test_response_carries_the_gateway_request_id_once_and_varies_on_cookie() -> None:
    """x-request-id is the gateway's (once, even if the upstream echoed one); Vary: Cookie."""
    out = downstream_response_headers(
        [(b"X-Request-Id", b"req-gw-1"), (b"content-type", b"application/json")],
        request_id="req-gw-1")
    assert _values(out, b"x-request-id") == [b"req-gw-1"]
    assert b"Cookie" in _values(out, b"vary")


def test_response_passes_ordinary_headers_through() -> None:
    """Content, caching validators and CORS-neutral app headers reach the browser unchanged."""
    headers = [(b"content-type", b"application/json"), (b"etag", b'"abc"'),
               (b"content-length", b"2"), (b"x-app", b"1"), (b"location", b"/api/orders/1")]
    out = downstream_response_headers(headers, request_id="r")
    assert out[: len(headers)] == headers


@pytest.mark.parametrize(("headers", "expected"), [
    ([], None),
    ([(b"content-type", b"text/plain")], None),
    ([(b"Content-Length", b"0")], 0),
    ([(b"content-length", b"1234")], 1234),
])
def test_declared_length(headers, expected) -> None:
    assert declared_length(headers) == expected


@pytest.mark.parametrize("headers", [
    pytest.param([(b"content-length", b"5"), (b"content-length", b"5")], id="twice"),
    pytest.param([(b"content-length", b"5, 5")], id="list"),
    pytest.param([(b"content-length", b"+5")], id="signed"),
    pytest.param([(b"content-length", b" 5")], id="padded"),
    pytest.param([(b"content-length", b"")], id="empty"),
    pytest.param([(b"content-length", b"9" * 19)], id="huge"),
])
def test_declared_length_refuses_what_it_cannot_verify(headers) -> None:
    """The forwarder counts the body against this number; an ambiguous one is never used."""
    with pytest.raises(ValueError, match="Content-Length"):
        declared_length(headers)


def test_framing_headers_never_forwarded_but_content_length_is() -> None:
    """Transfer-Encoding and Upgrade describe the client's hop only; Content-Length is sent
    on, and the forwarder verifies it against the bytes it sends."""
    out = upstream_request_headers(
        [(b"content-length", b"5"), (b"transfer-encoding", b"chunked"), (b"upgrade", b"foo"),
         (b"te", b"trailers")],
        auth_headers=[], client_ip="203.0.113.7", proto="https", host="app.example.com",
        request_id="req-gw-1", traceparent=None)
    names = [k for k, _ in out]
    assert (b"content-length", b"5") in out
    assert not {b"transfer-encoding", b"upgrade", b"te"} & set(names)
