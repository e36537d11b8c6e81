"""Unit tests for the log pipeline: the redaction processor and the JSON render path."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from bffgate import logs
from bffgate.logs import REDACTED, SECRET_KEYS, configure_logging, get_logger, on_redaction, redact

JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYS0xIn0"
       ".eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE3MDAwMDAzMDB9"
       ".c2lnbmF0dXJlLWJ5dGVzLWhlcmUtYW5kLW1vcmUtYnl0ZXM")
COOKIE = "v1." + "A" * 43 + "." + "b" * 43 + "." + "c_-" * 14 + "d"


def _variants(key: str) -> list[str]:
    """A key as callers might spell it: as is, upper, title, with '-' for '_'."""
    dashed = key.replace("_", "-")
    return sorted({key, key.upper(), key.title(), dashed, dashed.upper(), dashed.title()})


SECRET_KEY_MATRIX = [
    pytest.param(spelling, id=spelling) for key in sorted(SECRET_KEYS) for spelling in _variants(key)
]


def _run(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


@pytest.fixture
def hooks() -> Iterator[list[int]]:
    """Collect redaction counts; unregister afterwards."""
    seen: list[int] = []
    on_redaction(seen.append)
    yield seen
    logs.remove_redaction_hook(seen.append)


# --- by key -------------------------------------------------------------------------------


@pytest.mark.parametrize("key", SECRET_KEY_MATRIX)
def test_secret_key_is_redacted_at_top_level(key: str) -> None:
    """Every SECRET_KEYS name, in any case and with '-' or '_', is redacted."""
    out = _run(event="x", **{key: "super-secret-value"})
    assert out[key] == REDACTED


@pytest.mark.parametrize("key", SECRET_KEY_MATRIX)
def test_secret_key_is_redacted_when_nested(key: str) -> None:
    """The same names are redacted inside dicts, lists, tuples and dicts in lists."""
    out = _run(event="x", request={"headers": {key: "v1"}, "items": [{key: "v2"}],
                                   "pairs": ({key: "v3"},)})
    assert out["request"]["headers"][key] == REDACTED
    assert out["request"]["items"][0][key] == REDACTED
    assert out["request"]["pairs"][0][key] == REDACTED


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"nested": "dict"}, id="dict"),
        pytest.param(["a", "list"], id="list"),
        pytest.param(12345, id="int"),
        pytest.param(None, id="none"),
    ],
)
def test_secret_key_is_redacted_whatever_its_value(value: Any) -> None:
    """A secret key's value is replaced whole, whatever its type."""
    assert _run(event="x", refresh_token=value)["refresh_token"] == REDACTED


def test_config_secret_names_are_secret_keys() -> None:
    """Every Secret-typed config key name (bar redis.url) is also a redacted log key."""
    from dataclasses import fields

    from bffgate import config

    secret_fields = {
        f.name
        for cls in (config.ServerSettings, config.OidcSettings, config.CookieSettings,
                    config.RedisSettings)
        for f in fields(cls) if "Secret" in str(f.type)
    }
    assert secret_fields - {"url"} <= SECRET_KEYS


# --- by value shape -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "leak"),
    [
        pytest.param(JWT, JWT, id="jwt-alone"),
        pytest.param(f"got token {JWT} from idp", JWT, id="jwt-in-text"),
        pytest.param("Bearer abcdefghijklmnop", "abcdefghijklmnop", id="bearer"),
        pytest.param("authorization: bearer abc.def-ghi_jkl", "abc.def-ghi_jkl", id="bearer-lower"),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA==", id="basic"),
        pytest.param(COOKIE, COOKIE[3:], id="cookie-value"),
        pytest.param(f"__Host-bffgate={COOKIE}; other=1", COOKIE[3:], id="cookie-header"),
        pytest.param("/bff/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj",
                     "SplxlOBeZQQYbYS6WxSbIA", id="url-code"),
        pytest.param("/bff/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj",
                     "af0ifjsldkj", id="url-state"),
        pytest.param("https://idp/end?id_token_hint=abc123&post_logout_redirect_uri=/",
                     "abc123", id="url-id-token-hint"),
        pytest.param("https://api/x?access_token=tok987#frag", "tok987", id="url-access-token"),
        pytest.param("/bff/logout?sid=logout-id-42", "logout-id-42", id="url-logout-sid"),
        pytest.param("/cb?STATE=upper-case-state", "upper-case-state", id="url-upper-param"),
    ],
)
def test_secret_looking_values_under_innocent_keys(value: str, leak: str) -> None:
    """JWTs, bearer/basic credentials, our cookie values and secret query values go."""
    out = _run(event="x", detail=value, nested={"list": [value]})
    assert leak not in out["detail"]
    assert REDACTED in out["detail"]
    assert leak not in out["nested"]["list"][0]


