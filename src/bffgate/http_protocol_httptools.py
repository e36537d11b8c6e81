"""uvicorn's httptools (llhttp) protocol with the gateway's framing policy (see http_protocol).

llhttp refuses a head without naming the field, so the raw bytes of the current head are
kept (when the head began at the start of a read) to name the cause and pick 400 or 501.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from bffgate.errors import GatewayError
from bffgate.framing import bad_chunk, check_framing, classify_rejected_head, malformed
from bffgate.http_protocol import _FramingGuard, websocket_ok, websocket_paths

_HEAD_KEEP = 64 * 1024  # enough to name the cause; llhttp refuses far longer heads anyway
_HEAD_READS = 64  # a head trickled in more reads than this is classified without the rest


class _Refused(Exception):
    """Raised from a parser callback to stop llhttp at a head the gateway refuses."""


class FramingHttpToolsProtocol(_FramingGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol with the gateway's framing checks and problem+json
    refusals."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._refusal: GatewayError | None = None
        self._in_message = False
        self._in_body = False
        # The reads the current head came in (references, no copies on the hot path);
        # None when the head began mid-read (pipelined) and its start is unknown.
        self._head: list[bytes] | None = None
        self._reading_from_boundary = False
        self._running: RequestResponseCycle | None = None
        self._read = b""
        self._websocket_paths = websocket_paths(config)

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:  # after a refusal the rest of the stream is not parsed
            return
        self._unset_keepalive_if_required()
        self._reading_from_boundary = not self._in_message
        if self._in_message and not self._in_body and self._head is not None \
                and len(self._head) < _HEAD_READS:
            self._head.append(data)
        self._read = data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Reached only for a handshake on_headers_complete let through (a websocket
            # route); every other Upgrade and CONNECT was refused there first.
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self.refuse(malformed())
        except httptools.HttpParserError:
            self._parser_refused()

    def _parser_refused(self) -> None:
        method = self.scope.get("method", "").encode() if self.scope else b""
        if self._refusal is not None:
            self.refuse(self._refusal, method=method)
        elif self._in_body:
            chunked = any(k == b"transfer-encoding" for k, _ in self.headers)
            self.refuse(bad_chunk() if chunked else malformed(), victim=self.cycle,
                        method=method, path=self.scope.get("path", ""))
        elif self._head is not None:
            self.refuse(classify_rejected_head(b"".join(self._head)[:_HEAD_KEEP]))
        else:
            fields = self.headers if self._in_message else []
            self.refuse(check_framing(fields, method=b"", http_version=b"1.1") or malformed())

    def on_message_begin(self) -> None:
        # The head starts at this read's first byte only if no message was open when the
        # read began and this is the first message to begin in it.
        self._head = [self._read] if self._reading_from_boundary else None
        self._reading_from_boundary = False
        self._in_message, self._in_body = True, False
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        method, version = self.parser.get_method(), self.parser.get_http_version().encode()
        ws = websocket_ok(self._websocket_paths, self.headers, method=method,
                          http_version=version, target=self.url)
        self._refusal = check_framing(self.headers, method=method, http_version=version,
                                      websocket_ok=ws)
        if self._refusal is not None:
            raise _Refused
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_message = self._in_body = False
        super().on_message_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        if self._failure is not None:
            # Answer the pipelined requests parsed before the refused one, in order.
            self.pipeline = type(self.pipeline)(
                (c, a) for c, a in self.pipeline if c is not self._victim)
        super().on_response_complete()
        self.flush_refusal()

    def _owed_before(self) -> bool:
        if any(c is not self._victim for c, _ in self.pipeline):
            return True
        running = self._running
        return (running is not None and running is not self._victim
                and not running.response_complete and not running.disconnected)
