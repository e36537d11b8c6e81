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
