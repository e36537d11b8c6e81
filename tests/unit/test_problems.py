"""Unit tests for problems.py: every GatewayError as an RFC 9457 problem+json response."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bffgate import errors
from bffgate.errors import GatewayError, NotAuthenticated, SessionEnded
from bffgate.problems import (
    CONTENT_TYPE,
    PROBLEM_BASE,
    problem_body,
    problem_parts,
    send_problem,
)


def _all_errors() -> list[type[GatewayError]]:
    found: list[type[GatewayError]] = [GatewayError]
    for cls in found:
        found.extend(c for c in cls.__subclasses__()
                     if c.__module__ == errors.__name__ and c not in found)
    return found


# The documented contract (errors.py tree), kept as data: class -> (status, slug).
EXPECTED = {
    "GatewayError": (500, "internal-error"),
    "BadRequest": (400, "bad-request"),
    "InvalidReturnUrl": (400, "invalid-return-url"),
    "LoginRejected": (400, "login-rejected"),
    "PathRejected": (400, "path-rejected"),
    "CsrfRejected": (401, "csrf-rejected"),
    "NotAuthenticated": (401, "not-authenticated"),
    "SessionEnded": (401, "session-ended"),
    "Forbidden": (403, "forbidden"),
    "ExchangeRefused": (403, "exchange-refused"),
    "RouteNotFound": (404, "not-found"),
    "MethodNotAllowed": (405, "method-not-allowed"),
    "BodyTooLarge": (413, "body-too-large"),
    "UpstreamUnavailable": (502, "upstream-unavailable"),
    "UpstreamTimeout": (504, "upstream-timeout"),
    "IdentityProviderUnavailable": (503, "idp-unavailable"),
    "RouteTokenUnavailable": (503, "token-unavailable"),
    "StoreUnavailable": (503, "store-unavailable"),
    "AmbiguousRequest": (400, "bad-request"),
    "ClientAborted": (499, "client-closed"),
}
ERRORS = [pytest.param(cls, id=cls.__name__) for cls in _all_errors()]


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for k, v in raw:
        out.setdefault(k.lower(), []).append(v)
    return out


def test_every_error_class_is_in_the_contract() -> None:
    """The table above covers exactly the GatewayError tree (a new class needs a row)."""
    assert {cls.__name__ for cls in _all_errors()} == set(EXPECTED)


@pytest.mark.parametrize("cls", ERRORS)
def test_status_and_type(cls: type[GatewayError]) -> None:
    """Each error has its documented status and a stable type URL ending with its slug."""
    status, slug = EXPECTED[cls.__name__]
    code, _, body = problem_parts(cls())
    problem = json.loads(body)
    assert code == status == problem["status"]
    assert problem["type"] == PROBLEM_BASE + slug
    assert problem["type"].endswith("/" + slug)
    assert problem["title"] == cls.title
    assert problem["detail"] == cls.title


@pytest.mark.parametrize("cls", ERRORS)
def test_problem_json_headers(cls: type[GatewayError]) -> None:
    """problem+json content type, exact length, never cached, no referrer, no sniffing."""
    _, raw, body = problem_parts(cls(), request_id="req-1")
    headers = _headers(raw)
    assert CONTENT_TYPE == "application/problem+json"
    assert headers[b"content-type"] == [b"application/problem+json"]
    assert headers[b"content-length"] == [str(len(body)).encode()]
    assert headers[b"cache-control"] == [b"no-store"]
    assert headers[b"pragma"] == [b"no-cache"]
    assert headers[b"referrer-policy"] == [b"no-referrer"]
    assert headers[b"x-content-type-options"] == [b"nosniff"]
    assert headers[b"x-request-id"] == [b"req-1"]


@pytest.mark.parametrize("cls", ERRORS)
def test_retry_after_exactly_for_503(cls: type[GatewayError]) -> None:
    """503s (IdP, store) carry Retry-After in seconds; nothing else does."""
    status, raw, _ = problem_parts(cls())
    retry = _headers(raw).get(b"retry-after")
    if status == 503:
        assert retry is not None
        assert retry[0].isdigit()
        assert int(retry[0]) > 0
    else:
        assert retry is None


@pytest.mark.parametrize("cls", ERRORS)
def test_body_is_plain_json_object(cls: type[GatewayError]) -> None:
    """The body has the RFC 9457 members and only known extensions."""
    problem = json.loads(problem_parts(cls(), request_id="r")[2])
    assert set(problem) <= {"type", "title", "status", "detail", "instance", "request_id",
                            "login_url"}


@pytest.mark.parametrize(
    "cls",
    [pytest.param(NotAuthenticated, id="NotAuthenticated"),
     pytest.param(SessionEnded, id="SessionEnded")],
)
def test_login_url_for_not_authenticated(cls: type[NotAuthenticated]) -> None:
    """401 'log in again' problems tell the SPA where to send the browser."""
    exc = cls(login_url="/bff/login?returnUrl=%2Forders")
    assert problem_body(exc)["login_url"] == "/bff/login?returnUrl=%2Forders"


def test_no_login_url_when_none_is_known() -> None:
    """Without a login_url the member is omitted, not empty."""
    assert "login_url" not in problem_body(NotAuthenticated())


def test_other_401s_have_no_login_url() -> None:
    """A CSRF rejection is not a 'log in again' (no login_url member)."""
    assert "login_url" not in problem_body(errors.CsrfRejected())


def test_detail_and_reason() -> None:
    """A custom detail is shown; the internal reason (for audit) never is."""
    exc = errors.PathRejected("The path contains '..'", reason="path:dot_segment")
    body = problem_body(exc, instance="/api/x")
    assert body["detail"] == "The path contains '..'"
    assert body["instance"] == "/api/x"
    assert "path:dot_segment" not in json.dumps(body)
    assert exc.reason == "path:dot_segment"
    assert errors.PathRejected().reason == "path-rejected"


def test_extra_headers_are_appended() -> None:
    """Callers can add headers (e.g. a Set-Cookie clearing the session)."""
    extra = [(b"set-cookie", b"__Host-bffgate=; Max-Age=0; Path=/; Secure")]
    _, raw, _ = problem_parts(SessionEnded(), extra_headers=extra)
    assert extra[0] in raw


async def test_send_problem_emits_start_and_body() -> None:
    """send_problem sends one http.response.start and one complete body."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await send_problem(send, errors.StoreUnavailable(), request_id="req-9")
    start, body = sent
    assert start["type"] == "http.response.start"
    assert start["status"] == 503
    assert (b"retry-after", b"2") in start["headers"]
    assert body["type"] == "http.response.body"
    assert json.loads(body["body"])["request_id"] == "req-9"
    assert body.get("more_body", False) is False
