"""The server protocols' transport wrapper: the writes of one loop step go out as one."""

from __future__ import annotations

import asyncio

from bffgate.write_coalescing import CoalescingTransport
from support.fake_transport import FakeTransport


async def coalescing() -> tuple[CoalescingTransport, FakeTransport]:
    real = FakeTransport()
    return CoalescingTransport(real, asyncio.get_running_loop()), real  # type: ignore[arg-type]


async def test_writes_of_one_step_go_out_together_in_order() -> None:
    t, real = await coalescing()
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(bytearray(b"body"))
    t.write(b"")
    assert real.written == []
    assert t.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
    await asyncio.sleep(0)
    assert real.written == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    t.write(b"next")
    await asyncio.sleep(0)
    assert real.written[-1] == b"next"


async def test_close_and_write_eof_write_what_is_held_first_and_abort_drops_it() -> None:
    t, real = await coalescing()
    t.write(b"last words")
    t.close()
    assert real.written == [b"last words"] and real.closed
    await asyncio.sleep(0)
    assert real.written == [b"last words"]  # the scheduled flush finds nothing

    t, real = await coalescing()
    t.write(b"dropped")
    t.abort()
    await asyncio.sleep(0)
    assert real.written == []


async def test_everything_else_is_the_real_transports() -> None:
    t, real = await coalescing()
    t.pause_reading()
    assert real.paused and t.is_closing() is False
    assert t.get_extra_info("peername", "none") == "none"
