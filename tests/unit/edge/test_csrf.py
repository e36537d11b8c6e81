"""Unit tests for bffgate.edge.csrf: the check, and the rejection (metric, audit, raise)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from bffgate.edge.csrf import CsrfGuard, csrf_failure
from bffgate.errors import AmbiguousRequest, CsrfRejected

ORIGIN = "https://app.example.com"
H = list[tuple[bytes, bytes]]


def _h(*pairs: tuple[str, str]) -> H:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


# --- CSRF check --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        pytest.param("GET", [("x-csrf", "1")], None, id="get-ok"),
        pytest.param("GET", [], "csrf_header_missing", id="missing"),
        pytest.param("GET", [("x-csrf", "0")], "csrf_header_missing", id="zero"),
        pytest.param("GET", [("x-csrf", "")], "csrf_header_missing", id="empty"),
        pytest.param("GET", [("x-csrf", " 1")], "csrf_header_missing", id="padded"),
        pytest.param("POST", [("x-csrf", "1")], None, id="post-no-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", ORIGIN)], None, id="post-same-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", "https://evil.example")],
                     "origin_mismatch", id="post-foreign-origin"),
        pytest.param("POST", [("x-csrf", "1"), ("origin", "null")], "origin_mismatch",
                     id="post-null-origin"),
        pytest.param("DELETE", [("x-csrf", "1"), ("origin", ORIGIN + ".evil.example")],
                     "origin_mismatch", id="origin-suffix"),
        pytest.param("GET", [("x-csrf", "1"), ("origin", "https://evil.example")], None,
                     id="safe-method-origin-not-checked"),
    ],
)
def test_csrf_failure(method: str, headers: list[tuple[str, str]], expected: str | None) -> None:
    assert csrf_failure(method, _h(*headers), ORIGIN) == expected


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([("x-csrf", "1"), ("x-csrf", "2")], "duplicate_header:x-csrf",
                     id="csrf-twice"),
        pytest.param([("x-csrf", "2"), ("x-csrf", "1")], "duplicate_header:x-csrf",
                     id="csrf-twice-valid-last"),
        pytest.param([("x-csrf", "1"), ("origin", ORIGIN), ("origin", "https://evil.example")],
                     "duplicate_header:origin", id="origin-twice"),
        pytest.param([("x-csrf", "1"), ("origin", f"{ORIGIN}, https://evil.example")],
                     "duplicate_header:origin", id="origin-list"),
    ],
)
def test_csrf_check_refuses_duplicates(headers: list[tuple[str, str]], reason: str) -> None:
    """Issue 7, finding 3: X-CSRF sent as 1 and 2 passed before; now a typed 400."""
    with pytest.raises(AmbiguousRequest) as info:
        csrf_failure("POST", _h(*headers), ORIGIN)
    assert info.value.reason == reason


def test_the_guard_counts_audits_and_raises_once() -> None:
    """The rejection is written once for /bff/user and the proxy: counted, one
    csrf.rejected event, a 401 the boundary does not audit again."""
    counted: list[int] = []
    guard = CsrfGuard(ORIGIN, lambda: counted.append(1))
    with capture_logs() as logs, pytest.raises(CsrfRejected) as info:
        guard.require("POST", _h(("x-csrf", "1"), ("origin", "https://evil.example")),
                      route="/api")
    assert info.value.reason == "origin_mismatch" and info.value.audited
    assert counted == [1]
    assert [(e["event"], e["reason"], e["route"], e["status"]) for e in logs] == \
        [("csrf.rejected", "origin_mismatch", "/api", 401)]


def test_the_guard_passes_a_good_request_silently() -> None:
    counted: list[int] = []
    guard = CsrfGuard(ORIGIN, lambda: counted.append(1))
    with capture_logs() as logs:
        guard.require("GET", _h(("x-csrf", "1")))
    assert counted == [] and logs == []


# --- EventSource: Fetch Metadata instead of X-CSRF ----------------------------------------

SSE = ("accept", "text/event-stream")
SAME_ORIGIN = ("sec-fetch-site", "same-origin")


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", [SSE, SAME_ORIGIN], id="event-source"),
        pytest.param("HEAD", [SSE, SAME_ORIGIN], id="head"),
        pytest.param("GET", [("accept", "text/html, text/event-stream;q=0.9"), SAME_ORIGIN],
                     id="accept-list"),
        pytest.param("GET", [("accept", "Text/Event-Stream"), SAME_ORIGIN], id="accept-case"),
        pytest.param("GET", [SSE, SAME_ORIGIN, ("origin", "https://evil.example")],
                     id="safe-method-origin-not-checked"),
    ],
)
def test_a_same_origin_event_stream_passes_without_x_csrf(
        method: str, headers: list[tuple[str, str]]) -> None:
    """EventSource cannot send X-CSRF; the browser's own Sec-Fetch-Site (a forbidden
    header no page can set) vouches that this page is ours."""
    assert csrf_failure(method, _h(*headers), ORIGIN) is None


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", [SSE, ("sec-fetch-site", "cross-site")], id="cross-site"),
        pytest.param("GET", [SSE, ("sec-fetch-site", "same-site")], id="same-site"),
        pytest.param("GET", [SSE, ("sec-fetch-site", "none")], id="none"),
        pytest.param("GET", [SSE], id="sec-fetch-site-absent"),
        pytest.param("GET", [SSE, ("sec-fetch-site", "Same-Origin")], id="case-variant"),
        pytest.param("GET", [SSE, ("sec-fetch-site", "same-origin ")], id="padded"),
        pytest.param("POST", [SSE, SAME_ORIGIN], id="post"),
        pytest.param("OPTIONS", [SSE, SAME_ORIGIN], id="options"),
        pytest.param("get", [SSE, SAME_ORIGIN], id="lower-case-method"),
        pytest.param("GET", [("accept", "application/json"), SAME_ORIGIN], id="json"),
        pytest.param("GET", [("accept", "*/*"), SAME_ORIGIN], id="any"),
        pytest.param("GET", [("accept", "text/event-streamx"), SAME_ORIGIN], id="lookalike"),
        pytest.param("GET", [SAME_ORIGIN], id="accept-absent"),
    ],
)
def test_everything_else_still_needs_x_csrf(method: str, headers: list[tuple[str, str]]) -> None:
    assert csrf_failure(method, _h(*headers), ORIGIN) == "csrf_header_missing"


def test_a_duplicated_sec_fetch_site_is_refused_not_guessed() -> None:
    with pytest.raises(AmbiguousRequest) as info:
        csrf_failure("GET", _h(SSE, SAME_ORIGIN, ("sec-fetch-site", "cross-site")), ORIGIN)
    assert info.value.reason == "duplicate_header:sec-fetch-site"
