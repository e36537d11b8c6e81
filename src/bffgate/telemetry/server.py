"""The SERVER span of each public HTTP request: the outermost layer of the public app,
installed only while tracing is on (``Tracing.edge``).

Name ``{method} {http.route}`` (``/bff/login``, ``/bff/callback``, ... or the matched
route's prefix), else ``{method}``. Attributes: ``http.request.method``, ``url.scheme``,
``url.path`` (never the query: ``/bff/callback?code=...``), ``http.route``,
``http.response.status_code``, ``client.address`` (the TCP peer), ``bffgate.request_id``
(the ``X-Request-Id`` answered, as in the logs). No header, cookie or body is read into it.
The parent is the browser's ``traceparent`` only when trusted (``context``); an untrusted
one is a link. WebSocket handshakes pass through unchanged (no span).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from bffgate.telemetry.context import Parent, trusted_parent

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def remote_context(parent: Parent, *, trusted: bool = True) -> trace.SpanContext:
    """The SpanContext of an incoming ``traceparent``. An untrusted one (only ever linked)
    keeps its ids but not its ``tracestate``: OpenTelemetry's parser logs a malformed member
    as plain text through stdlib logging, outside the JSON log and its redaction, and a
    link has no use for another site's vendor state."""
    state = trace.TraceState.from_header([parent.tracestate]) if trusted and parent.tracestate \
        else trace.TraceState()
    return trace.SpanContext(parent.trace_id, parent.span_id, is_remote=True,
                             trace_flags=trace.TraceFlags(parent.flags & 0x01),
                             trace_state=state)


class ServerSpans:
    """ASGI middleware: one SERVER span per HTTP request, current while the app runs."""

    def __init__(self, app: App, tracer: trace.Tracer, *, trusts: Callable[[str], bool],
                 public_origin: str, route_of: Callable[[str], str | None]) -> None:
        self._app, self._tracer = app, tracer
        self._trusts, self._origin, self._route_of = trusts, public_origin, route_of
        if hasattr(app, "websocket_path"):  # bffgate.server serves WebSockets only then
            self.websocket_path = app.websocket_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = scope.get("headers") or []
        client = scope.get("client") or ("", 0)
        peer = str(client[0]) if isinstance(client, tuple | list) else ""
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        route = self._route_of(path)
        parent, foreign = trusted_parent(headers, peer, trusts=self._trusts,
                                         public_origin=self._origin)
        context = (trace.set_span_in_context(trace.NonRecordingSpan(remote_context(parent)))
                   if parent else None)
        links = [Link(remote_context(foreign, trusted=False), {"bffgate.untrusted": True})] if foreign else []
        attributes: dict[str, Any] = {
            "http.request.method": method, "url.scheme": str(scope.get("scheme", "http")),
            "url.path": path[:512], "client.address": peer,
        }
        if route:
            attributes["http.route"] = route
        span = self._tracer.start_span(f"{method} {route}" if route else method,
                                       context=context, kind=SpanKind.SERVER,
                                       attributes=attributes, links=links)

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_attribute("error.type", str(status))
                    span.set_status(Status(StatusCode.ERROR))
                for k, v in message.get("headers") or ():
                    if k.lower() == b"x-request-id":
                        span.set_attribute("bffgate.request_id", v.decode("latin-1")[:128])
            await send(message)

        with trace.use_span(span, end_on_exit=True, record_exception=False,
                            set_status_on_exception=False):
            try:
                await self._app(scope, receive, traced_send)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR))
                raise
