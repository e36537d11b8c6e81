"""Unit tests of ``log.audit_format = "ocsf"``: login, logout and session audit events as
OCSF Authentication records (class 3002), checked against the OCSF schema's own class
definition (support.ocsf_check reads the schema pydantic-ocsf ships); every other event
keeps the JSON form; redaction applies to the records too."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from bffgate.audit_ocsf import EVENTS, OCSF_VERSION
from bffgate.config import LogSettings, load_settings
from bffgate.config.errors import ConfigError
from support import ocsf_check
from support.audit_check import line_errors

JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0"
       ".eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAzMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmUtYnl0ZXM")
SESSION = "3f2a9c0d1e7b4a56"
# each mapped event as the gateway emits it (level, fields)
EMITTED: dict[str, tuple[str, dict[str, Any]]] = {
    "login.started": ("info", {}),
    "login.succeeded": ("info", {"sub": "alice", "session": SESSION}),
    "login.failed": ("warning", {"reason": "state_unknown"}),
    "session.created": ("info", {"sub": "alice", "session": SESSION}),
    "session.refreshed": ("info", {"sub": "alice", "session": SESSION}),
    "session.refresh_failed": ("warning", {"reason": "invalid_grant", "sub": "alice",
                                           "session": SESSION}),
    "session.expired": ("info", {"reason": "access_token_expired", "sub": "alice",
                                 "session": SESSION}),
    "session.ended": ("info", {"reason": "logout", "sub": "alice", "session": SESSION,
                               "detail": "refresh_token_revoked=True"}),
    "session.revoked": ("info", {"reason": "admin", "sub": "alice", "session": SESSION}),
    "session.evicted": ("info", {"reason": "max_per_user", "sub": "alice", "session": SESSION}),
    "logout.backchannel": ("info", {"sub": "alice", "count": 2, "status": 200, "reason": "sub"}),
}


@pytest.fixture
def records() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    logs.configure_logging("info", "json", stream=buffer, audit_format="ocsf")
    structlog.contextvars.bind_contextvars(
        request_id="5d3c0b1e9a7f42c18e6b2a40", client_ip="203.0.113.7",
        user_agent="Mozilla/5.0", method="GET", path="/bff/callback")
    yield buffer
    structlog.contextvars.clear_contextvars()
    logs.reset_logging()


def _emit(name: str, **extra: Any) -> None:
    level, fields = EMITTED[name]
    audit.emit(AuditEvent(name), level=level, **{**fields, **extra})


def _only(buffer: io.StringIO) -> dict[str, Any]:
    [line] = buffer.getvalue().splitlines()
    return json.loads(line)  # type: ignore[no-any-return]


def test_every_login_logout_and_session_event_is_mapped() -> None:
    names = {e.value for e in AuditEvent}
    assert set(EVENTS) <= names
    assert {n for n in names if n.split(".")[0] in {"login", "session", "logout"}} == set(EVENTS)
    assert set(EMITTED) == set(EVENTS)


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_each_record_is_a_valid_ocsf_authentication(records: io.StringIO, name: str) -> None:
    """Against the claimed version (full check) and the newest bundled one; the required
    attributes of class 3002 in every bundled OCSF 1.x version."""
    _emit(name)
    record = _only(records)
    assert record["metadata"]["version"] == OCSF_VERSION
    assert ocsf_check.errors(record) == []
    assert ocsf_check.errors(record, ocsf_check.versions()[-1]) == []
    for version in ocsf_check.versions():
        assert ocsf_check.errors(record, version, required_only=True) == [], version
    assert line_errors(records.getvalue()) == []  # what the suite-wide check does with it


@pytest.mark.parametrize(
    ("name", "activity", "status", "detail"),
    [
        pytest.param("login.started", 1, "Unknown", None, id="login-started"),
        pytest.param("login.succeeded", 1, "Success", None, id="logon"),
        pytest.param("login.failed", 1, "Failure", "state_unknown", id="logon-failed"),
        pytest.param("session.created", 99, "Success", None, id="created"),
        pytest.param("session.refreshed", 99, "Success", None, id="refresh"),
        pytest.param("session.refresh_failed", 99, "Failure", "invalid_grant", id="refresh-failed"),
        pytest.param("session.ended", 2, "Success", "logout: refresh_token_revoked=True",
                     id="logoff"),
        pytest.param("session.revoked", 2, "Success", "admin", id="revoked"),
        pytest.param("logout.backchannel", 2, "Success", "sub", id="backchannel"),
    ],
)
def test_activity_and_status(records: io.StringIO, name: str, activity: int, status: str,
                             detail: str | None) -> None:
    _emit(name)
    record = _only(records)
    assert (record["class_uid"], record["category_uid"]) == (3002, 3)
    assert record["activity_id"] == activity
    assert record["type_uid"] == 300200 + activity
    assert record["status"] == status
    assert record.get("status_detail") == detail
    assert record["message"] == name
    assert isinstance(record["time"], int) and record["time"] > 1_700_000_000_000


def test_a_refused_backchannel_logout_is_a_failed_logoff(records: io.StringIO) -> None:
    audit.emit(AuditEvent.LOGOUT_BACKCHANNEL, level="warning", reason="logout_token_missing",
               status=400)
    record = _only(records)
    assert (record["activity_id"], record["status_id"], record["severity_id"]) == (2, 2, 3)
    assert record["user"] == {"name": "unknown", "type_id": 0, "type": "Unknown"}


def test_user_source_session_and_request(records: io.StringIO) -> None:
    """user from sub, src_endpoint from the client address, session.uid = the short hash
    (never the cookie), the request id as correlation uid, the HTTP request."""
    _emit("login.succeeded")
    record = _only(records)
    assert record["user"] == {"uid": "alice", "name": "alice", "type_id": 1, "type": "User"}
    assert record["src_endpoint"] == {"ip": "203.0.113.7"}
    assert record["session"] == {"uid": SESSION}
    assert record["metadata"]["correlation_uid"] == "5d3c0b1e9a7f42c18e6b2a40"
    assert record["metadata"]["product"]["name"] == "bffgate"
    assert record["http_request"] == {"http_method": "GET", "url": {"path": "/bff/callback"},
                                      "user_agent": "Mozilla/5.0"}


def test_other_events_keep_the_json_form(records: io.StringIO) -> None:
    audit.emit(AuditEvent.REQUEST_PROXIED, route="/api", status=200, duration_ms=1.0)
    line = _only(records)
    assert line["audit"] is True and line["event"] == "request.proxied"
    assert "class_uid" not in line
    assert line_errors(records.getvalue()) == []


def test_ocsf_records_are_redacted(records: io.StringIO) -> None:
    counted: list[int] = []
    logs.on_redaction(counted.append)
    try:
        structlog.contextvars.bind_contextvars(user_agent="curl Bearer abcdefghijklmnop",
                                               path="/bff/callback?code=SplxlOBeZQQ&state=af0ifj")
        _emit("login.failed", reason=f"idp_error:{JWT}")
    finally:
        logs.remove_redaction_hook(counted.append)
    text = records.getvalue()
    for leak in ("abcdefghijklmnop", "SplxlOBeZQQ", "af0ifj", JWT):
        assert leak not in text
    assert counted == [4]
    assert ocsf_check.errors(json.loads(text)) == []


def test_the_config_key() -> None:
    """Default json; another value is refused naming the key and the choices."""
    assert LogSettings().audit_format == "json"
    with pytest.raises(ConfigError, match=r"log\.audit_format: must be one of json, ocsf; got 'cef'"):
        load_settings(None, environ={"BFFGATE_LOG__AUDIT_FORMAT": "cef"})
