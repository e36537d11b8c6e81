"""The hooks the lower layers call while tracing is on (see ``bffgate.telemetry``)."""

from __future__ import annotations

from opentelemetry import trace

from bffgate.telemetry.context import format_traceparent, parse_traceparent


class SpanHooks:
    def current_traceparent(self) -> str | None:
        sc = trace.get_current_span().get_span_context()
        if not sc.is_valid:
            return None
        return format_traceparent(sc.trace_id, sc.span_id, int(sc.trace_flags))

    def link_current_span(self, traceparent: str, kind: str) -> None:
        parent = parse_traceparent(traceparent)
        span = trace.get_current_span()
        if parent is None or not span.is_recording():
            return
        span.add_link(trace.SpanContext(parent.trace_id, parent.span_id, is_remote=True,
                                        trace_flags=trace.TraceFlags(parent.flags & 0x01)),
                      {"bffgate.link": kind})
