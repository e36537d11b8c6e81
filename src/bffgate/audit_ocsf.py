"""``log.audit_format = "ocsf"``: login, logout and session audit events as OCSF 1.x
Authentication records (class 3002, category 3 Identity & Access Management).

A structlog processor placed after the context merge and the timestamp, before redaction
(so the record's strings are scrubbed like any other line's). Other events pass unchanged
and stay in the JSON form of the audit schema. ``session.uid`` is the short session hash
of the JSON form, never the session id or the cookie.

Activities: Logon (1) for login.*, Logoff (2) for the end of a session (logout, re-login,
expiry, revocation, eviction, back-channel logout), Other (99) for session creation and
refresh. Status: Success (1) / Failure (2), Unknown (0) for a login only started; the
JSON form's ``reason`` (and ``detail``) go to ``status_detail``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import MutableMapping
from typing import Any

from bffgate import __version__

OCSF_VERSION = "1.5.0"
CLASS_UID, CATEGORY_UID = 3002, 3
LOGON, LOGOFF, OTHER = 1, 2, 99
_ACTIVITY_NAMES = {LOGON: "Logon", LOGOFF: "Logoff"}
UNKNOWN, SUCCESS, FAILURE = 0, 1, 2
_STATUS_NAMES = {UNKNOWN: "Unknown", SUCCESS: "Success", FAILURE: "Failure"}
# event -> (activity_id, the activity's name for Other, status_id, or None: by level)
EVENTS: dict[str, tuple[int, str, int | None]] = {
    "login.started": (LOGON, "", UNKNOWN),
    "login.succeeded": (LOGON, "", SUCCESS),
    "login.failed": (LOGON, "", FAILURE),
    "session.created": (OTHER, "Session Created", SUCCESS),
    "session.refreshed": (OTHER, "Session Refresh", SUCCESS),
    "session.refresh_failed": (OTHER, "Session Refresh", FAILURE),
    "session.expired": (LOGOFF, "", SUCCESS),
    "session.ended": (LOGOFF, "", SUCCESS),
    "session.revoked": (LOGOFF, "", SUCCESS),
    "session.evicted": (LOGOFF, "", SUCCESS),
    "logout.backchannel": (LOGOFF, "", None),  # refused (warning): Failure
}
_SEVERITY = {"info": (1, "Informational"), "warning": (3, "Medium")}
_PRODUCT = {"name": "bffgate", "vendor_name": "bffgate", "version": __version__}
_HOST = socket.gethostname()


def to_ocsf(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the OCSF Authentication record of a mapped audit event."""
    if event_dict.get("audit") is not True:
        return event_dict
    event = event_dict.get("event")
    if not isinstance(event, str) or event not in EVENTS:
        return event_dict
    mapping = EVENTS[event]
    activity, other_name, status = mapping
    level = str(event_dict.get("level", "info"))
    if status is None:
        status = FAILURE if level == "warning" else SUCCESS
    severity_id, severity = _SEVERITY.get(level, (0, "Unknown"))
    activity_name = _ACTIVITY_NAMES.get(activity, other_name)
    record: dict[str, Any] = {
        "activity_id": activity, "activity_name": activity_name,
        "category_uid": CATEGORY_UID, "category_name": "Identity & Access Management",
        "class_uid": CLASS_UID, "class_name": "Authentication",
        "type_uid": CLASS_UID * 100 + activity, "type_name": f"Authentication: {activity_name}",
        "time": int(time.time() * 1000),
        "severity_id": severity_id, "severity": severity,
        "status_id": status, "status": _STATUS_NAMES[status],
        "message": event,
        "metadata": _metadata(event, event_dict.get("request_id")),
        "user": _user(event_dict.get("sub")),
        "service": {"name": "bffgate"},
        "dst_endpoint": {"hostname": _HOST},
    }
    detail = ": ".join(str(v) for v in (event_dict.get("reason"), event_dict.get("detail")) if v)
    if detail:
        record["status_detail"] = detail
    if event_dict.get("client_ip"):
        record["src_endpoint"] = {"ip": event_dict["client_ip"]}
    if event_dict.get("session"):
        record["session"] = {"uid": event_dict["session"]}
    request = _http_request(event_dict)
    if request:
        record["http_request"] = request
    if "count" in event_dict:
        record["unmapped"] = {"count": event_dict["count"]}
    return record


def _metadata(event: str, request_id: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"version": OCSF_VERSION, "product": _PRODUCT, "log_name": "audit",
                            "event_code": event}
    if request_id:
        meta["correlation_uid"] = request_id
    return meta


def _user(sub: Any) -> dict[str, Any]:
    if sub:
        return {"uid": sub, "name": sub, "type_id": 1, "type": "User"}
    return {"name": "unknown", "type_id": 0, "type": "Unknown"}  # a login not yet done


def _http_request(event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    if event_dict.get("method"):
        request["http_method"] = event_dict["method"]
    if event_dict.get("path"):
        request["url"] = {"path": event_dict["path"]}
    if event_dict.get("user_agent"):
        request["user_agent"] = event_dict["user_agent"]
    return request
