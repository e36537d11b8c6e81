"""CLIENT spans around what the gateway calls: the store (Redis), the IdP, the upstream.

Each wrapper is installed at assembly time only while tracing is on. Attributes are
chosen, never copied: no key, argument, form field, header or body value goes into a span
(a session key, a code, a token, a cookie never can). Errors set the status and
``error.type`` (the exception's class or the HTTP status), never a message.

- ``TracedStore``: ``redis <operation>`` for the session store's operations (login
  records, session load / create / replace / delete, indexes, the replay guard, cached
  client tokens, ping); ``db.system.name`` = ``redis``, ``bffgate.store.operation``,
  ``server.address`` / ``server.port`` of ``redis.url`` (never its password).
- ``TracedTransport``: the IdP's httpx transport: ``oidc code exchange``, ``oidc refresh``,
  ``oidc token exchange``, ``oidc client credentials``, ``oidc revocation``, ``oidc par``,
  ``oidc discovery``, ``oidc GET`` (JWKS); ``oauth.grant_type`` from a fixed list; the request
  carries the span's ``traceparent``.
- ``TracedUpstream``: the proxied call, ``{method}`` with ``http.request.method``,
  ``url.full`` (without its query), ``server.*``, ``http.response.status_code``; it ends
  when the response is closed (its body streamed), and the upstream request carries this
  span's ``traceparent`` (and ``tracestate``) in place of the one proxy.headers made.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from bffgate.telemetry.context import format_traceparent

T = TypeVar("T")

STORE_OPERATIONS = frozenset({
    "put_login", "take_login", "create_session", "load_session", "replace_session",
    "delete_session", "sessions_exist", "keys_for_sub", "keys_for_idp_sid", "claim_once",
    "get_cached_token", "put_cached_token", "ping", "peek_sessions",
})
LOCK_OPERATIONS = frozenset({"acquire", "release", "extend"})
GRANTS = {
    "authorization_code": "code exchange",
    "refresh_token": "refresh",
    "urn:ietf:params:oauth:grant-type:token-exchange": "token exchange",
    "client_credentials": "client credentials",
}


def failed(span: Span, exc: BaseException) -> None:
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR))


def trace_headers(span: Span) -> list[tuple[str, str]]:
    """``traceparent`` (and ``tracestate``) naming ``span`` as the parent of the callee."""
    sc = span.get_span_context()
    out = [("traceparent", format_traceparent(sc.trace_id, sc.span_id, int(sc.trace_flags)))]
    state = sc.trace_state.to_header()
    if state:
        out.append(("tracestate", state))
    return out


def server_attributes(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme in ("https", "rediss") else 80)
    return {"server.address": parts.hostname or "", "server.port": port}


class TracedStore:
    """The store, its operations in spans; any other attribute is the store's own."""

    def __init__(self, inner: Any, tracer: trace.Tracer, attributes: Mapping[str, Any]) -> None:
        self._inner, self._tracer, self._attributes = inner, tracer, dict(attributes)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in STORE_OPERATIONS:
            return functools.partial(traced_call, self._tracer, f"redis {name}",
                                     {**self._attributes, "bffgate.store.operation": name}, value)
        if name == "refresh_lock":
            return functools.partial(self._lock, value)
        return value

    def _lock(self, make: Callable[..., Any], *args: Any, **kwargs: Any) -> TracedLock:
        return TracedLock(make(*args, **kwargs), self._tracer, self._attributes)


class TracedLock:
    """A refresh (or exchange) lease lock: ``redis lock acquire`` / ``release`` / ``extend``
    (the wait for another replica's refresh shows as the acquire span's duration)."""

    def __init__(self, inner: Any, tracer: trace.Tracer, attributes: Mapping[str, Any]) -> None:
        self._inner, self._tracer, self._attributes = inner, tracer, attributes

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if name in LOCK_OPERATIONS:
            return functools.partial(traced_call, self._tracer, f"redis lock {name}",
                                     {**self._attributes, "bffgate.store.operation": f"lock_{name}"},
                                     value)
        return value


