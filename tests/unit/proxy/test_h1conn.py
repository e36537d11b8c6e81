"""The upstream connection's response handling (bffgate.proxy.h1conn), fed bytes directly
through a recording transport: framing, 1xx, HEAD, bytes outside an exchange, the end of
the connection, back-pressure."""

from __future__ import annotations

import asyncio

import pytest

from bffgate.proxy.h1conn import HIGH_WATER, H1Connection, UpstreamClosed
from support.fake_transport import FakeTransport


def connected() -> tuple[H1Connection, FakeTransport]:
    conn = H1Connection(asyncio.get_running_loop())
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def answered(response: bytes) -> H1Connection:
    """A GET answered with ``response`` (whose head must be whole)."""
    conn, _ = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(response)
    assert await head >= 200
    return conn


def body_of(conn: H1Connection) -> bytes:
    return conn.take()


async def test_a_response_in_one_piece() -> None:
    conn, transport = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    assert transport.written == [b"GET / HTTP/1.1\r\n\r\n"]
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                       b"Content-Length: 5\r\n\r\nhello")
    assert await head == 200
    assert conn.headers == [(b"content-type", b"text/plain"), (b"content-length", b"5")]
    assert conn.complete and conn.keep_alive and conn.reusable
    assert body_of(conn) == b"hello"


async def test_informational_responses_are_skipped() -> None:
    conn, _ = connected()
    head = conn.start(b"POST / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                       b"Link: </a.css>\r\n\r\n")
    assert not head.done()
    conn.data_received(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert await head == 201
    assert conn.headers == [(b"content-length", b"2")]
    assert conn.complete and body_of(conn) == b"ok"


async def test_a_head_response_ends_with_its_head() -> None:
    conn, _ = connected()
    head = conn.start(b"HEAD / HTTP/1.1\r\n\r\n", head_only=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n")
    assert await head == 200
    assert conn.complete and conn.reusable and body_of(conn) == b""


async def test_a_body_after_a_head_response_makes_the_connection_unusable() -> None:
    conn, _ = connected()
    head = conn.start(b"HEAD / HTTP/1.1\r\n\r\n", head_only=True)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert await head == 200
    assert not conn.reusable


@pytest.mark.parametrize("extra", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",  # a response nobody asked for
    b"x",
])
async def test_bytes_after_a_whole_response_make_the_connection_unusable(extra) -> None:
    conn, _transport = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + extra)
    assert await head == 200
    assert conn.status == 200 and conn.headers == [(b"content-length", b"2")]
    assert not conn.reusable
    conn2, transport2 = connected()
    head2 = conn2.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn2.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    await head2
    conn2.data_received(extra)  # later, in a packet of its own
    assert not conn2.reusable and transport2.closed


async def test_bytes_before_any_request_close_the_connection() -> None:
    conn, transport = connected()
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.closed and not conn.reusable


async def test_a_body_delimited_by_the_end_of_the_connection() -> None:
    conn, _ = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\n\r\nall of ")
    assert await head == 200
    conn.data_received(b"it")
    assert not conn.complete
    conn.connection_lost(None)
    assert conn.complete and conn.error is None and not conn.reusable
    assert body_of(conn) == b"all of it"


@pytest.mark.parametrize("cut", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
])
async def test_a_body_cut_short_is_an_error_not_a_short_body(cut) -> None:
    conn = await answered(cut)
    conn.connection_lost(None)
    assert not conn.complete
    assert isinstance(conn.error, UpstreamClosed) and not conn.error.before_response


async def test_closed_before_any_response_byte() -> None:
    conn, _ = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.connection_lost(ConnectionResetError())
    with pytest.raises(UpstreamClosed) as info:
        await head
    assert info.value.before_response


async def test_an_unparsable_response_fails_the_exchange() -> None:
    conn, transport = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    with pytest.raises(UpstreamClosed):
        await head
    assert transport.closed


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
])
async def test_a_response_that_ends_the_connection_is_not_kept_alive(response) -> None:
    conn = await answered(response)
    assert conn.complete and not conn.keep_alive


async def test_reading_pauses_above_the_high_water_mark_and_resumes_on_take() -> None:
    conn, transport = connected()
    size = HIGH_WATER + 10
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    await head
    conn.data_received(b"a" * (HIGH_WATER + 1))
    assert transport.paused
    assert len(conn.take()) == HIGH_WATER + 1
    assert not transport.paused


async def test_wait_times_out_and_wakes_on_body_bytes() -> None:
    conn, _ = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n")
    await head
    with pytest.raises(TimeoutError):
        await conn.wait(0.01)
    waiting = asyncio.ensure_future(conn.wait(5))
    await asyncio.sleep(0)
    conn.data_received(b"data")
    await asyncio.wait_for(waiting, 1)
    assert conn.complete and conn.take() == b"data"


async def test_a_response_head_too_large_is_refused() -> None:
    conn, transport = connected()
    head = conn.start(b"GET / HTTP/1.1\r\n\r\n", head_only=False)
    conn.data_received(b"HTTP/1.1 200 OK\r\n")
    for i in range(70):
        conn.data_received(b"X-Filler-%d: %s\r\n" % (i, b"a" * 1024))
    with pytest.raises(UpstreamClosed):
        await head
    assert transport.closed and not conn.reusable


async def test_trailers_are_not_headers() -> None:
    conn = await answered(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"2\r\nok\r\n0\r\nX-Checksum: abc\r\n\r\n")
    assert conn.headers == [(b"transfer-encoding", b"chunked")]
    assert conn.complete and conn.reusable and conn.take() == b"ok"
