"""GET /bff/callback: finish the login. Every refusal is a 400 problem, no session, one audit.

Order matters: the login record is taken (deleted) first, so a state is single use even
when a later check fails; nothing returned by the IdP is trusted until the ID token's
signature and nonce have been checked (RFC 9700 4.5.3.2). A live session named by the
request's cookie (a re-login) ends only once the new session is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.edge.fields import single_cookie
from bffgate.edge.responses import redirect
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.deps import SessionEnding
from bffgate.endpoints.origin import request_origin
from bffgate.endpoints.session_cookie import SessionCookie
from bffgate.endpoints.session_end import end_session
from bffgate.errors import GatewayError, IdentityProviderUnavailable, LoginRejected
from bffgate.grants import new_tokens
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient
from bffgate.oidc.errors import (
    GrantRejected,
    IdTokenInvalid,
    OidcError,
    ProviderUnavailable,
    TokenRejected,
)
from bffgate.session.inventory import SessionLimit
from bffgate.session.logins import LoginRecordRejected, LoginRecords
from bffgate.session.model import LoadedSession, visible_claims
from bffgate.session.service import SessionService

_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_SINGLE = ("code", "state", "iss", "error", "session_state")
_FRONT_CHANNEL_TOKENS = ("id_token", "access_token", "token", "refresh_token")


@dataclass(frozen=True)
class CallbackDeps:
    logins: LoginRecords
    sessions: SessionService
    session_cookie: SessionCookie
    ending: SessionEnding
    oidc: OidcClient
    issuer: str  # oidc.issuer, for the RFC 9207 iss check
    cookies: CookieWriter
    clock: Clock
    metrics: Metrics
    session_limit: SessionLimit | None = None  # session.max_per_user (None: unlimited)


def _reject(deps: CallbackDeps, reason: str, detail: str | None = None) -> LoginRejected:
    deps.metrics.login_results.labels("failed", reason.split(":")[0]).inc()
    audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason=reason)
    return LoginRejected(detail, reason=reason, audited=True)


async def callback(request: Request, deps: CallbackDeps) -> Response:
    """The handler; every answer ends a login attempt (M5), by the refusal's reason."""
    try:
        response = await _finish(request, deps)
    except GatewayError as exc:
        deps.metrics.login_attempts.labels("callback", "failed", exc.reason.split(":")[0]).inc()
        raise
    except Exception:
        deps.metrics.login_attempts.labels("callback", "failed", "internal_error").inc()
        raise
    deps.metrics.login_attempts.labels("callback", "succeeded", "ok").inc()
    return response


