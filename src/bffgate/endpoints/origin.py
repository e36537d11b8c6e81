"""Where a request comes from, as the session record keeps it (the admin API shows it)."""

from __future__ import annotations

from bffgate.log_context import request_fields
from bffgate.session.model import SessionOrigin


def request_origin() -> SessionOrigin:
    """The current request's client address (after ``server.trusted_proxies``) and
    User-Agent (at most 256 characters), as the edge bound them to the request's log
    context (bffgate.edge.request_context) before any endpoint runs."""
    bound = request_fields()
    return SessionOrigin.of(bound.get("client_ip"), bound.get("user_agent"))
