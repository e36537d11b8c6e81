"""The one place a GatewayError becomes an RFC 9457 application/problem+json response
(sent by the edge's problem boundary, bffgate.edge.boundary, for every listener)."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Send

from bffgate.errors import GatewayError, NotAuthenticated

PROBLEM_BASE = "https://bffgate.dev/problems/"
CONTENT_TYPE = "application/problem+json"

# Headers every gateway-generated response carries (auth-flow and error responses must
# never be cached, and must not leak the URL they came from).
NO_STORE = [
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
]


def problem_body(exc: GatewayError, *, request_id: str | None = None,
                 instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + exc.slug,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if isinstance(exc, NotAuthenticated) and exc.login_url:
        body["login_url"] = exc.login_url
    return body


def problem_parts(exc: GatewayError, *, request_id: str | None = None,
                  extra_headers: list[tuple[bytes, bytes]] | None = None,
                  ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body bytes: for ``send_problem`` (the edge's problem
    boundary) and for the HTTP protocol's framing refusals, written before any ASGI app."""
    payload = json.dumps(problem_body(exc, request_id=request_id)).encode()
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(payload)).encode()),
        *NO_STORE,
        *(extra_headers or []),
    ]
    if exc.retry_after is not None:
        headers.append((b"retry-after", str(exc.retry_after).encode()))
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    return exc.status, headers, payload


async def send_problem(send: Send, exc: GatewayError, *, request_id: str | None = None,
                       extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    status, headers, body = problem_parts(exc, request_id=request_id,
                                          extra_headers=extra_headers)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
