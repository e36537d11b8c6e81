"""Unit tests of the cheap log path (issue #12): audit lines skip the scrub only for values
that cannot hold a secret, every other string is still redacted and counted, loggers are
cached yet follow a reconfiguration, and each line is one write."""

from __future__ import annotations

import calendar
import io
import json
import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from bffgate.logs import AUDIT_SAFE_FIELDS, REDACTED, SECRET_KEYS, redact

JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0"
       ".eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAzMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmUtYnl0ZXM")
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.configure_logging("info", "json", stream=buffer)
    yield buffer
    structlog.contextvars.clear_contextvars()
    logs.reset_logging()


@pytest.fixture
def hooks() -> Iterator[list[int]]:
    seen: list[int] = []
    logs.on_redaction(seen.append)
    yield seen
    logs.remove_redaction_hook(seen.append)


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def _bind(path: str, user_agent: str, request_id: str = "5d3c0b1e9a7f42c18e6b2a40") -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id, client_ip="203.0.113.7",
                                           user_agent=user_agent, method="GET", path=path)


def _proxied(**extra: Any) -> None:
    audit.emit(AuditEvent.REQUEST_PROXIED, route="/api", status=200, duration_ms=1.37,
               session="3f2a9c0d1e7b4a56", sub="248289761001", **extra)


def test_clean_request_proxied_line_is_written_whole(stream: io.StringIO,
                                                     hooks: list[int]) -> None:
    """The hot line: every field as given, nothing counted as redacted."""
    _bind("/api/orders/42", UA)
    _proxied()
    [line] = _lines(stream)
    assert line == {
        "route": "/api", "status": 200, "duration_ms": 1.37, "session": "3f2a9c0d1e7b4a56",
        "sub": "248289761001", "event": "request.proxied", "audit": True,
        "request_id": "5d3c0b1e9a7f42c18e6b2a40", "client_ip": "203.0.113.7",
        "user_agent": UA, "method": "GET", "path": "/api/orders/42", "level": "info",
        "ts": line["ts"]}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["ts"])
    assert hooks == []


@pytest.mark.parametrize(
    ("path", "user_agent", "sub", "leaks"),
    [
        pytest.param("/api/cb?code=SplxlOBeZQQ&state=af0ifjsldkj", UA, "u1",
                     ["SplxlOBeZQQ", "af0ifjsldkj"], id="query-in-path"),
        pytest.param(f"/api/x/{JWT}", UA, "u1", [JWT], id="jwt-in-path"),
        pytest.param("/api/x", f"{UA} Bearer abcdefghijklmnop", "u1", ["abcdefghijklmnop"],
                     id="bearer-in-user-agent"),
        pytest.param("/api/x", f"curl {JWT}", "u1", [JWT], id="jwt-in-user-agent"),
        pytest.param("/api/x", "Mozilla/5.0 ba\u017fic abcdefghijklmnop", "u1",
                     ["abcdefghijklmnop"], id="non-ascii-case-fold-in-user-agent"),
        pytest.param("/api/x", UA, f"sub {JWT}", [JWT], id="jwt-in-sub"),
    ],
)
def test_secret_in_a_request_proxied_line_is_redacted(
        stream: io.StringIO, hooks: list[int], path: str, user_agent: str, sub: str,
        leaks: list[str]) -> None:
    """A secret in the path (with query), the user agent or sub of the hot line goes, and
    the redaction metric hook counts it."""
    _bind(path, user_agent)
    audit.emit(AuditEvent.REQUEST_PROXIED, route="/api", status=200, duration_ms=1.0, sub=sub)
    text = stream.getvalue()
    for leak in leaks:
        assert leak not in text
    assert REDACTED in text
    assert hooks == [len(leaks)]
    [line] = _lines(stream)
    assert line["route"] == "/api" and line["status"] == 200


@pytest.mark.parametrize("field", ["reason", "detail"])
def test_free_form_audit_fields_are_redacted(stream: io.StringIO, hooks: list[int],
                                             field: str) -> None:
    _bind("/bff/callback", UA)
    audit.emit(AuditEvent.LOGIN_FAILED, **{field: f"idp said Bearer abcdefghijklmnop {JWT}"})
    assert "abcdefghijklmnop" not in stream.getvalue() and JWT not in stream.getvalue()
    assert hooks == [2]


def test_request_id_and_method_are_still_scrubbed(stream: io.StringIO) -> None:
    """request_id (a trusted proxy's X-Request-Id) and method are not in the safe list."""
    _bind("/api/x", UA, request_id=JWT)
    structlog.contextvars.bind_contextvars(method=f"X{JWT}")
    _proxied()
    assert JWT not in stream.getvalue()


