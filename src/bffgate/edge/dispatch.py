"""Dispatch by path: the gateway's own endpoints (exact paths, Starlette request and
response objects) and, for everything else, a fallback app (the proxy)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from bffgate.edge.request_context import ContextApp, RequestInfo
from bffgate.errors import MethodNotAllowed, RouteNotFound

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Page:
    """One endpoint and its methods (GET implies HEAD, as HTTP says)."""

    methods: tuple[str, ...]
    endpoint: Endpoint

    @property
    def allowed(self) -> tuple[str, ...]:
        return (*self.methods, "HEAD") if "GET" in self.methods else self.methods


class Endpoints:
    """A ``ContextApp`` for a fixed set of paths; another path is a 404, another method a
    405 with ``Allow`` (problem+json, through the boundary)."""

    def __init__(self, pages: Mapping[str, Page]) -> None:
        self._pages = dict(pages)

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        page = self._pages.get(scope["path"])
        if page is None:
            raise RouteNotFound(reason="no_route")
        if scope["method"] not in page.allowed:
            raise MethodNotAllowed(f"{scope['method']} is not allowed here",
                                   reason="method_not_allowed",
                                   allow=", ".join(page.allowed).encode("ascii"))
        response = await page.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class ByPrefix:
    """A ``ContextApp``: paths under ``prefix`` (or equal to it) go to ``own``, the rest to
    ``other``."""

    def __init__(self, prefix: str, own: ContextApp, other: ContextApp) -> None:
        self._prefix, self._own, self._other = prefix, own, other

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        path: str = scope["path"]
        if path == self._prefix or path.startswith(self._prefix + "/"):
            await self._own(info, scope, receive, send)
        else:
            await self._other(info, scope, receive, send)
