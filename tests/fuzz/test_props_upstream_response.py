"""Property tests: the upstream connection (bffgate.proxy.h1conn) for any bytes an upstream
can send, in any packets: nothing escapes its callbacks, every exchange ends in exactly one
way, and a well-formed response reads the same however it is split."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.proxy.h1conn import H1Connection, UpstreamClosed
from support.fake_transport import FakeTransport

pytestmark = pytest.mark.fuzz

PIECES = [b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 204 No Content\r\n", b"HTTP/1.1 100 Continue\r\n",
          b"Content-Length: 3\r\n", b"Content-Length: x\r\n", b"Transfer-Encoding: chunked\r\n",
          b"Connection: close\r\n", b"\r\n", b"abc", b"3\r\nabc\r\n", b"0\r\n\r\n", b"\n",
          b"X: \x00\r\n", b"HTTP/1.1 999 ?\r\n", b" folded\r\n"]


def run(packets: list[bytes], *, head_only: bool, lose: bool) -> H1Connection:
    loop = asyncio.new_event_loop()
    try:
        conn = H1Connection(loop)
        conn.connection_made(FakeTransport())  # type: ignore[arg-type]
        head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=head_only)
        for packet in packets:
            conn.data_received(packet)  # never raises, whatever the bytes
        if lose:
            conn.connection_lost(None)
        if head.done() and head.exception() is not None:
            assert isinstance(head.exception(), UpstreamClosed)
        if conn.complete:
            assert conn.error is None and 200 <= conn.status <= 999
        if lose:  # the end of the connection ends the exchange one way or another
            assert head.done()
            assert conn.complete or conn.error is not None or head.exception() is not None
            assert not conn.reusable
        return conn
    finally:
        loop.close()


@given(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=24)), max_size=12),
       st.booleans(), st.booleans())
def test_any_bytes_end_the_exchange_one_way(packets, head_only, lose) -> None:
    run(packets, head_only=head_only, lose=lose)


@st.composite
def response_and_body(draw: st.DrawFn) -> tuple[bytes, bytes]:
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body), body
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts if p)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n", body


@given(response_and_body(), st.lists(st.integers(0, 400), max_size=6))
def test_a_well_formed_response_reads_the_same_however_split(response, splits) -> None:
    raw, body = response
    cuts = sorted({min(s, len(raw)) for s in splits})
    packets = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    conn = run([p for p in packets if p], head_only=False, lose=False)
    assert conn.complete and conn.status == 200 and conn.reusable and conn.keep_alive
    assert conn.take() == body
