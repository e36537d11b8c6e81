"""uvicorn's HTTP/1.1 protocols with one framing policy: a request whose framing is bad or
ambiguous gets a 400/501 application/problem+json answer, in pipeline order, then the
connection is closed (RFC 9112 §6.1, §6.3, §9.3.2). Never a silent close, never a text/plain
answer, never a guess.

uvicorn hands every parser refusal to ``send_400_response``; both subclasses route it, and the
gateway's own head checks (``bffgate.framing``), to ``_FramingGuard.refuse``. ``server.http_parser``
picks the parser (``bffgate.http_parsers``).
"""

from __future__ import annotations

import asyncio
import http
from collections.abc import Callable
from typing import Any

import h11
from h11._connection import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.errors import GatewayError
from bffgate.framing import (
    bad_chunk,
    check_framing,
    classify_rejected_head,
    head_fields,
    is_websocket_handshake,
    malformed,
    target_path,
)
from bffgate.ids import hex_id
from bffgate.problems import problem_parts
from bffgate.write_coalescing import CoalescingTransport


class _FramingGuard:
    """Answers a refused request once, after the responses the client is still owed for the
    requests before it on the connection, then closes. Mixed into both protocol classes."""

    transport: asyncio.Transport
    server_state: ServerState
    client: tuple[str, int] | None
    _failure: GatewayError | None = None
    _victim: Any = None  # the cycle whose body broke; it is answered by the refusal
    _answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A response's head and body (and pipelined responses) in one write: see
        # bffgate.write_coalescing.
        loop = asyncio.get_running_loop()
        super().connection_made(  # type: ignore[misc]
            CoalescingTransport(transport, loop))  # type: ignore[arg-type]

    def refuse(self, error: GatewayError, *, victim: Any = None, method: bytes = b"",
               path: str = "") -> None:
        if self._failure is not None:
            return
        self._failure = error
        request_id = hex_id(12)
        audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason=error.reason,
                   status=error.status, request_id=request_id,
                   client_ip=self.client[0] if self.client else None,
                   method=method.decode("latin-1")[:16] or None, path=path[:256] or None)
        self._payload = _problem_bytes(error, request_id, self.server_state.default_headers)
        if victim is not None:
            if victim.response_started:
                # The client already has (part of) an answer for this request: a second
                # one would be taken for the next request's. Cut the connection instead.
                self._answered = True
                self.transport.close()
                return
            victim.disconnected = True  # the app sees http.disconnect; its sends are dropped
            victim.message_event.set()
            self._victim = victim
        self.flush_refusal()

    def flush_refusal(self) -> None:
        if self._failure is None or self._answered or self._owed_before():
            return
        self._answered = True
        if not self.transport.is_closing():
            self.transport.write(self._payload)
            self.transport.close()

    def _owed_before(self) -> bool:
        """True while a response for an earlier request is still to be written."""
        raise NotImplementedError


WebSocketPaths = Callable[[str], bool]


def websocket_paths(config: Config) -> WebSocketPaths | None:
    """The app's test for a path on a ``websocket = true`` route (``websocket_path`` of
    bffgate.endpoints.websocket.WebSocketGate), or None: no Upgrade is let through."""
    if config.ws_protocol_class is None:
        return None
    found: WebSocketPaths | None = getattr(config.app, "websocket_path", None)
    return found


def websocket_ok(paths: WebSocketPaths | None, fields: Any, *, method: bytes,
                 http_version: bytes, target: bytes) -> bool:
    """The one exception to the Upgrade refusal: a well-formed bodiless WebSocket handshake
    on a websocket route."""
    return (paths is not None
            and is_websocket_handshake(fields, method=method, http_version=http_version)
            and paths(target_path(target)))


def _problem_bytes(error: GatewayError, request_id: str,
                   default_headers: list[tuple[bytes, bytes]]) -> bytes:
    status, headers, body = problem_parts(error, request_id=request_id,
                                          extra_headers=[(b"connection", b"close")])
    out = [b"HTTP/1.1 %d %s\r\n" % (status, http.HTTPStatus(status).phrase.encode())]
    out += [name + b": " + value + b"\r\n" for name, value in [*default_headers, *headers]]
    out += [b"\r\n", body]
    return b"".join(out)


class _CheckedConnection(h11.Connection):
    """h11 plus the gateway's head checks on each request, applied to the head's raw fields
    (h11 itself merges equal duplicate Content-Length fields and takes Content-Length
    beside Transfer-Encoding). A refusal is raised as h11 raises its own, so uvicorn routes
    both to ``send_400_response``."""

    def __init__(self, max_incomplete_event_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size)
        self.head = b""  # the raw head of the request being parsed or refused
        self.refusal: GatewayError | None = None
        self.failed_in_body = False
        self.websocket_paths: WebSocketPaths | None = None

    def next_event(self) -> Any:
        state = self.their_state
        pending = self.trailing_data[0] if state is h11.IDLE else b""
        try:
            event = super().next_event()
        except h11.RemoteProtocolError:
            self.failed_in_body = state is h11.SEND_BODY
            self.head = pending
            raise
        if isinstance(event, h11.Request):
            self.head = pending[: len(pending) - len(self.trailing_data[0])]
            _, _, fields = head_fields(self.head)
            ws = websocket_ok(self.websocket_paths, fields, method=event.method,
                              http_version=event.http_version, target=event.target)
            self.refusal = check_framing(fields, method=event.method,
                                         http_version=event.http_version, websocket_ok=ws)
            if self.refusal is not None:
                raise h11.RemoteProtocolError(self.refusal.detail)
        return event


class FramingH11Protocol(_FramingGuard, H11Protocol):
    """uvicorn's h11 protocol with the gateway's framing checks and problem+json refusals."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        size = config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        self.conn = _CheckedConnection(size)
        self.conn.websocket_paths = websocket_paths(config)

    def data_received(self, data: bytes) -> None:
        if self._failure is None:  # after a refusal the rest of the stream is not parsed
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        conn: _CheckedConnection = self.conn  # type: ignore[assignment]
        if conn.failed_in_body and self.cycle is not None:
            chunked = any(k == b"transfer-encoding" for k, _ in self.headers)
            self.refuse(bad_chunk() if chunked else malformed(), victim=self.cycle,
                        method=self.scope["method"].encode(), path=self.scope["path"])
            return
        error = conn.refusal or classify_rejected_head(conn.head)
        method = head_fields(conn.head)[0]
        self.refuse(error, method=method)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.flush_refusal()

    def _owed_before(self) -> bool:
        cycle = self.cycle
        return (cycle is not None and cycle is not self._victim
                and not cycle.response_complete and not cycle.disconnected)
