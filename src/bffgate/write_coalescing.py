"""A transport wrapper that turns the writes of one event-loop step into one ``write``.

uvicorn writes a response's head and its body with two ``transport.write`` calls, that is
two system calls and, on a keep-alive connection, two TCP segments, where one is enough
(the head and a small body are ready in the same step: a proxied JSON answer). The
server protocols (bffgate.http_protocol) wrap their transport in ``CoalescingTransport``:
a write is held until the loop's next round of callbacks, and every write made before then
goes out with it, in order. Nothing is held longer: a streamed body whose next chunk is
not ready yet is on the wire one step later, as before.

Closing, aborting or ``write_eof`` write what is held first (abort drops it, as abort
drops the real transport's buffer). Everything else is the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CoalescingTransport:
    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        held = self._held
        if held is None:
            self._held = [bytes(data)]
            self._loop.call_soon(self._flush)
        else:
            held.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self._transport.get_write_buffer_size() + (
            sum(map(len, held)) if held else 0)

    def __getattr__(self, name: str) -> Any:  # is_closing, pause_reading, get_extra_info...
        return getattr(self._transport, name)
