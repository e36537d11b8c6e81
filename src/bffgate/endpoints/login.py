"""GET /bff/login: check returnUrl, create the browser-bound login record, 302 to the IdP."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.crypto.cookie_codec import binding_hash, new_login_binding
from bffgate.edge.fields import single_cookie
from bffgate.edge.responses import redirect
from bffgate.endpoints.cookies import CookieWriter
from bffgate.endpoints.return_url import ReturnUrlRejected, check_return_url
from bffgate.errors import GatewayError, IdentityProviderUnavailable, InvalidReturnUrl
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient
from bffgate.oidc.errors import OidcError
from bffgate.oidc.pkce import new_code_verifier, new_nonce, new_state, s256_challenge
from bffgate.session.logins import LoginRecords
from bffgate.session.model import LoginRecord

_BINDING_SHAPE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True)
class LoginDeps:
    logins: LoginRecords
    oidc: OidcClient
    cookies: CookieWriter
    clock: Clock
    metrics: Metrics


async def login(request: Request, deps: LoginDeps) -> Response:
    """The handler, timed whatever its outcome (M3); a refusal ends the login attempt (M5)."""
    started = time.perf_counter()
    try:
        return await _start(request, deps)
    except GatewayError as exc:
        deps.metrics.login_attempts.labels("login", "failed", exc.reason.split(":")[0]).inc()
        raise
    except Exception:
        deps.metrics.login_attempts.labels("login", "failed", "internal_error").inc()
        raise
    finally:
        deps.metrics.login_start_duration.observe(time.perf_counter() - started)


async def _start(request: Request, deps: LoginDeps) -> Response:
    values = request.query_params.getlist("returnUrl")
    if len(values) > 1:
        _reject("duplicate_parameter")
    return_url = values[0] if values else "/"
    try:
        check_return_url(return_url)
    except ReturnUrlRejected as exc:
        _reject(exc.reason)

    # One binding value per browser: reuse a well-formed existing one so parallel tabs
    # share it (no cookie multiplication), otherwise mint a new one.
    existing = single_cookie(request.headers.raw, deps.cookies.login_name)
    binding = existing if existing and _BINDING_SHAPE.match(existing) else new_login_binding()

    verifier, state, nonce = new_code_verifier(), new_state(), new_nonce()
    record = LoginRecord(verifier, nonce, return_url, deps.clock.now(),
                         binding_hash(binding))
    await deps.logins.save(state, record, binding)
    try:
        url = await deps.oidc.authorization_url(
            state=state, nonce=nonce, code_challenge=s256_challenge(verifier))
    except OidcError as exc:
        audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason=exc.reason)
        raise IdentityProviderUnavailable(reason=exc.reason, audited=True) from exc
    deps.metrics.logins_started.inc()
    audit.emit(AuditEvent.LOGIN_STARTED)
    return redirect(url, deps.cookies.login_binding(binding))


def _reject(reason: str) -> None:
    audit.emit(AuditEvent.LOGIN_FAILED, level="warning", reason=f"return_url:{reason}")
    raise InvalidReturnUrl(reason=f"return_url:{reason}", audited=True)
