"""The gateway's error tree: every failure the edge turns into a problem+json response.

    GatewayError                      (500, internal)
    ├── BadRequest                    (400)
    │   ├── InvalidReturnUrl          (400, returnUrl is not a local path)
    │   ├── LoginRejected             (400, callback refused: state, binding, iss, id token...)
    │   ├── AmbiguousRequest          (400, a header/cookie the gateway trusts sent twice)
    │   └── PathRejected              (400, proxied path escapes its route)
    ├── CsrfRejected                  (401, X-CSRF missing / foreign Origin)
    ├── NotAuthenticated              (401, no usable session; carries login_url; a dead
    │   │                              cookie is cleared)
    │   └── SessionEnded              (401, refresh rejected by the IdP: session deleted)
    ├── Forbidden                     (403, e.g. bad logout sid, bad admin token)
    │   └── ExchangeRefused           (403, the IdP refused a route's token exchange; the
    │                                  session lives on)
    ├── RouteNotFound                 (404)
    ├── MethodNotAllowed              (405)
    ├── BodyTooLarge                  (413)
    ├── UpstreamUnavailable           (502, upstream refused/reset/bad response)
    │   └── UpstreamTimeout           (504)
    ├── IdentityProviderUnavailable   (503 + Retry-After: IdP unreachable / 5xx)
    ├── RouteTokenUnavailable         (503 + Retry-After: the IdP refuses the gateway's own
    │                                  client-credentials grant for a route: misconfigured)
    ├── ClientAborted                 (499, never sent: the client closed the connection)
    └── StoreUnavailable              (503 + Retry-After: Redis unreachable)

Protocol-level errors raised below the edge (oidc, store) are translated into these at
their boundary; callers decide by type, never by matching message strings. The edge's
problem boundary (bffgate.edge.boundary) answers every one of them and audits it as
``request.rejected``, unless the code that raised it already wrote its own event
(``audited=True``: ``csrf.rejected``, ``login.failed``, ...).
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal gateway error"
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, reason: str | None = None,
                 audited: bool = False) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.reason = reason or self.slug
        self.audited = audited  # True: its audit event is written, the boundary adds none


class BadRequest(GatewayError):
    status, slug, title = 400, "bad-request", "Bad request"


class InvalidReturnUrl(BadRequest):
    slug, title = "invalid-return-url", "returnUrl must be a local path"


class LoginRejected(BadRequest):
    slug, title = "login-rejected", "The login could not be completed"


class PathRejected(BadRequest):
    slug, title = "path-rejected", "The request path is not allowed"


class AmbiguousRequest(BadRequest):
    """A header or cookie the gateway relies on came twice (or as a list): refused, since
    picking one value would be a guess (``reason`` is e.g. ``duplicate_header:x-csrf``)."""


class CsrfRejected(GatewayError):
    status, slug, title = 401, "csrf-rejected", "Anti-forgery check failed"
    # The detail names what to send, so a developer sees the fix in the network tab.
    DETAILS = {
        "csrf_header_missing":
            "missing or invalid X-CSRF header: send `X-CSRF: 1` on every API call",
        "origin_mismatch":
            "the Origin header is not this gateway's origin (server.public_url): call the "
            "API from the page the gateway serves",
    }

    def __init__(self, detail: str | None = None, *, reason: str | None = None,
                 audited: bool = False) -> None:
        super().__init__(detail or self.DETAILS.get(reason or ""), reason=reason,
                         audited=audited)


class NotAuthenticated(GatewayError):
    """No usable session. ``dead_cookie``: the request's session cookie names no live
    session (bad signature, or the session is gone), so the answer clears it."""

    status, slug, title = 401, "not-authenticated", "Login required"
    dead_cookie_default = False

    def __init__(
        self, detail: str | None = None, *, reason: str | None = None, login_url: str = "",
        dead_cookie: bool | None = None,
    ) -> None:
        super().__init__(detail, reason=reason)
        self.login_url = login_url
        self.dead_cookie = self.dead_cookie_default if dead_cookie is None else dead_cookie


class SessionEnded(NotAuthenticated):
    slug, title = "session-ended", "The session has ended; login required"
    dead_cookie_default = True  # the session was just deleted


class Forbidden(GatewayError):
    status, slug, title = 403, "forbidden", "Forbidden"


class ExchangeRefused(Forbidden):
    """The IdP refused to exchange the user's token for a route's (RFC 8693: the audience
    is not one it serves, the user's token is no longer active, ...): a 403 for that route
    only, the session is untouched."""

    slug, title = "exchange-refused", "The identity provider refused a token for this route"


class RouteNotFound(GatewayError):
    status, slug, title = 404, "not-found", "No route matches this path"


class MethodNotAllowed(GatewayError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(
        self, detail: str | None = None, *, reason: str | None = None, allow: bytes = b""
    ) -> None:
        super().__init__(detail, reason=reason)
        self.allow = allow  # the Allow header value (RFC 9110 15.5.6), empty if unknown


class BodyTooLarge(GatewayError):
    status, slug, title = 413, "body-too-large", "Request body too large"


class UpstreamUnavailable(GatewayError):
    status, slug, title = 502, "upstream-unavailable", "The upstream service failed"


class UpstreamTimeout(UpstreamUnavailable):
    status, slug, title = 504, "upstream-timeout", "The upstream service timed out"


class IdentityProviderUnavailable(GatewayError):
    status, slug, title = 503, "idp-unavailable", "The identity provider is unavailable"
    retry_after = 5


class RouteTokenUnavailable(GatewayError):
    """The IdP refused the gateway's client-credentials grant for a route (invalid_client,
    invalid_scope, invalid_target, ...): a gateway or IdP misconfiguration, not the caller's
    fault, so a 5xx; retried after a while (an operator fixes the registration)."""

    status, slug, title = 503, "token-unavailable", "The route's access token is unavailable"
    retry_after = 30


class ClientAborted(GatewayError):
    """The client closed the connection mid-request or mid-response: nothing can be sent;
    counted and logged once as ``request.aborted`` (499, as nginx names it)."""

    status, slug, title = 499, "client-closed", "The client closed the connection"


class StoreUnavailable(GatewayError):
    status, slug, title = 503, "store-unavailable", "The session store is unavailable"
    retry_after = 2

