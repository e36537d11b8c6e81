"""POST /bff/backchannel: OIDC Back-Channel Logout 1.0 — the IdP ends sessions server-side.

The body is ``logout_token=<JWT>`` (form-encoded). A valid, unreplayed token ends every
session of its ``sid`` (the IdP session), or of its ``sub`` when it carries no ``sid``
(``session.revoked`` for each, reason ``backchannel``): 200 with ``Cache-Control:
no-store``. Anything else is 400 with a JSON error (spec 2.8) and an audit event. No CSRF
header applies: the caller is the IdP, and the token is its proof.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.endpoints.deps import BackchannelDeps
from bffgate.errors import IdentityProviderUnavailable
from bffgate.oidc.errors import IdTokenInvalid, OidcError, ProviderUnavailable
from bffgate.problems import NO_STORE
from bffgate.session.ending import BySid, BySub, end_sessions

MAX_BODY = 64 * 1024
REPLAY_WINDOW = 900  # seconds a jti is remembered (>= the accepted token age + leeway)


def _error(reason: str, description: str) -> Response:
    audit.emit(AuditEvent.LOGOUT_BACKCHANNEL, level="warning", reason=reason, status=400)
    response = JSONResponse({"error": "invalid_request", "error_description": description},
                            status_code=400)
    response.raw_headers.extend(NO_STORE)
    return response


async def backchannel(request: Request, deps: BackchannelDeps) -> Response:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return _error("content_type", "expected application/x-www-form-urlencoded")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _error("body_too_large", "request body too large")
    try:
        form = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return _error("malformed_body", "malformed form body")
    tokens = form.get("logout_token", [])
    if len(tokens) != 1:
        return _error("logout_token_missing", "exactly one logout_token is required")
    try:
        logout = await deps.oidc.validate_logout_token(tokens[0])
    except IdTokenInvalid as exc:
        return _error(f"logout_token_invalid:{exc.check}", "invalid logout token")
    except ProviderUnavailable as exc:
        raise IdentityProviderUnavailable(reason="jwks_unavailable") from exc
    except OidcError as exc:
        return _error(f"logout_token_invalid:{exc.reason}", "invalid logout token")
    if not await deps.store.claim_once(f"jti:{deps.issuer}:{logout.jti}",
                                       REPLAY_WINDOW):
        return _error("logout_token_replayed", "logout token already used")

    which = BySid(logout.sid, logout.sub) if logout.sid else BySub(logout.sub or "")
    ended = await end_sessions(deps.store, which, reason="backchannel")
    audit.emit(AuditEvent.LOGOUT_BACKCHANNEL, sub=logout.sub, count=ended, status=200,
               reason="sid" if logout.sid else "sub")
    response = Response(status_code=200)
    response.raw_headers.extend(NO_STORE)
    return response
