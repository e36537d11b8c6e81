"""The checks every public request passes before dispatch (proxy and /bff/* alike):
forbidden methods, and no second copy of a header or cookie the gateway trusts."""

from __future__ import annotations

from typing import Any

from structlog.contextvars import get_contextvars

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.context import RequestInfo, request_info, single_cookie, single_header
from bffgate.endpoints.deps import Deps
from bffgate.errors import GatewayError, MethodNotAllowed
from bffgate.problems import send_problem
from bffgate.proxy.routes import FORBIDDEN_METHODS

# Headers the gateway (or uvicorn/Starlette under it) acts on, and that have one value:
# Host (RFC 9112 3.2: more than one is a 400), Origin and X-CSRF (the CSRF check),
# Content-Length (body framing). X-Forwarded-For / X-Request-Id are checked by
# request_info, and only for trusted proxies (from anyone else they are ignored).
SINGLE_HEADERS = (b"host", b"origin", b"x-csrf", b"content-length")


def check_request(scope: dict[str, Any], deps: Deps) -> None:
    """Raise the refusal for this request, if any (MethodNotAllowed, AmbiguousRequest)."""
    method: str = scope["method"]
    if method in FORBIDDEN_METHODS:
        # TRACE/TRACK echo the request (bearer included) back; CONNECT opens a tunnel.
        route = deps.routes.match(scope["path"])
        raise MethodNotAllowed(f"{method} is never accepted by this gateway",
                               reason="method_forbidden",
                               allow=route.allow_header if route else b"")
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name in SINGLE_HEADERS:
        single_header(headers, name)
    # The gateway's own cookies: on any path, two of them mean a tossed or injected cookie.
    single_cookie(headers, deps.settings.cookie.name)
    single_cookie(headers, deps.settings.login_cookie_name)


async def admit(scope: dict[str, Any], send: Any, deps: Deps) -> RequestInfo | None:
    """The request's facts, or None once it has been refused here (problem sent, audited)."""
    try:
        info = request_info(scope, deps.proxies)
        check_request(scope, deps)
    except GatewayError as exc:
        audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason=exc.reason,
                   status=exc.status)
        extra = [(b"allow", exc.allow)] if isinstance(exc, MethodNotAllowed) and exc.allow \
            else []
        await send_problem(send, exc, request_id=get_contextvars().get("request_id"),
                           extra_headers=extra)
        return None
    return info
