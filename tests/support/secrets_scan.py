"""Collects every secret value the tests see, and scans logs and browser responses for them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from support.browser import RECORDED

SECRETS: dict[str, str] = {}  # value -> what it is


def remember(kind: str, value: str | None) -> None:
    if value and len(value) >= 8:
        SECRETS[value] = kind
        parts = value.split(".")
        if len(parts) == 3 and value.startswith("eyJ"):
            # a JWT's signature segment is as telling as the whole token
            SECRETS[parts[2]] = kind + ".signature"


def _haystacks(log_files: list[Path]) -> list[tuple[str, str]]:
    out = []
    for path in log_files:
        if path.exists():
            out.append((f"log {path}", path.read_text(errors="replace")))
    for url, status, headers, body in RECORDED:
        text = body.decode("latin-1")
        out.append((f"response body {status} {url[:80]}", text))
        for k, v in headers:
            if k.lower() != "set-cookie":
                out.append((f"response header {k} of {url[:80]}", v))
            else:
                # our own cookie value is expected in Set-Cookie; tokens never are
                out.append((f"set-cookie of {url[:80]}", v.split("=", 1)[1] if "=" in v else v))
    return out


def scan(log_files: list[Path]) -> list[str]:
    """Return a description of every leak found (empty list = clean)."""
    leaks = []
    for where, text in _haystacks(log_files):
        for value, kind in SECRETS.items():
            if kind == "session_cookie" and where.startswith("set-cookie"):
                continue
            if kind.startswith("id_token") and where.startswith("response header location") \
                    and "/bff/logout" in where:
                # OIDC RP-Initiated Logout: id_token_hint travels in the end-session redirect
                # by design (README "Security notes"); it is the only place it may appear.
                continue
            if value in text:
                leaks.append(f"{kind} found in {where}")
            elif kind.startswith(("access_token", "refresh_token", "id_token")):
                b64 = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
                if len(b64) > 16 and b64 in text:
                    leaks.append(f"{kind} (base64) found in {where}")
    return sorted(set(leaks))


def summary() -> str:
    kinds: dict[str, int] = {}
    for kind in SECRETS.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    return json.dumps(kinds, sort_keys=True)
