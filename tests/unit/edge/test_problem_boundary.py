"""Unit tests for the one edge stack (request context → problem boundary → dispatch), driven
with raw ASGI messages on both listeners (memory store, fake upstream, no sockets): one
problem+json shape everywhere, the admin listener included, a dead session cookie cleared
on every 401, each refusal audited once, the 500 path, and the request id in the answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.log_context import request_fields
from bffgate.session.model import NewTokens
from support.asgi_call import call

PUBLIC = "https://app.test"
COOKIE = "__Host-bffgate"
ADMIN_TOKEN = "a" * 32


class NoUpstream:
    async def send(self, *args: Any) -> Any:
        raise AssertionError("nothing here may reach the upstream")

    async def close(self) -> None:
        return None


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    settings = load_settings(environ={}, overrides={
        "server": {"public_url": PUBLIC, "admin_token": ADMIN_TOKEN},
        "oidc": {"issuer": "https://idp.test", "client_id": "bff", "client_secret": "s" * 24},
        "session": {"store": "memory"},
        "cookie": {"secret_keys": ["k" * 40]},
        "routes": [{"prefix": "/api", "upstream": "http://up.test", "token": "user"}],
    })
    gateway = Gateway(settings, upstream_factory=NoUpstream)
    await gateway.start(warm_idp=False)
    yield gateway
    await gateway.stop()


async def _ended_session_cookie(gw: Gateway) -> str:
    cookie, session = await gw.sessions.create(
        NewTokens("at", "rt", None, gw.clock.now() + 300), sub="alice", idp_sid=None, claims={})
    await gw.sessions.destroy(session)
    return cookie


def _events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e.get("event") == name]


# --- a dead cookie is cleared on every 401 ---------------------------------------------

@pytest.mark.parametrize("path", ["/bff/user", "/api/x"])
async def test_a_cookie_of_an_ended_session_is_cleared(gw: Gateway, path: str) -> None:
    """/bff/user never cleared a dead cookie, nor did the proxy for a session that was gone."""
    cookie = await _ended_session_cookie(gw)
    a = await call(gw.public, "GET", path, [("x-csrf", "1"), ("cookie", f"{COOKIE}={cookie}")])
    assert a.status == 401
    body = a.problem()
    assert body["type"].endswith("/not-authenticated")
    assert body["login_url"] == "/bff/login?returnUrl=/"
    assert a.cleared_cookie(COOKIE)


@pytest.mark.parametrize("path", ["/bff/user", "/api/x"])
async def test_a_tampered_cookie_is_cleared_and_audited(gw: Gateway, path: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path, [("x-csrf", "1"), ("cookie", f"{COOKIE}=v1.x")])
    assert a.status == 401 and a.cleared_cookie(COOKIE)
    assert [e["reason"] for e in _events(logs, "request.rejected")] == ["cookie_invalid"]


@pytest.mark.parametrize("path", ["/bff/user", "/api/x"])
async def test_no_cookie_clears_nothing_and_is_not_audited(gw: Gateway, path: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path, [("x-csrf", "1")])
    assert a.status == 401 and a.problem()["type"].endswith("/not-authenticated")
    assert "set-cookie" not in a.headers
    assert not _events(logs, "request.rejected")


# --- /bff/*: 404 and 405 are problems, audited ------------------------------------------

@pytest.mark.parametrize(("method", "path", "allow"), [
    pytest.param("POST", "/bff/user", "GET, HEAD", id="post-on-user"),
    pytest.param("DELETE", "/bff/login", "GET, HEAD", id="delete-on-login"),
    pytest.param("GET", "/bff/backchannel", "POST", id="get-on-backchannel"),
])
async def test_bff_method_not_allowed(gw: Gateway, method: str, path: str, allow: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, method, path, [("x-csrf", "1")])
    assert a.status == 405
    assert a.problem()["type"].endswith("/method-not-allowed")
    assert a.headers["allow"] == [allow]
    assert [e["reason"] for e in _events(logs, "request.rejected")] == ["method_not_allowed"]


@pytest.mark.parametrize("path", ["/bff", "/bff/nothing", "/bff/user/x"])
async def test_bff_unknown_path(gw: Gateway, path: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path)
    assert a.status == 404 and a.problem()["type"].endswith("/not-found")
    assert [e["reason"] for e in _events(logs, "request.rejected")] == ["no_route"]


async def test_head_is_served_where_get_is(gw: Gateway) -> None:
    a = await call(gw.public, "HEAD", "/bff/user", [("x-csrf", "1")])
    assert a.status == 401  # reached the endpoint: no session


# --- CSRF: audited once, by its own event ---------------------------------------------

@pytest.mark.parametrize("path", ["/bff/user", "/api/x"])
async def test_csrf_rejection_is_audited_once(gw: Gateway, path: str) -> None:
    with capture_logs() as logs:
        a = await call(gw.public, "GET", path)
    assert a.status == 401 and a.problem()["type"].endswith("/csrf-rejected")
    assert [e["reason"] for e in _events(logs, "csrf.rejected")] == ["csrf_header_missing"]
    assert not _events(logs, "request.rejected")
    assert b"bffgate_csrf_rejections_total 1.0" in gw.metrics.render()


# --- the admin listener answers problems too -------------------------------------------

@pytest.mark.parametrize(("method", "path", "headers", "status", "slug"), [
    pytest.param("GET", "/metrics", [], 401, "admin-token-required", id="no-admin-token"),
    pytest.param("GET", "/nothing", [], 404, "not-found", id="unknown-path"),
    pytest.param("GET", "/admin/sessions", [("authorization", f"Bearer {ADMIN_TOKEN}")], 400,
                 "bad-request", id="sessions-without-sub"),
    pytest.param("POST", "/healthz", [], 405, "method-not-allowed", id="post-on-healthz"),
])
async def test_admin_errors_are_problems(gw: Gateway, method: str, path: str,
                                         headers: list[tuple[str, str]], status: int,
                                         slug: str) -> None:
    """The admin listener answered ``{"error": ...}`` for a missing sub."""
    with capture_logs() as logs:
        a = await call(gw.admin, method, path, headers)
    assert a.status == status
    body = a.problem()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    assert body["request_id"] == a.headers["x-request-id"][0]
    assert len(_events(logs, "request.rejected")) == 1
    if status == 405:
        assert a.headers["allow"] == ["GET, HEAD"]


async def test_admin_healthz_still_plain_json(gw: Gateway) -> None:
    a = await call(gw.admin, "GET", "/healthz")
    assert a.status == 200 and json.loads(a.body) == {"status": "ok"}


# --- the 500 path and the request id ----------------------------------------------------

async def test_a_bug_is_a_500_problem_logged_with_its_request_id(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(value: str | None) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(gw.sessions, "from_cookie", broken)
    with capture_logs() as logs:
        a = await call(gw.public, "GET", "/bff/user", [("x-csrf", "1")])
    assert a.status == 500
    body = a.problem()
    assert body["type"].endswith("/internal-error") and "a bug" not in a.body.decode()
    failed = _events(logs, "request.failed")
    assert len(failed) == 1 and failed[0]["log_level"] == "error"
    assert request_fields()["request_id"] == body["request_id"]


async def test_the_request_id_is_answered(gw: Gateway) -> None:
    """The context is bound before anything can fail: the problem carries the id."""
    a = await call(gw.public, "GET", "/bff/nothing")
    rid = a.problem()["request_id"]
    assert a.headers["x-request-id"] == [rid]
    assert request_fields()["request_id"] == rid


async def test_a_client_gone_from_a_bff_endpoint_is_an_abort(gw: Gateway) -> None:
    """send() raising OSError while an endpoint answers (the connection is gone): one
    request.aborted warning, no request.failed, no second answer attempted."""
    scope = {"type": "http", "method": "GET", "path": "/bff/logout",
             "raw_path": b"/bff/logout", "query_string": b"", "headers": [(b"host", b"app.test")],
             "client": ("127.0.0.1", 1)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        raise ConnectionResetError

    with capture_logs() as logs:
        await gw.public(scope, receive, send)
    assert len(sent) == 1  # the 302's start; nothing after the connection was found gone
    assert sent[0]["status"] == 302
    aborted = _events(logs, "request.aborted")
    assert [(e["log_level"], e["reason"]) for e in aborted] == [("warning", "client_disconnected")]
    assert not _events(logs, "request.failed")
