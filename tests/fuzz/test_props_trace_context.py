"""Property tests: W3C Trace Context as the gateway reads it from a client, whatever bytes it
sends. telemetry/context.py (tracing on: which traceparent a SERVER span continues) and
proxy/headers.py (the traceparent sent upstream) never raise, only ever
continue a valid trace id (version 00, lower-case hex, never all zeros), refuse two
``traceparent`` headers, keep ``tracestate`` bounded, and continue nothing untrusted."""

from __future__ import annotations

import re

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bffgate.proxy.headers import incoming_traceparent, upstream_request_headers
from bffgate.telemetry.context import (
    format_traceparent,
    incoming_parent,
    parse_traceparent,
    trusted_parent,
)

pytestmark = pytest.mark.fuzz

VALID = re.compile(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")  # fullmatch
ZERO_TRACE, ZERO_SPAN = b"0" * 32, b"0" * 16
ORIGIN = "https://app.example"
PROXY = "10.0.0.5"
HEX = "0123456789abcdefABCDEF"
VALID_VALUES = st.builds(lambda t, p, f: f"00-{t:032x}-{p:016x}-{f:02x}".encode(),
                         st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1),
                         st.integers(0, 255))  # well-formed (zero ids included)


@st.composite
def traceparent_values(draw: st.DrawFn) -> bytes:
    """Near misses of a valid traceparent (zeros, upper case, other versions, lengths,
    whitespace, trailing newline, non-ASCII) and arbitrary bytes."""
    ids = st.text(HEX, min_size=0, max_size=34)
    near = st.builds(lambda v, t, s, f, tail: f"{v}-{t}-{s}-{f}{tail}".encode("latin-1"),
                     st.sampled_from(["00", "01", "ff", "0", "000", "FF", " 00"]),
                     st.one_of(ids, st.just("0" * 32)),
                     st.one_of(ids, st.just("0" * 16)),
                     st.text(HEX, max_size=3),
                     st.sampled_from(["", "\n", " ", "\t", "-01", "\x00", "\u00e9", "-"]))
    return draw(st.one_of(near, VALID_VALUES, st.binary(max_size=80)))


@st.composite
def trace_headers(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    names = st.sampled_from([b"traceparent", b"TraceParent", b"tracestate", b"TRACESTATE",
                             b"sec-fetch-site", b"origin", b"x-other"])
    # Long values (past tracestate's 512) as a short piece repeated: cheap to draw.
    values = st.one_of(traceparent_values(), st.binary(max_size=40),
                       st.builds(lambda piece, n: piece * n, st.binary(min_size=1, max_size=12),
                                 st.integers(1, 80)),
                       st.sampled_from([b"same-origin", b"cross-site", ORIGIN.encode(),
                                        b"a=b,c=d", b"k=" + b"v" * 600, b",,,=,"]))
    headers = draw(st.lists(st.tuples(names, values), max_size=6))
    if draw(st.booleans()):  # a well-formed traceparent among them, half of the time
        at = draw(st.integers(0, len(headers)))
        headers.insert(at, (draw(st.sampled_from([b"traceparent", b"Traceparent"])),
                            draw(VALID_VALUES)))
    return headers


def _is_valid(value: bytes) -> bool:
    return (VALID.fullmatch(value) is not None and value[3:35] != ZERO_TRACE
            and value[36:52] != ZERO_SPAN)


@given(st.one_of(traceparent_values().map(lambda b: b.decode("latin-1")), st.text(max_size=80)))
def test_parse_traceparent_accepts_exactly_the_valid_ones(value: str) -> None:
    parent = parse_traceparent(value)
    valid = _is_valid(value.encode("utf-8", "surrogatepass"))
    assert (parent is not None) == valid
    if parent is not None:
        assert parent.trace_id != 0 and parent.span_id != 0 and 0 <= parent.flags <= 0xFF
        assert format_traceparent(parent.trace_id, parent.span_id, parent.flags) == value


@given(trace_headers())
def test_incoming_parent_is_one_valid_traceparent_or_none(
        headers: list[tuple[bytes, bytes]]) -> None:
    parent = incoming_parent(headers)
    sent = [v for k, v in headers if k.lower() == b"traceparent"]
    if parent is None:
        assert len(sent) != 1 or not _is_valid(sent[0].strip(b" \t"))
        return
    assert len(sent) == 1  # two traceparents: neither is continued
    tp = format_traceparent(parent.trace_id, parent.span_id, parent.flags).encode()
    assert _is_valid(tp) and tp == sent[0].strip(b" \t")
    assert len(parent.tracestate) <= 512


@given(trace_headers(), st.sampled_from([PROXY, "203.0.113.9", ""]))
def test_only_a_trusted_request_continues_a_trace(headers: list[tuple[bytes, bytes]],
                                                  peer: str) -> None:
    parent, foreign = trusted_parent(headers, peer, trusts=lambda ip: ip == PROXY,
                                     public_origin=ORIGIN)
    assert parent is None or foreign is None
    site = [v.strip().lower() for k, v in headers if k.lower() == b"sec-fetch-site"]
    origin = [v.decode("latin-1").strip() for k, v in headers if k.lower() == b"origin"]
    trusted = peer == PROXY or site == [b"same-origin"] or origin == [ORIGIN]
    if parent is not None:
        assert trusted
        assert parent.trace_id != 0 and parent.span_id != 0
    if foreign is not None:
        assert not trusted


@given(trace_headers())
def test_remote_context_of_any_parsed_parent_never_raises(
        headers: list[tuple[bytes, bytes]]) -> None:
    pytest.importorskip("opentelemetry.trace")
    from bffgate.telemetry.server import remote_context

    parent = incoming_parent(headers)
    event("parsed" if parent else "none")
    if parent is None:
        return
    ctx = remote_context(parent)  # tracestate from the client, parsed by the SDK
    assert ctx.is_valid and ctx.is_remote
    assert ctx.trace_id == parent.trace_id and ctx.span_id == parent.span_id
    assert len(ctx.trace_state) <= 32  # W3C: at most 32 list members


@given(trace_headers())
def test_proxy_continues_one_valid_trace_id_or_none(headers: list[tuple[bytes, bytes]]) -> None:
    """proxy/headers (tracing on or off; whether it may be continued is the caller's, the
    same is_trusted rule): the one parsed traceparent's trace id and flags, a new span id."""
    tp = incoming_traceparent(headers)
    parent = incoming_parent(headers)
    if parent is None:
        assert tp is None
    else:
        assert tp is not None and VALID.fullmatch(tp) and tp[3:35] != ZERO_TRACE
        assert tp[3:36] == f"{parent.trace_id:032x}-".encode()
        assert tp[52:] == f"-{parent.flags:02x}".encode()
    out = upstream_request_headers(headers, auth_headers=[], client_ip="203.0.113.7",
                                   proto="https", host="app.example", request_id="rid",
                                   traceparent=tp)
    sent = [v for k, v in out if k.lower() == b"traceparent"]
    # Exactly one, valid: the continued one, else a fresh one; never the client's tracestate.
    assert len(sent) == 1 and VALID.fullmatch(sent[0]) and sent[0][3:35] != ZERO_TRACE
    assert tp is None or sent == [tp]
    assert not [k for k, _ in out if k.lower() == b"tracestate"]
