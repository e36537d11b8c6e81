"""A WebSocket upstream (the ``websockets`` package) in a background thread: records each
handshake's headers and how each connection ended.

Paths: ``/echo`` sends every message back as it came (text or binary); ``/close?code=N&
reason=R`` closes with that code and reason after the first message; ``/flood?mb=N`` sends N
one-MiB binary messages and records how long the sends took (back-pressure shows as time);
``/hold`` only reads. Subprotocols: the server prefers ``chat.v2`` over ``chat.v1``; it
accepts permessage-deflate when offered, and records the extensions it negotiated.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from support.idp import free_port

SUBPROTOCOLS = [Subprotocol("chat.v2"), Subprotocol("chat.v1")]


def _select_subprotocol(_: ServerConnection, offered: Any) -> Subprotocol | None:
    """The server's preference among those offered; none offered is fine too."""
    return next((p for p in SUBPROTOCOLS if p in offered), None)


class WsUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.handshakes: list[dict[str, Any]] = []  # {path, headers: [(name, value)]}
        self.closes: list[dict[str, Any]] = []  # {path, code, reason} as the upstream saw it
        self.floods: list[dict[str, Any]] = []  # {sent_mb, seconds}
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        target = urlsplit(request.path)
        self.handshakes.append({"path": target.path,
                                "headers": list(request.headers.raw_items()),
                                "subprotocol": ws.subprotocol,
                                "extensions": ws.response.headers.get(
                                    "Sec-WebSocket-Extensions") if ws.response else None})
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        try:
            if target.path.endswith("/echo"):
                async for message in ws:
                    await ws.send(message)
            elif target.path.endswith("/close"):
                await ws.recv()
                await ws.close(int(query["code"]), query.get("reason", ""))
            elif target.path.endswith("/flood"):
                chunk = b"x" * (1 << 20)
                started = time.monotonic()
                for i in range(int(query["mb"])):
                    await ws.send(chunk)
                    self.floods.append({"sent_mb": i + 1,
                                        "seconds": time.monotonic() - started})
                await ws.close(1000, "flood done")
            else:
                async for _ in ws:
                    pass
        except ConnectionClosed:
            pass
        finally:
            rcvd = ws.protocol.close_rcvd
            self.closes.append({"path": target.path, "code": rcvd.code if rcvd else None,
                                "reason": rcvd.reason if rcvd else None})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(self._handler, "127.0.0.1", self.port,
                             select_subprotocol=_select_subprotocol,
                             max_size=16 * 1024 * 1024, write_limit=64 * 1024,
                             compression="deflate"):
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    def start(self) -> WsUpstream:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket upstream did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)