def test_safe_fields_are_trusted_only_on_audit_lines(stream: io.StringIO,
                                                     hooks: list[int]) -> None:
    """The same field names on an ordinary log line are scrubbed like any other."""
    logs.get_logger().info("something", route="/x?code=abc123def", session="Bearer abcdefghijkl",
                           client_ip=JWT, status="?token=zzz123")
    text = stream.getvalue()
    for leak in ("abc123def", "abcdefghijkl", JWT, "zzz123"):
        assert leak not in text
    assert hooks == [4]


def test_a_line_posing_as_audit_with_an_unknown_event_is_scrubbed() -> None:
    """`audit: true` alone does not make a line trusted: the event must be an AuditEvent."""
    out = redact(None, "info", {"event": "made.up", "audit": True, "route": f"/x/{JWT}"})
    assert out["route"] == f"/x/{REDACTED}"


def test_safe_fields_of_an_unexpected_type_are_scrubbed() -> None:
    out = redact(None, "info", {"event": "request.proxied", "audit": True,
                                "status": "Bearer abcdefghijklmnop", "route": [JWT]})
    assert out["status"] == f"Bearer {REDACTED}"
    assert out["route"] == [REDACTED]


def test_inert_values_and_enum_members_pass_untouched() -> None:
    out = redact(None, "info", {"event": "x", "n": 3, "f": 1.5, "b": False, "none": None,
                                "member": AuditEvent.LOGIN_STARTED})
    assert out == {"event": "x", "n": 3, "f": 1.5, "b": False, "none": None,
                   "member": AuditEvent.LOGIN_STARTED}


def test_the_safe_catalogue_is_audit_fields_and_no_secret_key() -> None:
    assert set(AUDIT_SAFE_FIELDS) - {"audit"} <= audit.FIELDS
    assert not {k.lower() for k in AUDIT_SAFE_FIELDS} & SECRET_KEYS
    for free_form in ("path", "user_agent", "reason", "detail", "sub", "request_id", "method"):
        assert free_form not in AUDIT_SAFE_FIELDS


def test_non_serialisable_values_render_as_repr(stream: io.StringIO) -> None:
    logs.get_logger().info("odd", obj=object(), big=2**70, key_types={1: "one"})
    [line] = _lines(stream)
    assert line["obj"].startswith("<object object")
    assert line["big"] == 2**70


def test_cached_loggers_follow_a_reconfiguration() -> None:
    """Loggers are built once per configuration; a new configure_logging is seen."""
    first, second = io.StringIO(), io.StringIO()
    try:
        logs.configure_logging("info", "json", stream=first)
        assert logs.get_logger("x") is logs.get_logger("x")
        logs.get_logger("x").info("one")
        audit.emit(AuditEvent.LOGIN_STARTED)
        logs.configure_logging("warning", "json", stream=second)
        logs.get_logger("x").info("dropped")
        logs.get_logger("x").warning("two")
        audit.emit(AuditEvent.LOGIN_STARTED)  # info: below the level now
        audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason="state_missing")
    finally:
        logs.reset_logging()
    assert [e["event"] for e in _lines(first)] == ["one", "login.started"]
    assert [e["event"] for e in _lines(second)] == ["two", "login.failed"]


def test_capture_logs_sees_audit_events_of_a_configured_process(stream: io.StringIO) -> None:
    with capture_logs() as captured:
        audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason="state_missing")
    assert captured == [{"event": "login.failed", "audit": True, "reason": "state_missing",
                         "log_level": "warning"}]
    assert stream.getvalue() == ""


def test_each_line_is_one_write_to_the_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a real file descriptor: one os.write per line, no text or buffer layer between."""
    read_fd, write_fd = os.pipe()
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: Any) -> int:
        if fd == write_fd:
            writes.append(bytes(data))
        return real_write(fd, data)

    with os.fdopen(write_fd, "w") as sink:
        try:
            logs.configure_logging("info", "json", stream=sink)
            monkeypatch.setattr(logs.os, "write", counting_write)
            for _ in range(3):
                _proxied()
        finally:
            monkeypatch.undo()
            logs.reset_logging()
    with os.fdopen(read_fd, "rb") as source:
        data = source.read()
    assert len(writes) == 3
    assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    assert data == b"".join(writes)


def test_a_short_write_is_completed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write(2) that takes only part of the line (a signal) is followed by the rest."""
    read_fd, write_fd = os.pipe()
    real_write = os.write
    monkeypatch.setattr(logs.os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    with os.fdopen(write_fd, "w") as sink:
        try:
            logs.configure_logging("info", "json", stream=sink)
            audit.emit(AuditEvent.LOGIN_STARTED)
        finally:
            monkeypatch.undo()
            logs.reset_logging()
    with os.fdopen(read_fd, "rb") as source:
        assert json.loads(source.read())["event"] == "login.started"


def test_timestamp_is_now_in_utc(stream: io.StringIO) -> None:
    before = time.time()
    logs.get_logger().info("tick")
    [line] = _lines(stream)
    stamp = calendar.timegm(time.strptime(line["ts"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert before - 1 <= stamp + int(line["ts"][20:26]) / 1e6 <= time.time() + 1
