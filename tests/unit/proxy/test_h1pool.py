"""The upstream pool's bookkeeping (bffgate.proxy.h1pool): what a waiter that gives up was
handed goes to the next one, and a connection is counted out once."""

from __future__ import annotations

import asyncio

from bffgate.proxy.h1conn import H1Connection
from bffgate.proxy.h1pool import Pool, origin_of


def pool(limit: int = 1) -> Pool:
    return Pool(origin_of("http://127.0.0.1:9"), limit, None)


async def test_room_handed_to_a_waiter_that_gave_up_goes_to_the_next() -> None:
    p = pool()
    loop = asyncio.get_running_loop()
    gone, nxt = loop.create_future(), loop.create_future()
    p._open = 1
    p._waiters.extend([gone, nxt])
    p.discard(H1Connection(loop))  # a connection closes: its room goes to `gone`...
    assert gone.result() is None and not nxt.done()
    p._pass_on(gone)
    assert nxt.done() and nxt.result() is None
    assert p._open == 0


async def test_a_connection_handed_to_a_waiter_that_gave_up_goes_to_the_next() -> None:
    p = pool()
    loop = asyncio.get_running_loop()
    gone, nxt = loop.create_future(), loop.create_future()
    conn = H1Connection(loop)
    gone.set_result(conn)
    p._waiters.append(nxt)
    p._pass_on(gone)
    assert nxt.result() is conn


async def test_a_connection_is_counted_out_once() -> None:
    p = pool(limit=2)
    loop = asyncio.get_running_loop()
    conn = H1Connection(loop)
    p._open = 2
    p.discard(conn)
    p.discard(conn)
    assert p._open == 1
