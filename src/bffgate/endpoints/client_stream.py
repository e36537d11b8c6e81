"""The client's side of a proxied exchange: its request body, read as the upstream sends
it, and a watch for a client that leaves while the response streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Receive

from bffgate.errors import BodyTooLarge, ClientAborted


class RequestBody:
    """The client's request body as an iterator for the upstream client, capped at
    ``limit``; a client gone mid-body is a ``ClientAborted``, not an upstream failure."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive, self._limit = receive, limit
        self.done = False

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientAborted(reason="client_disconnected")
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self._limit:
                raise BodyTooLarge(reason="body_too_large")
            if not message.get("more_body", False):
                self.done = True
            if chunk:
                yield chunk
            if self.done:
                return


class ClientWatch:
    """Waits for the client's ``http.disconnect`` in the background while a response
    streams, so a client that left stops the copy (and is counted as an abort)."""

    def __init__(self, receive: Receive) -> None:
        self._task = asyncio.ensure_future(self._wait(receive))

    @staticmethod
    async def _wait(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    @property
    def gone(self) -> bool:
        return self._task.done()

    def close(self) -> None:
        self._task.cancel()
