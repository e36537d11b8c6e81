"""The admin sessions API (admin listener, README "Admin API"): list a user's sessions,
show or end one by its admin id, end all of a user's; and the gate in front of every
protected admin path (the bearer ``server.admin_token``).

Paths are matched segment by segment on the raw (still percent-encoded) path, so a ``sub``
holding ``/`` or ``%`` is one segment. Every refusal is a problem+json: 401 (token, with
``WWW-Authenticate: Bearer``), 400 (a parameter, named), 404 (no such path or session), 405
(with ``Allow``). Sessions end through ``end_sessions`` (audit ``session.revoked``, reason
``admin``); nothing here reads or shows a token, a cookie or a store key.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.edge.request_context import ContextApp, RequestInfo
from bffgate.errors import BadRequest, GatewayError, MethodNotAllowed, RouteNotFound
from bffgate.problems import send_problem
from bffgate.session.ending import ById, BySub, end_sessions
from bffgate.session.inventory import SessionInventory, SessionView
from bffgate.store.base import SessionRecords

NO_STORE = {"Cache-Control": "no-store"}
VAR = "{}"  # a path segment that is a parameter


class AdminTokenRequired(GatewayError):
    status, slug, title = 401, "admin-token-required", "Admin bearer token required"


class SessionNotFound(GatewayError):
    status, slug, title = 404, "session-not-found", "No such session"


class AdminGate:
    """A ``ContextApp``: paths under ``protected`` need ``Authorization: Bearer <token>``
    (compared in constant time; an empty token: none needed). A refusal is a 401 problem
    with ``WWW-Authenticate``, audited ``request.rejected`` (reason ``admin_token``)."""

    def __init__(self, inner: ContextApp, token: str, protected: tuple[str, ...]) -> None:
        self._inner, self._token, self._protected = inner, token, protected

    def _guarded(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self._protected)

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        if self._token and self._guarded(scope["path"]):
            got = next((v for k, v in scope["headers"] if k == b"authorization"), b"")
            if not hmac.compare_digest(got, f"Bearer {self._token}".encode()):
                exc = AdminTokenRequired(
                    "send Authorization: Bearer <server.admin_token>" if not got
                    else "the bearer token is not server.admin_token", reason="admin_token")
                audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason=exc.reason,
                           status=exc.status)
                challenge = b'Bearer realm="bffgate-admin"' + (
                    b', error="invalid_token"' if got else b"")
                await send_problem(send, exc, request_id=info.request_id,
                                   extra_headers=[(b"www-authenticate", challenge)])
                return
        await self._inner(info, scope, receive, send)


@dataclass(frozen=True)
class AdminSessionsDeps:
    store: SessionRecords
    inventory: SessionInventory
    clock: Clock


Handler = Callable[[Request, AdminSessionsDeps, list[str]], Awaitable[Response]]


def _sub_param(request: Request) -> str:
    subs = request.query_params.getlist("sub")
    if len(subs) > 1:
        raise BadRequest("query parameter sub given more than once",
                         reason="duplicate_parameter:sub")
    if not subs or not subs[0]:
        raise BadRequest("query parameter sub is required: the user's subject (?sub=...)",
                         reason="sub_missing")
    return subs[0]


async def _view(deps: AdminSessionsDeps, session_id: str) -> SessionView:
    found = await deps.inventory.by_id(session_id, deps.clock.now())
    if found is None:
        raise SessionNotFound(f"no live session has the id {session_id[:200]!r}",
                              reason="session_not_found")
    return found


async def list_sessions(request: Request, deps: AdminSessionsDeps, _: list[str]) -> Response:
    views = await deps.inventory.of_sub(_sub_param(request), deps.clock.now())
    return JSONResponse({"sessions": [v.to_json() for v in views]}, headers=NO_STORE)


async def show_session(request: Request, deps: AdminSessionsDeps, args: list[str]) -> Response:
    return JSONResponse((await _view(deps, args[0])).to_json(), headers=NO_STORE)


async def revoke_session(request: Request, deps: AdminSessionsDeps,
                         args: list[str]) -> Response:
    found = await _view(deps, args[0])
    n = await end_sessions(deps.store, ById(found.key, found.facts.sub), reason="admin")
    if not n:  # it ended between the lookup and the delete
        raise SessionNotFound(reason="session_not_found")
    return JSONResponse({"revoked": n}, headers=NO_STORE)


async def revoke_user(request: Request, deps: AdminSessionsDeps, args: list[str]) -> Response:
    n = await end_sessions(deps.store, BySub(args[0]), reason="admin")
    return JSONResponse({"revoked": n}, headers=NO_STORE)


async def revoke_by_query(request: Request, deps: AdminSessionsDeps, _: list[str]) -> Response:
    """DELETE /admin/sessions?sub=S: the older spelling of DELETE /admin/users/{sub}/sessions."""
    return await revoke_user(request, deps, [_sub_param(request)])


# (path segments, VAR for a parameter) -> method -> handler. The OpenAPI document
# (endpoints/admin_openapi.py) describes exactly these, and a test holds them together.
ROUTES: Mapping[tuple[str, ...], Mapping[str, Handler]] = {
    ("admin", "sessions"): {"GET": list_sessions, "DELETE": revoke_by_query},
    ("admin", "sessions", VAR): {"GET": show_session, "DELETE": revoke_session},
    ("admin", "users", VAR, "sessions"): {"DELETE": revoke_user},
}


def template(segments: tuple[str, ...], names: tuple[str, ...]) -> str:
    """The OpenAPI path of a route: ``/admin/sessions/{id}``."""
    it = iter(names)
    return "/" + "/".join("{" + next(it) + "}" if s == VAR else s for s in segments)


def _match(path: str) -> tuple[Mapping[str, Handler], list[str]] | None:
    parts = path.strip("/").split("/")
    for segments, methods in ROUTES.items():
        if len(segments) != len(parts):
            continue
        args = []
        for want, got in zip(segments, parts, strict=True):
            value = unquote(got)
            if want == VAR and value:
                args.append(value)
            elif want != value:
                break
        else:
            return methods, args
    return None


class AdminApi:
    """A ``ContextApp`` for ``ROUTES`` plus GET /admin/openapi.json (``document``)."""

    def __init__(self, deps: AdminSessionsDeps, document: Callable[[], dict[str, object]]
                 ) -> None:
        self._deps, self._document = deps, document

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        methods: Mapping[str, Handler]
        args: list[str]
        if path == "/admin/openapi.json":
            methods, args = {"GET": self._openapi}, []
        elif (found := _match(path)) is not None:
            methods, args = found
        else:
            raise RouteNotFound(reason="no_route")
        method = "GET" if scope["method"] == "HEAD" and "GET" in methods else scope["method"]
        handler = methods.get(method)
        if handler is None:
            allow = [*methods, *(["HEAD"] if "GET" in methods else [])]
            raise MethodNotAllowed(f"{scope['method']} is not allowed here",
                                   reason="method_not_allowed",
                                   allow=", ".join(allow).encode("ascii"))
        response = await handler(Request(scope, receive), self._deps, args)
        await response(scope, receive, send)

    async def _openapi(self, request: Request, deps: AdminSessionsDeps,
                       _: list[str]) -> Response:
        return JSONResponse(self._document(), headers=NO_STORE)
