"""Unit tests of the audit events' JSON Schema (bffgate/audit_schema.json, shipped in the
package) and of the suite-wide check that validates every audit line against it
(tests/support/audit_check.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import structlog
from jsonschema import Draft202012Validator

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from support.audit_check import CheckedStream, FileTail, line_errors

SCHEMA = json.loads(files("bffgate").joinpath("audit_schema.json").read_text())
EVENTS = SCHEMA["$defs"]["events"]
ALWAYS = {"ts", "event", "level", "audit"}
REQUEST = {"request_id", "client_ip", "user_agent", "method", "path"}
SAMPLES: dict[str, Any] = {
    "session": "3f2a9c0d1e7b4a56", "sub": "248289761001", "route": "/api", "status": 200,
    "duration_ms": 1.5, "reason": "logout", "detail": "code 1000", "count": 1,
    "expires_in": 300,
}


def test_the_schema_is_draft_2020_12_and_valid() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("event", list(AuditEvent), ids=lambda e: e.value)
def test_every_audit_event_has_a_schema_entry(event: AuditEvent) -> None:
    assert event.value in EVENTS
    assert event.value in SCHEMA["properties"]["event"]["enum"]
    assert EVENTS[event.value]["properties"]["event"] == {"const": event.value}


def test_the_schema_has_no_event_the_gateway_does_not_know() -> None:
    assert set(EVENTS) == {e.value for e in AuditEvent}
    assert len(SCHEMA["allOf"]) == len(EVENTS)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_each_entry_is_closed_and_names_only_catalogue_fields(name: str) -> None:
    entry = EVENTS[name]
    assert entry["additionalProperties"] is False
    assert set(entry["required"]) <= set(entry["properties"])
    assert set(entry["required"]) >= ALWAYS
    assert set(entry["properties"]) <= audit.FIELDS | ALWAYS
    assert set(entry["properties"]) >= REQUEST
    for field in entry["properties"]:
        assert field in SCHEMA["$defs"]["fields"]


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.configure_logging("info", "json", stream=buffer)
    structlog.contextvars.bind_contextvars(
        request_id="5d3c0b1e9a7f42c18e6b2a40", client_ip="203.0.113.7",
        user_agent="Mozilla/5.0", method="GET", path="/api/x")
    yield buffer
    structlog.contextvars.clear_contextvars()
    logs.reset_logging()


def _value(name: str, field: str) -> Any:
    enum = EVENTS[name]["properties"][field].get("enum")
    return enum[0] if enum else SAMPLES[field]


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_a_line_the_pipeline_writes_with_every_field_validates(stream: io.StringIO,
                                                               name: str) -> None:
    """The real pipeline's output (ts, level, audit, the request context) fits the entry,
    with only the required fields and with every optional one."""
    entry = EVENTS[name]
    level = entry["properties"]["level"]["enum"][-1]
    own = set(entry["properties"]) - ALWAYS - REQUEST
    required = set(entry["required"]) - ALWAYS
    audit.emit(AuditEvent(name), level=level, **{f: _value(name, f) for f in required})
    audit.emit(AuditEvent(name), level=level, **{f: _value(name, f) for f in own})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line_errors(line) == []


def _line(**fields: Any) -> str:
    base = {"ts": "2026-12-02T00:25:38.123456Z", "level": "info", "audit": True,
            "event": "request.proxied", "status": 200, "route": "/api"}
    return json.dumps({k: v for k, v in {**base, **fields}.items() if v is not None})


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        pytest.param(_line(upstream="u"), "'upstream' was unexpected", id="unknown-field"),
        pytest.param(_line(status=None), "'status' is a required property", id="missing-required"),
        pytest.param(_line(status="200"), "'200' is not of type 'integer'", id="wrong-type"),
        pytest.param(_line(level="error"), "'error' is not one of", id="wrong-level"),
        pytest.param(_line(event="request.teleported"), "is not one of", id="unknown-event"),
        pytest.param(_line(event="session.revoked", session="3f2a9c0d1e7b4a56", reason="oops",
                           status=None, route=None), "'oops' is not one of", id="reason-enum"),
        pytest.param(_line(session="not-a-hash"), "does not match", id="session-not-a-hash"),
        pytest.param(_line(ts="yesterday"), "does not match", id="bad-ts"),
    ],
)
def test_the_suite_check_fails_a_bad_line(line: str, complaint: str) -> None:
    problems = line_errors(line)
    assert problems and any(complaint in p for p in problems), problems


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(_line(), id="valid-audit-line"),
        pytest.param('{"event": "upstream pool resized", "level": "info"}', id="not-audit"),
        pytest.param("INFO:     Started server process [1234]", id="not-json"),
        pytest.param('{"audit": true, "event": ', id="cut-off"),
    ],
)
def test_the_suite_check_passes_good_and_foreign_lines(line: str) -> None:
    assert line_errors(line) == []


def test_the_suite_check_reads_child_output_files_incrementally(tmp_path: Path) -> None:
    """New complete lines only, each once; a line still being written waits."""
    log = tmp_path / "gateway.log"
    tail = FileTail([log])
    assert tail.problems() == []  # no file yet
    log.write_text("INFO: started\n" + _line() + "\n" + _line(upstream="u") + "\n")
    [problem] = tail.problems()
    assert "'upstream' was unexpected" in problem and "gateway.log" in problem
    assert tail.problems() == []
    with log.open("a") as f:
        f.write(_line(status="x")[:20])
    assert tail.problems() == []
    with log.open("a") as f:
        f.write(_line(status="x")[20:] + "\n")
    [problem] = tail.problems()
    assert "'x' is not of type 'integer'" in problem


def test_the_suite_check_sees_in_process_lines() -> None:
    """The in-process stream checks each line it is given and passes it on."""
    stream = CheckedStream()
    stream.write(_line() + "\n" + _line(route=7) + "\n")
    assert stream.lines == 2
    [problem] = stream.problems
    assert "7 is not of type 'string'" in problem