async def _finish(request: Request, deps: CallbackDeps) -> Response:
    q = request.query_params
    for name in _SINGLE:
        if len(q.getlist(name)) > 1:
            raise _reject(deps, "duplicate_parameter", f"parameter {name} repeated")
    if any(t in q for t in _FRONT_CHANNEL_TOKENS):
        raise _reject(deps, "front_channel_token", "tokens are never accepted in the URL")
    state, code, error, iss = q.get("state"), q.get("code"), q.get("error"), q.get("iss")
    # M4, redirect parameter loss: each missing parameter, whatever refuses the callback
    # first (a code is only expected when the IdP sent no error).
    if not state:
        deps.metrics.callback_missing_params.labels("state").inc()
    if not code and error is None:
        deps.metrics.callback_missing_params.labels("code").inc()
    if not state:
        raise _reject(deps, "state_missing", "state parameter missing")
    if len(state) > 128 or (code is not None and len(code) > 4096):
        raise _reject(deps, "parameter_too_long")

    binding = single_cookie(request.headers.raw, deps.cookies.login_name)
    try:
        record = await deps.logins.take(state, binding)
    except LoginRecordRejected as exc:
        raise _reject(deps, exc.reason, "unknown, used, expired or foreign login state") from None

    try:
        meta = await deps.oidc.metadata()
    except OidcError as exc:
        audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason=exc.reason)
        raise IdentityProviderUnavailable(reason=exc.reason, audited=True) from exc
    # RFC 9207: exact comparison when present; mandatory when the IdP advertises it.
    if iss is not None and iss != deps.issuer:
        raise _reject(deps, "iss_mismatch", "authorization response from another issuer")
    if iss is None and meta.iss_parameter_supported:
        raise _reject(deps, "iss_missing", "authorization response lacks iss")
    if error is not None:
        code_ = error if _ERROR_CODE.match(error) else "invalid_error_code"
        raise _reject(deps, f"idp_error:{code_}", f"the identity provider answered {code_}")
    if not code:
        raise _reject(deps, "code_missing", "code parameter missing")

    # A live session this browser already holds (re-login), read before the code is used:
    # an ambiguous cookie header is refused before any token is issued.
    found = await deps.session_cookie.find(request.headers.raw)
    previous = found if isinstance(found, LoadedSession) else None
    try:
        tokens = await deps.oidc.exchange_code(code, record.code_verifier)
    except GrantRejected as exc:
        deps.metrics.token_exchange.labels(exc.error).inc()
        raise _reject(deps, f"token_exchange:{exc.error}", "the code was refused") from None
    except TokenRejected as exc:
        deps.metrics.token_exchange.labels(exc.error).inc()
        raise _reject(deps, f"token_exchange:{exc.error}", "the token response was refused") \
            from None
    except ProviderUnavailable as exc:
        deps.metrics.token_exchange.labels("unavailable").inc()
        audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason="idp_unavailable")
        raise IdentityProviderUnavailable(reason="idp_unavailable", audited=True) from exc
    except OidcError as exc:
        deps.metrics.token_exchange.labels("error").inc()
        raise _reject(deps, f"token_exchange:{exc.reason}") from None
    deps.metrics.token_exchange.labels("ok").inc()
    if not tokens.id_token:
        raise _reject(deps, "id_token_missing", "no ID token in the token response")
    try:
        claims = await deps.oidc.validate_id_token(tokens.id_token, nonce=record.nonce)
    except IdTokenInvalid as exc:
        raise _reject(deps, f"id_token_invalid:{exc.check}", "the ID token is invalid") from None
    except ProviderUnavailable as exc:
        raise IdentityProviderUnavailable(reason="jwks_unavailable") from exc
    except OidcError as exc:
        raise _reject(deps, f"id_token_invalid:{exc.reason}") from None

    sub = str(claims["sub"])
    idp_sid = claims.get("sid") if isinstance(claims.get("sid"), str) else None
    cookie_value, session = await deps.sessions.create(
        new_tokens(tokens), sub=sub, idp_sid=idp_sid, claims=visible_claims(claims),
        origin=request_origin())
    deps.metrics.login_results.labels("succeeded", "ok").inc()
    deps.metrics.login_duration.observe(max(0.0, deps.clock.now() - record.created_at))
    audit.emit(AuditEvent.LOGIN_SUCCEEDED, sub=sub, session=session.handle.short)
    audit.emit(AuditEvent.SESSION_CREATED, sub=sub, session=session.handle.short)
    if previous is not None:
        # Re-login from a browser that still holds a live session: one browser, one
        # session. The old one ends once the new one is stored. Its refresh token is
        # revoked, unless both logins share the IdP session (same `sid`): then they
        # likely share one grant, and revoking a refresh token may end its whole grant
        # (RFC 7009 2.1; oidc-provider does), the new session's tokens too. Its record is
        # deleted either way, and with it the only copy of that refresh token.
        same_idp_session = idp_sid is not None and previous.data.idp_sid == idp_sid
        await end_session(deps.ending, previous, reason="relogin", revoke=not same_idp_session)
    if deps.session_limit is not None:  # the user's oldest sessions beyond the limit end
        await deps.session_limit.after_login(sub, keep=session.key, now=deps.clock.now())
    max_age = int(session.data.absolute_expires_at - deps.clock.now())
    return redirect(record.return_url, deps.cookies.session(cookie_value, max_age))