def test_url_keeps_its_shape_when_redacted() -> None:
    """Only the values go: path, parameter names and harmless parameters stay readable."""
    out = _run(event="x", url="/bff/callback?code=abc123&state=def456&iss=https%3A%2F%2Fidp")
    assert out["url"] == (f"/bff/callback?code={REDACTED}&state={REDACTED}"
                          "&iss=https%3A%2F%2Fidp")


def test_bearer_scheme_stays_readable() -> None:
    """'Bearer <token>' becomes 'Bearer [REDACTED]' (the scheme helps debugging)."""
    assert _run(event="x", h="Bearer abcdefghijklmnop")["h"] == f"Bearer {REDACTED}"


def test_bytes_are_redacted() -> None:
    """Raw bytes (e.g. a header value) are never rendered."""
    assert _run(event="x", raw=b"Cookie: x")["raw"] == REDACTED


def test_event_text_is_scrubbed_too() -> None:
    """Even the event message is scrubbed of secret-looking values."""
    assert JWT not in _run(event=f"token was {JWT}")["event"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("event", "request.proxied", id="event"),
        pytest.param("sub", "248289761001", id="sub"),
        pytest.param("path", "/api/orders/42", id="path"),
        pytest.param("url", "/api/orders?page=2&sort=desc", id="url-innocent-query"),
        pytest.param("status", 200, id="status"),
        pytest.param("duration_ms", 12.5, id="duration"),
        pytest.param("session", "3f2a9c0d1e7b4a56", id="session-short-hash"),
        pytest.param("user_agent", "Mozilla/5.0 (X11; Linux x86_64)", id="user-agent"),
        pytest.param("reason", "invalid_grant", id="reason"),
        pytest.param("client_ip", "203.0.113.7", id="client-ip"),
        pytest.param("token_type", "Bearer", id="token-type-word"),
        pytest.param("flag", True, id="bool"),
        pytest.param("note", "version v1.2.3 deployed", id="version-string"),
        pytest.param("scopes", ["openid", "profile"], id="list"),
    ],
)
def test_ordinary_fields_are_untouched(key: str, value: Any) -> None:
    """Fields from the audit catalogue pass unchanged."""
    assert _run(**{key: value})[key] == value


def test_deep_nesting_is_cut_off() -> None:
    """Structures nested deeper than the scrubber follows are redacted, not rendered."""
    deep: Any = "innocent"
    for _ in range(10):
        deep = {"d": deep}
    out = _run(event="x", deep=deep)
    assert "innocent" not in json.dumps(out)


def test_redaction_hook_counts_per_line(hooks: list[int]) -> None:
    """Registered hooks learn how many values a line had redacted; none for clean lines."""
    _run(event="x", access_token="a", h="Bearer abcdefghijkl", ok="fine")
    _run(event="clean", ok="fine")
    assert hooks == [2]


def test_input_is_not_mutated_for_nested_values() -> None:
    """A caller's nested dict is copied, not rewritten in place."""
    headers = {"authorization": "Bearer abcdefghijklmnop"}
    _run(event="x", headers=headers)
    assert headers == {"authorization": "Bearer abcdefghijklmnop"}


# --- the render path ----------------------------------------------------------------------


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Configure the real pipeline into a buffer; restore structlog's defaults afterwards."""
    buffer = io.StringIO()
    configure_logging("info", "json", stream=buffer)
    yield buffer
    logs.reset_logging()


def _lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_end_to_end(stream: io.StringIO) -> None:
    """A log call renders one JSON line with ts, level, event, and no secret anywhere."""
    get_logger().info("login.succeeded", sub="user-1", access_token="at-secret",
                      url="/bff/callback?code=code-secret&state=state-secret",
                      headers={"Cookie": "__Host-bffgate=" + COOKIE}, detail=f"id {JWT}")
    text = stream.getvalue()
    for secret in ("at-secret", "code-secret", "state-secret", COOKIE[3:], JWT):
        assert secret not in text
    [line] = _lines(stream)
    assert line["event"] == "login.succeeded"
    assert line["level"] == "info"
    assert line["sub"] == "user-1"
    assert line["access_token"] == REDACTED
    assert line["headers"]["Cookie"] == REDACTED
    assert line["ts"].endswith("Z")


