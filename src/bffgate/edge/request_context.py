"""The request's context: its id, the client's address, and the log context bound from them.

Built first for every request, before anything can fail: a trusted proxy's ambiguous
X-Forwarded-For or X-Request-Id is kept as ``RequestInfo.refusal`` (with the peer's
address and a fresh request id in the context), so the problem boundary still answers,
logs and audits it under a request id.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.fields import Headers, header, list_header, single_header
from bffgate.errors import AmbiguousRequest
from bffgate.ids import hex_id
from bffgate.log_context import bind_request

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    client_ip: str
    user_agent: str
    method: str
    path: str
    refusal: AmbiguousRequest | None = None  # a forwarded header the edge must refuse


# The apps inside the context: an ASGI call that also gets the request's facts.
ContextApp = Callable[[RequestInfo, Scope, Receive, Send], Awaitable[None]]


def read_request(scope: Scope, proxies: TrustedProxies) -> RequestInfo:
    """The request's facts; never raises (a refusal is returned in ``refusal``)."""
    headers: Headers = scope["headers"]
    client = scope.get("client") or ("", 0)
    peer = str(client[0]) if isinstance(client, tuple | list) else ""
    ip, rid, refusal = peer, "", None
    if proxies.trusts(peer):
        try:
            ip = proxies.client_ip(peer, list_header(headers, b"x-forwarded-for"))
            inbound = single_header(headers, b"x-request-id")
            rid = inbound if inbound and _SAFE_REQUEST_ID.match(inbound) else ""
        except AmbiguousRequest as exc:
            ip, rid, refusal = peer, "", exc
    ua = (header(headers, b"user-agent") or "")[:256]
    return RequestInfo(rid or hex_id(12), ip, ua, str(scope.get("method", ""))[:32],
                       str(scope.get("path", ""))[:512], refusal)


def bind_log_context(info: RequestInfo) -> None:
    """Every log line and audit event of this request carries these fields."""
    bind_request(request_id=info.request_id, client_ip=info.client_ip,
                 user_agent=info.user_agent, method=info.method, path=info.path)


class RequestContext:
    """The outermost layer of an HTTP listener (an ASGI app): reads the request's facts,
    binds the log context, and calls ``inner`` with them. Only HTTP is served: a
    WebSocket is closed (1008, no route speaks it); uvicorn runs with lifespan off."""

    def __init__(self, inner: ContextApp, proxies: TrustedProxies) -> None:
        self._inner, self._proxies = inner, proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            return
        info = read_request(scope, self._proxies)
        bind_log_context(info)
        await self._inner(info, scope, receive, send)
