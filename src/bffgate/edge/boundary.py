"""The problem boundary: the one place a request's failure becomes its answer.

Inside the request context, around dispatch, for every listener:

- ``GatewayError`` → application/problem+json (bffgate.problems) with the request id;
  ``Allow`` on a 405; the session cookie cleared on a 401 whose cookie is dead
  (``NotAuthenticated.dead_cookie``: a session that ended, a cookie naming none);
  audited as ``request.rejected`` unless the raiser wrote its own event (``audited``)
  or it is a plain "no session" 401 (routine for anonymous callers);
- ``ClientAborted`` (or ``OSError`` from ``send``: the connection is gone) → nothing to
  answer, one ``request.aborted`` warning;
- any other exception → 500 problem, ``request.failed`` logged with its traceback (never
  sent to the client).

Once the response has started nothing more can be sent: the error is only logged.
"""

from __future__ import annotations

import contextlib

from starlette.types import Message, Receive, Scope, Send

from bffgate import audit, logs
from bffgate.audit import AuditEvent
from bffgate.edge.request_context import ContextApp, RequestInfo
from bffgate.errors import (
    ClientAborted,
    GatewayError,
    MethodNotAllowed,
    NotAuthenticated,
)
from bffgate.problems import send_problem


class ProblemBoundary:
    """A ``ContextApp`` around ``inner``; ``clear_cookie`` is the Set-Cookie value that
    deletes the session cookie."""

    def __init__(self, inner: ContextApp, *, clear_cookie: bytes) -> None:
        self._inner, self._clear_cookie = inner, clear_cookie

    async def __call__(self, info: RequestInfo, scope: Scope, receive: Receive,
                       send: Send) -> None:
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = True
            try:
                await send(message)
            except OSError as exc:  # ASGI: a server may raise on a closed connection
                raise ClientAborted(reason="client_disconnected") from exc

        try:
            if info.refusal is not None:
                raise info.refusal
            await self._inner(info, scope, receive, tracked_send)
        except ClientAborted as exc:
            # The client went away: nothing can be answered. One warning line, no traceback.
            if not exc.audited:
                audit.emit(AuditEvent.REQUEST_ABORTED, level="warning", reason=exc.reason)
        except GatewayError as exc:
            if not exc.audited and not _routine(exc):
                audit.emit(AuditEvent.REQUEST_REJECTED, level="warning", reason=exc.reason,
                           status=exc.status)
            if not started:
                with contextlib.suppress(OSError):  # the client may be gone already
                    await send_problem(send, exc, request_id=info.request_id,
                                       extra_headers=self._headers(exc))
        except Exception:  # a bug or an unmapped library error: 500 problem, never a trace
            logs.get_logger().exception("request.failed")
            if not started:
                with contextlib.suppress(OSError):
                    await send_problem(send, GatewayError(reason="internal_error"),
                                       request_id=info.request_id)

    def _headers(self, exc: GatewayError) -> list[tuple[bytes, bytes]]:
        if isinstance(exc, MethodNotAllowed) and exc.allow:
            return [(b"allow", exc.allow)]
        if isinstance(exc, NotAuthenticated) and exc.dead_cookie:
            return [(b"set-cookie", self._clear_cookie)]
        return []


def _routine(exc: GatewayError) -> bool:
    """A 401 for want of a live session: routine for anonymous callers, so not audited
    here; a tampered cookie or an ended session is audited where it is found."""
    return isinstance(exc, NotAuthenticated)