async def traced_call(tracer: trace.Tracer, name: str, attributes: Mapping[str, Any],
                      fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, record_exception=False,
                                      set_status_on_exception=False,
                                      attributes=attributes) as span:
        try:
            return await fn(*args, **kwargs)
        except BaseException as exc:
            failed(span, exc)
            raise


def idp_operation(request: httpx.Request) -> tuple[str, str | None]:
    """(span name, grant type) of an IdP request, from its form's field names only."""
    if request.method != "POST":
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return "oidc discovery", None
        return f"oidc {request.method}", None  # JWKS
    form = parse_qs(request.content.decode("latin-1"), keep_blank_values=True)
    grant = (form.get("grant_type") or [""])[0]
    if grant in GRANTS:
        return f"oidc {GRANTS[grant]}", grant
    if "token_type_hint" in form or ("token" in form and not grant):
        return "oidc revocation", None
    if "response_type" in form or "request" in form:
        return "oidc par", None
    return "oidc POST", None


class TracedTransport(httpx.AsyncBaseTransport):
    """The IdP client's transport, each request in a CLIENT span."""

    def __init__(self, inner: httpx.AsyncBaseTransport, tracer: trace.Tracer) -> None:
        self._inner, self._tracer = inner, tracer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        name, grant = idp_operation(request)
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "url.full": str(request.url.copy_with(query=None, fragment=None)),
            **server_attributes(str(request.url)),
        }
        if grant:
            attributes["oauth.grant_type"] = grant
        with self._tracer.start_as_current_span(
                name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=False,
                set_status_on_exception=False) as span:
            for k, v in trace_headers(span):
                request.headers[k] = v
            try:
                response = await self._inner.handle_async_request(request)
            except BaseException as exc:
                failed(span, exc)
                raise
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _TracedResponse:
    """The upstream's response; the span ends when it is closed."""

    def __init__(self, inner: Any, span: Span) -> None:
        self._inner, self._span = inner, span
        self.status: int = inner.status
        self.headers: list[tuple[bytes, bytes]] = inner.headers

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner.body():
                yield chunk
        except BaseException as exc:
            failed(self._span, exc)
            raise

    async def close(self) -> None:
        try:
            await self._inner.close()
        finally:
            self._span.end()


class TracedUpstream:
    """An UpstreamClient whose calls are CLIENT spans (children of the request's span)."""

    def __init__(self, inner: Any, tracer: trace.Tracer) -> None:
        self._inner, self._tracer = inner, tracer

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None, timeout: Any) -> _TracedResponse:
        parts = urlsplit(url)
        span = self._tracer.start_span(method, kind=SpanKind.CLIENT, attributes={
            "http.request.method": method,
            "url.full": f"{parts.scheme}://{parts.netloc}{parts.path}"[:1024],
            **server_attributes(url)})
        # One traceparent upstream: this span's, in place of the one proxy.headers made.
        out = [(k, v) for k, v in headers if k.lower() not in (b"traceparent", b"tracestate")]
        out.extend((k.encode(), v.encode("latin-1")) for k, v in trace_headers(span))
        try:
            resp = await self._inner.send(method, url, out, body, timeout)
        except BaseException as exc:
            failed(span, exc)
            span.end()
            raise
        span.set_attribute("http.response.status_code", resp.status)
        if resp.status >= 500:
            span.set_attribute("error.type", str(resp.status))
            span.set_status(Status(StatusCode.ERROR))
        return _TracedResponse(resp, span)

    async def close(self) -> None:
        await self._inner.close()


def traced_upstreams(factory: Callable[[], T], tracer: trace.Tracer) -> Callable[[], T]:
    return lambda: TracedUpstream(factory(), tracer)  # type: ignore[return-value]
