"""Log redaction: secrets go by key and by value shape from every line, cheaply.

Values that cannot hold a secret skip the scrub: numbers, booleans, None, enum members,
strings without any pattern's fixed part, and on audit lines the catalogue fields the
gateway computes itself. Everything else (paths with queries, user agents, reasons,
details, subjects, every ordinary log line) goes through the patterns as ever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, MutableMapping
from enum import Enum
from typing import Any

# Keys whose values are secrets whatever a caller passes (compared case-insensitively,
# with '-' treated as '_').
SECRET_KEYS = frozenset(
    {
        "access_token", "refresh_token", "id_token", "token", "tokens", "code", "code_verifier",
        "verifier", "client_secret", "secret", "secret_keys", "password", "cookie", "cookies",
        "set_cookie", "authorization", "proxy_authorization", "id_token_hint", "logout_token",
        "client_assertion", "state", "nonce", "session_id", "admin_token", "assertion",
        "private_key", "verify_keys",
    }
)
REDACTED = "[REDACTED]"
# Values that look like secrets even under an innocent key: JWTs, bearer credentials,
# our own cookie values, and query strings carrying code/state/tokens.
_VALUE_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\b((?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bv1\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_.-]+"),
    re.compile(
        r"(?i)([?&](?:code|state|nonce|code_verifier|access_token|refresh_token|id_token|"
        r"id_token_hint|client_secret|token|sid)=)[^&#\s]+"
    ),
]


def _maybe_secret(text: str) -> bool:
    """False only for a string none of _VALUE_PATTERNS can match: each needs one of these
    fixed parts (``eyJ``, ``v1.``, ``?``/``&``, bearer/basic in any case). Non-ASCII text
    always goes to the patterns (re's case folding matches e.g. U+017F, long s, to 's')."""
    if not text.isascii() or "eyJ" in text or "v1." in text or "?" in text or "&" in text:
        return True
    low = text.lower()
    return "bearer" in low or "basic" in low

_INERT = frozenset({int, float, bool, type(None)})  # exact types: nothing to scrub

# On lines from audit.emit (``audit: true``), catalogue fields the gateway computes itself
# (never caller text) skip the scrub when they have the expected type; every other field
# (path, user_agent, sub, reason, detail, request_id, method, ...) is scrubbed as ever.
AUDIT_SAFE_FIELDS: dict[str, frozenset[type]] = {
    "audit": frozenset({bool}),
    "route": frozenset({str}),  # a configured route prefix
    "status": frozenset({int}),
    "duration_ms": frozenset({int, float}),
    "count": frozenset({int}),
    "expires_in": frozenset({int}),
    "session": frozenset({str}),  # 16 hex of SHA-256 (audit.py)
    "client_ip": frozenset({str}),  # the peer or an ipaddress-normalised X-Forwarded-For hop
}
# Written by this pipeline's own processors on every line.
_OWN_FIELDS: dict[str, frozenset[type]] = {"level": frozenset({str}), "ts": frozenset({str})}
# `event` too: redact() uses this table only when the text is an AuditEvent value.
_AUDIT_SAFE = {**AUDIT_SAFE_FIELDS, **_OWN_FIELDS, "event": frozenset({str})}
AUDIT_EVENT_NAMES: set[str] = set()  # filled by bffgate.audit: the one safe `event` text

_redaction_hook: list[Callable[[int], None]] = []


def on_redaction(hook: Callable[[int], None]) -> None:
    """Register a callback told how many values each log line had redacted (metrics)."""
    _redaction_hook.append(hook)


def remove_redaction_hook(hook: Callable[[int], None]) -> None:
    if hook in _redaction_hook:
        _redaction_hook.remove(hook)


_secret_key_cache: dict[str, bool] = {}


def _is_secret_key(key: str) -> bool:
    hit = _secret_key_cache.get(key)
    if hit is None:
        hit = key.lower().replace("-", "_") in SECRET_KEYS
        if len(_secret_key_cache) < 4096:
            _secret_key_cache[key] = hit
    return hit


def _scrub_text(value: str) -> tuple[str, int]:
    count = 0
    for pat in _VALUE_PATTERNS:
        if pat.groups:
            value, n = pat.subn(lambda m: m.group(1) + REDACTED, value)
        else:
            value, n = pat.subn(REDACTED, value)
        count += n
    return value, count


def _scrub(value: Any, depth: int = 0) -> tuple[Any, int]:
    if depth > 6:
        return REDACTED, 1
    kind = type(value)
    if kind is str:
        return _scrub_text(value) if _maybe_secret(value) else (value, 0)
    if kind in _INERT or isinstance(value, Enum):
        return value, 0
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        total = 0
        for k, v in value.items():
            if isinstance(k, str) and _is_secret_key(k):
                out[k] = REDACTED
                total += 1
            else:
                out[k], n = _scrub(v, depth + 1)
                total += n
        return out, total
    if isinstance(value, list | tuple | set | frozenset):
        items = []
        total = 0
        for v in value:
            s, n = _scrub(v, depth + 1)
            items.append(s)
            total += n
        return items, total
    if isinstance(value, bytes | bytearray):
        return REDACTED, 1
    return value, 0


def redact(_logger: Any, _name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: remove secrets by key and by value shape, everywhere."""
    total = 0
    audit_line = event_dict.get("audit") is True and event_dict.get("event") in AUDIT_EVENT_NAMES
    safe = _AUDIT_SAFE if audit_line else _OWN_FIELDS
    for key, value in event_dict.items():
        kind = type(value)
        allowed = safe.get(key)
        if allowed is not None and kind in allowed:
            continue
        secret = _secret_key_cache.get(key)
        if secret is None:
            secret = _is_secret_key(key)
        if secret:
            event_dict[key] = REDACTED
            total += 1
            continue
        if kind is str:
            if not _maybe_secret(value):
                continue
        elif kind in _INERT:
            continue
        event_dict[key], n = _scrub(value)
        total += n
    if total:
        for hook in _redaction_hook:
            hook(total)
    return event_dict
