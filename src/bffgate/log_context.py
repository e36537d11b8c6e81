"""The request's log context: the fields every log line and audit event of one request
carries (``request_id``, ``client_ip``, ``user_agent``, ``method``, ``path``), bound by the
edge once per request in ONE context variable and added to each line by ``merge_request``.

Why not ``structlog.contextvars``: it binds one context variable per field (and clearing
marks each one), then copies the whole context on every line to find them again: ~25 µs per
proxied call here, a tenth of its cost, for the same line. uvicorn runs each request in its
own task (its own copy of the context), so one request's fields never reach another's lines.
structlog's own contextvars still work beside this (``logs`` merges both; a field bound
there wins).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from contextvars import ContextVar
from typing import Any

_REQUEST: ContextVar[Mapping[str, Any] | None] = ContextVar("bffgate_request", default=None)


def bind_request(**fields: Any) -> None:
    """The current request's fields, replacing any bound before in this context."""
    _REQUEST.set(fields)


def clear_request() -> None:
    """No request bound (tests that bind one outside a request task reset with this)."""
    _REQUEST.set(None)


def request_fields() -> Mapping[str, Any]:
    """The fields bound for the current request (empty outside one)."""
    return _REQUEST.get() or {}


def merge_request(_logger: Any, _name: str,
                  event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the request's fields, where the line does not set its own."""
    fields = _REQUEST.get()
    if fields:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict
