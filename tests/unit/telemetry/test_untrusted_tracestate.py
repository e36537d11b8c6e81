"""An untrusted trace context is only linked, and without its tracestate: OpenTelemetry's
TraceState parser logs a malformed member as plain text through stdlib logging, outside the
JSON log and its redaction (found by the fuzz run: up to 512 client-chosen characters per
request on stderr)."""

from __future__ import annotations

import logging

import pytest

from bffgate.telemetry.context import trusted_parent
from bffgate.telemetry.server import remote_context

HEADERS = [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
           (b"tracestate", b"attacker text, eyJhbGciOiJub25lIn0.e30.x")]


def test_a_linked_foreign_context_drops_its_tracestate_and_logs_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    parent, foreign = trusted_parent(HEADERS, "203.0.113.9", trusts=lambda ip: False,
                                     public_origin="https://app.example")
    assert parent is None and foreign is not None
    with caplog.at_level(logging.DEBUG):
        context = remote_context(foreign, trusted=False)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert context.trace_id == foreign.trace_id and len(context.trace_state) == 0


def test_a_trusted_context_keeps_its_well_formed_tracestate() -> None:
    headers = [HEADERS[0], (b"tracestate", b"vendor=opaque-value")]
    parent, _ = trusted_parent(headers, "10.0.0.1", trusts=lambda ip: True,
                               public_origin="https://app.example")
    assert parent is not None
    assert dict(remote_context(parent).trace_state) == {"vendor": "opaque-value"}