def test_context_variables_are_merged_and_redacted(stream: io.StringIO) -> None:
    """Values bound in contextvars (request_id, ...) appear; secret ones are redacted."""
    structlog.contextvars.bind_contextvars(request_id="req-1", authorization="Bearer xyz12345")
    try:
        get_logger().info("request.proxied", status=200)
    finally:
        structlog.contextvars.clear_contextvars()
    [line] = _lines(stream)
    assert line["request_id"] == "req-1"
    assert line["authorization"] == REDACTED
    assert "xyz12345" not in stream.getvalue()


def test_exception_text_is_redacted(stream: io.StringIO) -> None:
    """A traceback mentioning a token is rendered with the token removed."""
    try:
        raise ValueError(f"refresh failed for Bearer abcdefghijklmnop and {JWT}")
    except ValueError:
        get_logger().exception("session.refresh_failed")
    [line] = _lines(stream)
    assert "abcdefghijklmnop" not in line["exception"]
    assert JWT not in line["exception"]
    assert "ValueError" in line["exception"]


def test_level_filtering(stream: io.StringIO) -> None:
    """Below the configured level nothing is written."""
    get_logger().debug("noise")
    get_logger().warning("csrf.rejected", reason="missing_header")
    assert [line["event"] for line in _lines(stream)] == ["csrf.rejected"]


def test_console_format_is_redacted_too() -> None:
    """The console renderer sits behind the same redaction processor."""
    buffer = io.StringIO()
    configure_logging("info", "console", stream=buffer)
    try:
        get_logger().info("login.succeeded", refresh_token="rt-secret", h="Bearer abcdefghijkl")
    finally:
        logs.reset_logging()
    assert "rt-secret" not in buffer.getvalue()
    assert "abcdefghijkl" not in buffer.getvalue()
    assert "login.succeeded" in buffer.getvalue()


def test_library_warnings_become_redacted_json_lines() -> None:
    """A library's own stdlib warning (OpenTelemetry quoting a tracestate, aiohttp, redis-py)
    is one JSON line through the same redaction, not plain text on stderr."""
    import logging

    out = io.StringIO()
    configure_logging("info", stream=out)
    try:
        logging.getLogger("opentelemetry.trace.span").warning(
            "Member doesn't match the w3c identifiers format %s", "x Bearer abcdefghijklmnop")
        logging.getLogger("aiohttp.client").info("below WARNING: not written")
    finally:
        logs.reset_logging()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "library.log" and line["logger"] == "opentelemetry.trace.span"
    assert line["level"] == "warning" and "abcdefghijklmnop" not in line["message"]
    assert logging.root.handlers.count(logs._LIBRARY_RECORDS) == 0  # reset removes it


class _Fd:
    """A pipe to read what the sink wrote, write by write."""

    def __init__(self) -> None:
        import os

        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        self.file = os.fdopen(self.w, "w")

    def read(self) -> bytes:
        import os

        try:
            return os.read(self.r, 1 << 20)
        except BlockingIOError:
            return b""


async def test_held_lines_leave_together_after_the_interval() -> None:
    """log.flush_interval: lines written on an event loop are held, then written in one
    write once the interval has passed; flush() writes what is held at once."""
    import asyncio

    pipe = _Fd()
    sink = logs.LineSink(pipe.file)
    sink.hold(0.05)
    sink.msg(b'{"a":1}\n')
    sink.msg(b'{"a":2}\n')
    assert pipe.read() == b""
    await asyncio.sleep(0.15)
    assert pipe.read() == b'{"a":1}\n{"a":2}\n'
    sink.msg(b'{"a":3}\n')
    sink.flush()
    assert pipe.read() == b'{"a":3}\n'
    sink.msg(b"x" * (64 * 1024))  # the size bound: written at once
    assert len(pipe.read()) == 64 * 1024
    sink.hold(0)
    sink.msg(b'{"a":4}\n')
    assert pipe.read() == b'{"a":4}\n'


def test_without_an_event_loop_a_line_is_written_at_once() -> None:
    pipe = _Fd()
    sink = logs.LineSink(pipe.file)
    sink.hold(5.0)
    sink.msg(b'{"cli":1}\n')
    assert pipe.read() == b'{"cli":1}\n'
