"""The IdP's grants as the session layer takes them, and the one report of refresh outcomes.

Sits above session and oidc (which never import each other): a token response becomes
``NewTokens`` here only (login and refresh), the OIDC client's refresh errors become the
session layer's (refused for good, or transient), and ``RefreshReport`` is the observer
the refresh coordinator tells every decision: metrics and audit in one place.
"""

from __future__ import annotations

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.metrics import Metrics
from bffgate.oidc.client import OidcClient, TokenResponse
from bffgate.oidc.dpop import DpopKey, DpopKeyInvalid
from bffgate.oidc.errors import IdTokenInvalid, OidcError, TokenRejected
from bffgate.session.model import NewTokens
from bffgate.session.outcomes import (
    Ended,
    Refreshed,
    RefreshRejectedError,
    RefreshUnavailableError,
    Unavailable,
)


def new_tokens(t: TokenResponse) -> NewTokens:
    key = t.dpop_key.secret() if t.dpop_key is not None else None  # sealed by the session
    return NewTokens(t.access_token, t.refresh_token, t.id_token, t.expires_at, key, t.token_type)


class OidcRefresher:
    """The TokenRefresher: the refresh grant for the session of ``sub``.

    The OIDC client validates a refreshed ID token (OIDC Core 12.2) and revokes what it was
    just given when a check fails; for the session that grant is refused for good."""

    def __init__(self, oidc: OidcClient) -> None:
        self._oidc = oidc

    async def __call__(self, refresh_token: str, sub: str, dpop_key: str | None = None, /) \
            -> NewTokens:
        try:
            key = DpopKey.from_secret(dpop_key) if dpop_key is not None else None
            return new_tokens(await self._oidc.refresh(refresh_token, sub=sub, dpop_key=key))
        except DpopKeyInvalid as exc:  # a record that can't be: the session can't go on
            raise RefreshRejectedError("dpop_key_invalid") from exc
        except TokenRejected as exc:
            # A definitive OAuth answer (RFC 6749 5.2: invalid_grant, invalid_scope, ... or
            # a 200 that is no usable token response); retrying can't help, and treating it
            # as an outage would leave the user with 503s until the session times out.
            raise RefreshRejectedError(exc.error) from exc
        except IdTokenInvalid as exc:
            raise RefreshRejectedError(f"id_token_invalid:{exc.check}") from exc
        except OidcError as exc:  # unreachable, 5xx, temporarily_unavailable: transient
            raise RefreshUnavailableError(str(exc)) from exc


class RefreshReport:
    """The RefreshObserver: ``bffgate_refresh_total{outcome}`` and the session audit events."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, outcome: Refreshed | Ended | Unavailable) -> None:
        s = outcome.session
        match outcome:
            case Refreshed():
                self._metrics.refresh.labels("refreshed").inc()
                audit.emit(AuditEvent.SESSION_REFRESHED, session=s.handle.short,
                           sub=s.data.sub)
            case Ended(refresh_error=None, reason=reason):
                audit.emit(AuditEvent.SESSION_EXPIRED, reason=reason, session=s.handle.short,
                           sub=s.data.sub)
            case Ended(refresh_error=error):
                self._metrics.refresh.labels("rejected").inc()
                audit.emit(AuditEvent.SESSION_REFRESH_FAILED, level="warning", reason=error,
                           session=s.handle.short, sub=s.data.sub)
            case Unavailable():
                self._metrics.refresh.labels("unavailable").inc()
