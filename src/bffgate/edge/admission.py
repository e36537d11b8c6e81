"""The checks every public request passes before dispatch (proxy and /bff/* alike):
forbidden methods, and no second copy of a header or cookie the gateway trusts."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from bffgate.edge.fields import Headers, refuse_second_copies
from bffgate.edge.request_context import ContextApp, RequestInfo
from bffgate.errors import MethodNotAllowed
from bffgate.proxy.routes import FORBIDDEN_METHODS, RouteTable

# Headers the gateway (or uvicorn under it) acts on, and that have one value:
# Host (RFC 9112 3.2: more than one is a 400), Origin and X-CSRF (the CSRF check),
# Content-Length (body framing). X-Forwarded-For / X-Request-Id are checked by the
# request context, and only for trusted proxies (from anyone else they are ignored).
SINGLE_HEADERS = frozenset({b"host", b"origin", b"x-csrf", b"content-length"})


class Admission:
    """A ``ContextApp``: refuses (raises) or passes the request on to ``inner``.
    ``cookie_names``: the gateway's own cookies (session, login binding)."""

    def __init__(self, inner: ContextApp, routes: RouteTable,
                 cookie_names: tuple[str, ...]) -> None:
        self._inner, self._routes, self._cookies = inner, routes, cookie_names

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        self.check(scope)
        await self._inner(info, scope, receive, send)

    def check(self, scope: Scope) -> None:
        """Raise the refusal for this request, if any (MethodNotAllowed, AmbiguousRequest)."""
        method: str = scope["method"]
        if method in FORBIDDEN_METHODS:
            # TRACE/TRACK echo the request (bearer included) back; CONNECT opens a tunnel.
            route = self._routes.match(scope["path"])
            raise MethodNotAllowed(f"{method} is never accepted by this gateway",
                                   reason="method_forbidden",
                                   allow=route.allow_header if route else b"")
        headers: Headers = scope["headers"]
        # The gateway's own cookies: on any path, two of them mean a tossed or injected one.
        refuse_second_copies(headers, SINGLE_HEADERS, self._cookies)
