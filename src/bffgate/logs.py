"""The structlog pipeline: context, timestamps, redaction, JSON (or console) output."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

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

_redaction_hook: list[Callable[[int], None]] = []


def on_redaction(hook: Callable[[int], None]) -> None:
    """Register a callback told how many values each log line had redacted (metrics)."""
    _redaction_hook.append(hook)


def remove_redaction_hook(hook: Callable[[int], None]) -> None:
    if hook in _redaction_hook:
        _redaction_hook.remove(hook)


def _scrub(value: Any, depth: int = 0) -> tuple[Any, int]:
    if depth > 6:
        return REDACTED, 1
    if isinstance(value, str):
        count = 0
        for pat in _VALUE_PATTERNS:
            if pat.groups:
                value, n = pat.subn(lambda m: m.group(1) + REDACTED, value)
            else:
                value, n = pat.subn(REDACTED, value)
            count += n
        return value, count
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        total = 0
        for k, v in value.items():
            if isinstance(k, str) and k.lower().replace("-", "_") in SECRET_KEYS:
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
    for key in list(event_dict):
        value = event_dict[key]
        if key.lower().replace("-", "_") in SECRET_KEYS:
            event_dict[key] = REDACTED
            total += 1
        else:
            event_dict[key], n = _scrub(value)
            total += n
    if total:
        for hook in _redaction_hook:
            hook(total)
    return event_dict


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog once for the process. Redaction runs right before rendering."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.WriteLoggerFactory(file=stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "bffgate") -> Any:
    return structlog.get_logger(name)
