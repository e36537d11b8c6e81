"""Unit test of the test harness itself: the secret scan must find a planted leak (so a
green scan means something)."""

from __future__ import annotations

from pathlib import Path

from support import secrets_scan
from support.browser import RECORDED


def test_scan_finds_planted_leaks(tmp_path: Path) -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBsYW50ZWQ"
    log = tmp_path / "gateway.log"
    log.write_text('{"event": "x", "detail": "' + token + '"}\n')
    secrets_scan.remember("access_token", token)
    RECORDED.append(("http://localhost/x", 200, [("x-debug", "c2lnbmF0dXJlLXBsYW50ZWQ")], b""))
    try:
        leaks = secrets_scan.scan([log])
        assert any("access_token found in log" in leak for leak in leaks)
        assert any("signature found in response header x-debug" in leak for leak in leaks)
    finally:
        RECORDED.pop()
        secrets_scan.SECRETS.pop(token)
        secrets_scan.SECRETS.pop(token.split(".")[2])
