"""The two WebSocket gates: the cross-site rule on the handshake's Origin (browsers send no
X-CSRF on a WebSocket) and the connection-level test for a handshake allowed to switch
protocols (everything else keeps the issue 7 Upgrade refusal)."""

from __future__ import annotations

import pytest

from bffgate.endpoints.websocket import origin_failure
from bffgate.errors import AmbiguousRequest
from bffgate.framing import check_framing, is_websocket_handshake

PUBLIC = "https://app.example"


@pytest.mark.parametrize(("origin", "expected"), [
    ([PUBLIC], None),
    ([], "websocket_origin_missing"),
    (["https://evil.example"], "websocket_origin_mismatch"),
    (["http://app.example"], "websocket_origin_mismatch"),  # scheme matters
    (["https://app.example:443"], "websocket_origin_mismatch"),  # exact, never normalised
    (["https://app.example.evil.example"], "websocket_origin_mismatch"),
    (["null"], "websocket_origin_mismatch"),
])
def test_origin_must_be_the_public_origin(origin: list[str], expected: str | None) -> None:
    headers = [(b"origin", o.encode()) for o in origin]
    assert origin_failure(headers, PUBLIC) == expected


def test_a_duplicated_origin_is_ambiguous() -> None:
    with pytest.raises(AmbiguousRequest):
        origin_failure([(b"origin", PUBLIC.encode())] * 2, PUBLIC)


KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
GOOD = [(b"host", b"app.example"), (b"upgrade", b"websocket"),
        (b"connection", b"keep-alive, Upgrade"), (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", KEY)]


def _without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in GOOD if n != name]


@pytest.mark.parametrize(("fields", "method", "version", "ok"), [
    (GOOD, b"GET", b"1.1", True),
    ([*GOOD, (b"content-length", b"0")], b"GET", b"1.1", True),
    (GOOD, b"POST", b"1.1", False),
    (GOOD, b"GET", b"1.0", False),
    ([*GOOD, (b"content-length", b"5")], b"GET", b"1.1", False),
    ([*GOOD, (b"transfer-encoding", b"chunked")], b"GET", b"1.1", False),
    ([*GOOD, (b"upgrade", b"websocket")], b"GET", b"1.1", False),
    ([*_without(b"upgrade"), (b"upgrade", b"h2c")], b"GET", b"1.1", False),
    ([*_without(b"connection"), (b"connection", b"keep-alive")], b"GET", b"1.1", False),
    ([*_without(b"sec-websocket-version"), (b"sec-websocket-version", b"8")], b"GET",
     b"1.1", False),
    (_without(b"sec-websocket-key"), b"GET", b"1.1", False),
    ([*_without(b"sec-websocket-key"), (b"sec-websocket-key", b"short==")], b"GET", b"1.1",
     False),
    ([*GOOD, (b"sec-websocket-key", KEY)], b"GET", b"1.1", False),
])
def test_only_a_bodiless_well_formed_handshake_may_upgrade(
        fields: list[tuple[bytes, bytes]], method: bytes, version: bytes, ok: bool) -> None:
    assert is_websocket_handshake(fields, method=method, http_version=version) is ok


def test_upgrade_stays_refused_unless_the_protocol_allows_it() -> None:
    refused = check_framing(GOOD, method=b"GET", http_version=b"1.1")
    assert refused is not None and refused.reason == "framing:upgrade"
    assert check_framing(GOOD, method=b"GET", http_version=b"1.1", websocket_ok=True) is None
