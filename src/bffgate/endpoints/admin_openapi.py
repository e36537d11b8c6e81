"""The admin listener's OpenAPI 3.1 document, served at GET /admin/openapi.json.

It describes every path of the admin listener (the probes, /metrics and the sessions API of
endpoints/admin_api.py); tests/unit/endpoints/test_admin_openapi.py validates it and checks
that its paths and methods are exactly the routes the listener serves.
"""

from __future__ import annotations

from typing import Any

from bffgate import __version__

_TIME = {"type": ["string", "null"], "format": "date-time"}
SESSION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "sub", "created_at", "last_seen_at", "expires_at", "idle_expires_at",
                 "refreshed_at", "refresh_count", "client_ip", "user_agent", "idp_sid", "audit_session"],
    "properties": {
        "id": {"type": "string", "description": "Admin handle of the session: random per "
               "session, with the sub base64url-encoded after the dot. Never the cookie, the "
               "session id or the store key, nor derived from them."},
        "sub": {"type": "string", "description": "The user's subject at the IdP."},
        "created_at": {**_TIME, "type": "string", "description": "Login time (RFC 3339, UTC)."},
        "last_seen_at": {**_TIME, "type": "string", "description":
                         "The session's last request, derived from its sliding idle TTL "
                         "(about 1 s behind: the near-cache reads the store once a second). "
                         "In the last idle_timeout before expires_at: the earliest it can "
                         "be (expires_at - idle_timeout)."},
        "expires_at": {**_TIME, "type": "string",
                       "description": "Absolute expiry (session.absolute_timeout)."},
        "idle_expires_at": {**_TIME, "type": "string", "description":
                            "When it ends unless used again (session.idle_timeout)."},
        "refreshed_at": {**_TIME, "description": "Last token refresh; null: never."},
        "refresh_count": {"type": "integer", "minimum": 0},
        "client_ip": {"type": ["string", "null"], "description":
                      "The login callback's client address (after server.trusted_proxies); "
                      "null for a session created before this was recorded."},
        "user_agent": {"type": ["string", "null"], "maxLength": 256,
                       "description": "The login callback's User-Agent, truncated."},
        "idp_sid": {"type": ["string", "null"], "pattern": "^[0-9a-f]{16}$", "description":
                    "16 hex characters of SHA-256 of the IdP session id (sid claim); "
                    "sessions of one IdP session share it."},
        "audit_session": {"type": "string", "pattern": "^[0-9a-f]{16}$", "description":
                          "The value of the audit log's session field in this session's "
                          "events (login, refresh, proxied requests, its end)."},
    },
}
_PROBLEM_REF = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM_REF}


def _json(description: str, schema: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


_ERRORS = {"401": {"$ref": "#/components/responses/Unauthorized"},
           "405": {"$ref": "#/components/responses/MethodNotAllowed"}}
_SUB_QUERY = {"name": "sub", "in": "query", "required": True, "schema": {"type": "string"},
              "description": "The user's subject (sub claim)."}
_ID_PATH = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"},
            "description": "A session's id, as listed."}
_SUB_PATH = {"name": "sub", "in": "path", "required": True, "schema": {"type": "string"},
             "description": "The user's subject, percent-encoded."}


def _op(op_id: str, summary: str, ok: dict[str, Any], *, params: list[Any] | None = None,
        extra: dict[str, Any] | None = None, secured: bool = True,
        deprecated: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": op_id, "summary": summary,
                          "responses": {"200": ok, **(_ERRORS if secured else {}),
                                        **(extra or {})}}
    if params:
        op["parameters"] = params
    if not secured:
        op["security"] = []
    if deprecated:
        op["deprecated"] = True
    return op


def admin_document() -> dict[str, Any]:
    bad_sub = {"400": {"$ref": "#/components/responses/BadRequest"}}
    not_found = {"404": {"$ref": "#/components/responses/NotFound"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "bffgate admin API", "version": __version__, "description":
                 "The admin listener (server.admin_listen): health, readiness, metrics and "
                 "sessions. Keep it private. Every error is application/problem+json "
                 "(RFC 9457). Times are RFC 3339 UTC with milliseconds."},
        "security": [{"adminToken": []}],
        "paths": {
            "/healthz": {"get": _op("healthz", "Liveness", {"description": "Alive"},
                                    secured=False)},
            "/readyz": {"get": _op("readyz", "Readiness: the store answers (the IdP is "
                                   "probed and reported, not decisive)",
                                   {"description": "Ready"}, secured=False,
                                   extra={"503": {"description": "The store is unavailable"}})},
            "/metrics": {"get": _op("metrics", "Prometheus metrics",
                                    {"description": "Prometheus text format",
                                     "content": {"text/plain": {"schema": {"type": "string"}}}})},
            "/admin/openapi.json": {"get": _op("openapi", "This document",
                                               {"description": "OpenAPI 3.1"})},
            "/admin/sessions": {
                "get": _op("listSessions", "The live sessions of a user, oldest first",
                           _json("The sessions", "SessionList"), params=[_SUB_QUERY],
                           extra=bad_sub),
                "delete": _op("revokeSessionsBySubQuery", "End every session of a user "
                              "(older spelling of DELETE /admin/users/{sub}/sessions)",
                              _json("How many ended", "Revoked"), params=[_SUB_QUERY],
                              extra=bad_sub, deprecated=True),
            },
            "/admin/sessions/{id}": {
                "get": _op("showSession", "One session", _json("The session", "Session"),
                           params=[_ID_PATH], extra=not_found),
                "delete": _op("revokeSession", "End one session (audit session.revoked, "
                              "reason admin); its cookie gets 401 from then on",
                              _json("Ended", "Revoked"), params=[_ID_PATH], extra=not_found),
            },
            "/admin/users/{sub}/sessions": {
                "delete": _op("revokeUserSessions", "End every session of a user (audit "
                              "session.revoked per session, reason admin); 0 when none",
                              _json("How many ended", "Revoked"), params=[_SUB_PATH]),
            },
        },
        "components": {
            "securitySchemes": {"adminToken": {
                "type": "http", "scheme": "bearer",
                "description": "server.admin_token (none needed when it is empty)"}},
            "schemas": {
                "Session": SESSION_SCHEMA,
                "SessionList": {"type": "object", "additionalProperties": False,
                                "required": ["sessions"],
                                "properties": {"sessions": {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Session"}}}},
                "Revoked": {"type": "object", "required": ["revoked"],
                            "properties": {"revoked": {"type": "integer", "minimum": 0}}},
                "Problem": {"type": "object", "required": ["type", "title", "status"],
                            "properties": {"type": {"type": "string", "format": "uri"},
                                           "title": {"type": "string"},
                                           "status": {"type": "integer"},
                                           "detail": {"type": "string"},
                                           "request_id": {"type": "string"}}},
            },
            "responses": {
                "BadRequest": _problem("A query parameter is missing or repeated (named in "
                                       "detail)"),
                "Unauthorized": _problem("No or a wrong bearer token (WWW-Authenticate: "
                                         "Bearer)"),
                "NotFound": _problem("No live session has this id"),
                "MethodNotAllowed": _problem("Method not allowed (Allow lists the methods)"),
            },
        },
    }
