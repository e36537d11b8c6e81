"""E2E: OpenTelemetry tracing (README "Tracing (OpenTelemetry)") on real processes: `bffgate
serve` with ``telemetry.tracing = true`` exporting over OTLP/HTTP (the standard OTEL_*
variables) to a real receiver the test starts (tests/support/otlp.py, decoded with
opentelemetry-proto), the real oidc-provider (with its token-exchange grant), redis-server
and the echo upstream. Asserted: the span tree of a proxied call (server span -> Redis
span -> upstream client span, whose traceparent the upstream received), of a login (login
-> callback, linked -> code exchange), a refresh and a token exchange; the browser's
traceparent continued only when trusted; no secret in any exported byte. And a gateway
with tracing off exports nothing and never loads bffgate's tracing code, the tracing SDK or
an exporter (its own ``-X importtime`` log says so).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("opentelemetry.proto", reason="the otel extra: pip install -e '.[otel]'")

from support.browser import Browser
from support.e2e import CLIENT_SECRET, COOKIE_KEY, login, read_session_tokens
from support.gateway import GatewayProcess, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.otlp import CLIENT, SERVER, OtlpReceiver, children
from support.redis import RedisServer
from support.secrets_scan import SECRETS
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e

CLIENT_ID = "bff-traced"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ORDERS = "https://orders.test"
AT_TTL = 6  # refresh due 4 s after login (refresh_ahead 2)
BROWSER_TRACE, BROWSER_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
BROWSER_TP = f"00-{BROWSER_TRACE}-{BROWSER_SPAN}-01"


class ExchangeIdp(OidcProviderProcess):
    """The test OP with the token-exchange grant for one audience."""

    def _config(self) -> str:
        doc = json.loads(super()._config())
        doc["token_exchange"] = {"audiences": {ORDERS: ["orders:read"]}}
        return json.dumps(doc)


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def off_receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ports() -> dict[str, tuple[int, int]]:
    return {"on": (free_port(), free_port()), "off": (free_port(), free_port())}


@pytest.fixture(scope="module")
def op(ports: dict[str, tuple[int, int]]) -> Iterator[OidcProviderProcess]:
    with ExchangeIdp([{
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_uris": [f"http://localhost:{p}/bff/callback" for p, _ in ports.values()],
        "post_logout_redirect_uris": [f"http://localhost:{p}/" for p, _ in ports.values()],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
        "response_types": ["code"],
    }], access_token_ttl=AT_TTL) as p:
        yield p


def _config(ports: tuple[int, int], op: OidcProviderProcess, redis: RedisServer,
            upstream: EchoUpstream, tracing: bool) -> dict[str, Any]:
    return gateway_config(
        port=ports[0], admin_port=ports[1], issuer=op.issuer, client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET, redis_url=redis.url, upstream=upstream.url,
        cookie_key=COOKIE_KEY, telemetry={"tracing": tracing},
        # every session load goes to Redis (the near-cache would serve a hot one in-process)
        session={"near_cache": False},
        routes=[{"prefix": "/api", "upstream": upstream.url, "token": "user", "timeout": 5},
                {"prefix": "/orders", "upstream": upstream.url, "token": "exchange",
                 "audience": ORDERS, "scope": ["orders:read"], "timeout": 5}])


def _otel_env(receiver: OtlpReceiver, service: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": service,
            "OTEL_TRACES_EXPORTER": "otlp", "OTEL_BSP_SCHEDULE_DELAY": "100"}


@pytest.fixture(scope="module")
def traced(ports: dict[str, tuple[int, int]], op: OidcProviderProcess,
           redis_server: RedisServer, upstream: EchoUpstream,
           receiver: OtlpReceiver) -> Iterator[GatewayProcess]:
    gw = GatewayProcess(_config(ports["on"], op, redis_server, upstream, True),
                        env=_otel_env(receiver, "bffgate-e2e")).start()
    yield gw
    gw.terminate()


@pytest.fixture(scope="module")
def untraced(ports: dict[str, tuple[int, int]], op: OidcProviderProcess,
             redis_server: RedisServer, upstream: EchoUpstream,
             off_receiver: OtlpReceiver) -> Iterator[GatewayProcess]:
    # Every import the process ever makes goes to its log (stderr): the proof that
    # opentelemetry is never imported, taken from the real gateway process.
    env = {**_otel_env(off_receiver, "bffgate-off"), "PYTHONPROFILEIMPORTTIME": "1"}
    gw = GatewayProcess(_config(ports["off"], op, redis_server, upstream, False),
                        env=env).start()
    yield gw
    gw.terminate()


async def _signed_in(gw: GatewayProcess, redis: RedisServer) -> tuple[Browser, dict[str, Any]]:
    b = Browser(gw.url)
    async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_jar:
        r = await login(b, idp_jar, redis.url)
    assert r.status_code == 302, r.text
    cookie = b.cookie("__Host-bffgate")
    assert cookie
    return b, read_session_tokens(redis.url, cookie)


def _import_tree(log: str) -> list[tuple[str, list[str]]]:
    """``-X importtime`` lines as (module, the modules whose import imported it, innermost
    first): a module is listed before its importer, indented deeper."""
    entries = []
    for line in log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            field = line.split("|")[2]
            entries.append((len(field) - len(field.lstrip()), field.strip()))
    out = []
    for i, (indent, name) in enumerate(entries):
        chain, level = [], indent
        for other_indent, other in entries[i + 1:]:
            if other_indent < level:
                chain.append(other)
                level = other_indent
        out.append((name, chain))
    return out


def _one(spans: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [s for s in spans if all(s.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, [(s["name"], s["trace_id"]) for s in spans])
    return found[0]


def _server_span(receiver: OtlpReceiver, request_id: str) -> dict[str, Any]:
    return receiver.wait_for(lambda spans: next(
        (s for s in spans if s["kind"] == SERVER
         and s["attributes"].get("bffgate.request_id") == request_id), None))


async def test_proxied_call_is_one_trace_continued_from_a_same_origin_traceparent(
        traced: GatewayProcess, receiver: OtlpReceiver, upstream: EchoUpstream,
        redis_server: RedisServer) -> None:
    browser, _ = await _signed_in(traced, redis_server)
    try:
        r = await browser.api("GET", "/api/traced/1", params={"q": "x"},
                              headers={"traceparent": BROWSER_TP,
                                       "sec-fetch-site": "same-origin"})
    finally:
        await browser.aclose()
    assert r.status_code == 200, r.text
    server = _server_span(receiver, r.headers["x-request-id"])
    assert server["trace_id"] == BROWSER_TRACE and server["parent"] == BROWSER_SPAN
    assert server["name"] == "GET /api"
    assert server["resource"]["service.name"] == "bffgate-e2e"
    a = server["attributes"]
    assert a["http.request.method"] == "GET" and a["http.route"] == "/api"
    assert a["url.path"] == "/api/traced/1" and a["http.response.status_code"] == 200

    spans = receiver.wait_for(lambda spans: len(children(spans, server)) >= 2 and spans)
    below = children(spans, server)
    redis = [s for s in below if s["name"] == "redis load_session"]
    assert len(redis) == 1 and redis[0]["kind"] == CLIENT
    assert redis[0]["attributes"]["db.system.name"] == "redis"
    assert redis[0]["attributes"]["server.port"] == redis_server.port
    call = _one(below, name="GET", kind=CLIENT)
    assert call["attributes"]["url.full"] == f"{upstream.url}/api/traced/1"  # no query
    assert call["attributes"]["http.response.status_code"] == 200
    assert call["start"] >= redis[0]["end"]  # session first, then the upstream
    # The upstream got exactly one traceparent: the client span's, in the browser's trace.
    assert header_values(upstream.last_for("/api/traced/1"), "traceparent") == [
        f"00-{BROWSER_TRACE}-{call['span_id']}-01"]


async def test_an_untrusted_traceparent_starts_a_new_trace_and_is_only_linked(
        traced: GatewayProcess, receiver: OtlpReceiver, upstream: EchoUpstream,
        redis_server: RedisServer) -> None:
    browser, _ = await _signed_in(traced, redis_server)
    try:
        r = await browser.api("GET", "/api/foreign", headers={
            "traceparent": BROWSER_TP, "sec-fetch-site": "cross-site"})
    finally:
        await browser.aclose()
    assert r.status_code == 200
    server = _server_span(receiver, r.headers["x-request-id"])
    assert server["trace_id"] != BROWSER_TRACE and server["parent"] == ""
    assert server["links"] == [{"trace_id": BROWSER_TRACE, "span_id": BROWSER_SPAN,
                                "attributes": {"bffgate.untrusted": True}}]
    (sent,) = header_values(upstream.last_for("/api/foreign"), "traceparent")
    assert sent.split("-")[1] == server["trace_id"]


async def test_login_traces_login_callback_and_code_exchange(
        traced: GatewayProcess, receiver: OtlpReceiver, redis_server: RedisServer,
        op: OidcProviderProcess) -> None:
    before = {s["span_id"] for s in receiver.snapshot()}
    browser, _ = await _signed_in(traced, redis_server)
    await browser.aclose()

    def login_spans(spans: list[dict[str, Any]]) -> Any:
        new = [s for s in spans if s["span_id"] not in before]
        names = {s["name"] for s in new}
        return new if {"GET /bff/login", "GET /bff/callback", "oidc code exchange",
                       "redis create_session"} <= names else None

    spans = receiver.wait_for(login_spans)
    start = _one(spans, name="GET /bff/login", kind=SERVER)
    assert start["attributes"]["http.response.status_code"] == 302
    assert [s["name"] for s in children(spans, start)] == ["redis put_login"]
    callback = _one(spans, name="GET /bff/callback", kind=SERVER)
    assert callback["attributes"]["url.path"] == "/bff/callback"  # never the query
    # The callback is its own request (a browser navigation): linked to its login's span.
    assert callback["links"] == [{"trace_id": start["trace_id"], "span_id": start["span_id"],
                                  "attributes": {"bffgate.link": "login"}}]
    below = children(spans, callback)
    names = [s["name"] for s in sorted(below, key=lambda s: s["start"])]
    assert names[0] == "redis take_login" and "redis create_session" in names
    exchange = _one(below, name="oidc code exchange", kind=CLIENT)
    assert exchange["attributes"]["oauth.grant_type"] == "authorization_code"
    assert exchange["attributes"]["http.response.status_code"] == 200
    assert exchange["attributes"]["url.full"] == op.metadata()["token_endpoint"]
    assert names.index("oidc code exchange") < names.index("redis create_session")


async def test_refresh_and_token_exchange_are_client_spans_of_the_request(
        traced: GatewayProcess, receiver: OtlpReceiver, redis_server: RedisServer) -> None:
    browser, _ = await _signed_in(traced, redis_server)
    try:
        exchanged = await browser.api("GET", "/orders/1")
        assert exchanged.status_code == 200, exchanged.text
        cookie = browser.cookie("__Host-bffgate")
        assert cookie
        read_session_tokens(redis_server.url, cookie)  # the exchanged token, for the scan
        await asyncio.sleep(AT_TTL - 2 + 0.5)  # the access token is now due for refresh
        refreshed = await browser.api("GET", "/api/after-refresh")
        assert refreshed.status_code == 200, refreshed.text
        read_session_tokens(redis_server.url, cookie)  # the rotated tokens, for the scan
    finally:
        await browser.aclose()
    server = _server_span(receiver, exchanged.headers["x-request-id"])
    spans = receiver.wait_for(lambda s: any(x["name"] == "oidc token exchange"
                                            for x in children(s, server)) and s)
    grant = _one(children(spans, server), name="oidc token exchange")
    assert grant["attributes"]["oauth.grant_type"] == TOKEN_EXCHANGE

    server = _server_span(receiver, refreshed.headers["x-request-id"])

    def refresh_below(spans: list[dict[str, Any]]) -> Any:
        mine = [s for s in spans if s["trace_id"] == server["trace_id"]]
        return [s for s in mine if s["name"] == "oidc refresh"] or None

    (refresh,) = receiver.wait_for(refresh_below)
    assert refresh["kind"] == CLIENT
    assert refresh["attributes"]["oauth.grant_type"] == "refresh_token"
    # the single-flight refresh around it: lease lock, reload, grant, compare-and-set save
    names = {s["name"] for s in receiver.wait_for(
        lambda spans: [s for s in spans if s["trace_id"] == server["trace_id"]
                       and s["name"] == "redis replace_session"] and spans)
        if s["trace_id"] == server["trace_id"]}
    assert {"redis lock acquire", "redis lock release", "redis replace_session"} <= names


async def test_tracing_off_exports_nothing_and_never_imports_opentelemetry(
        untraced: GatewayProcess, off_receiver: OtlpReceiver, upstream: EchoUpstream,
        redis_server: RedisServer) -> None:
    browser, _ = await _signed_in(untraced, redis_server)
    try:
        r = await browser.api("GET", "/api/untraced", headers={"traceparent": BROWSER_TP,
                                                               "sec-fetch-site": "same-origin"})
        assert r.status_code == 200
        r = await browser.api("GET", "/api/cross-site-untraced", headers={
            "traceparent": BROWSER_TP, "sec-fetch-site": "cross-site"})
        assert r.status_code == 200
    finally:
        await browser.aclose()
    # the SPA's own trace id passes on, with a span id of ours...
    (sent,) = header_values(upstream.last_for("/api/untraced"), "traceparent")
    assert sent.startswith(f"00-{BROWSER_TRACE}-") and BROWSER_SPAN not in sent
    # ...another site's never: the same trust rule as with tracing on (a new trace)
    (foreign,) = header_values(upstream.last_for("/api/cross-site-untraced"), "traceparent")
    assert BROWSER_TRACE not in foreign and BROWSER_SPAN not in foreign
    time.sleep(1.0)  # ten export intervals of the traced configuration
    assert off_receiver.raw == []
    imports = _import_tree(untraced.log())
    names = [name for name, _ in imports]
    assert "bffgate.app" in names and "bffgate.proxy.forward" in names  # the log lists imports
    # None of bffgate's tracing code, no tracing SDK, no exporter: ever.
    assert not [n for n in names if n.startswith(("bffgate.telemetry.sdk",
                                                  "bffgate.telemetry.server",
                                                  "bffgate.telemetry.clients",
                                                  "bffgate.telemetry.hooks",
                                                  "opentelemetry.sdk.trace",
                                                  "opentelemetry.exporter"))]
    # redis-py (>= 7) imports opentelemetry's metrics SDK for its own optional metrics
    # whenever the package is installed; any opentelemetry module here is imported by it.
    for name, importers in imports:
        if name.startswith("opentelemetry"):
            assert any(i.startswith("redis") for i in importers), (name, importers)
            assert not any(i.startswith("bffgate.telemetry") for i in importers), name


async def test_no_secret_in_any_exported_span(traced: GatewayProcess, receiver: OtlpReceiver,
                                              redis_server: RedisServer) -> None:
    """Last in this file: every byte the receiver got (this file's traces, and one more
    login and call of its own), against every secret the tests saw (tokens, exchanged
    token, code, verifier, client secret, cookie key and value)."""
    browser, _ = await _signed_in(traced, redis_server)
    try:
        r = await browser.api("GET", "/api/last")
        assert r.status_code == 200
    finally:
        await browser.aclose()
    _server_span(receiver, r.headers["x-request-id"])
    assert all(ct == "application/x-protobuf" for ct in receiver.content_types)
    blob = b"\n".join(receiver.raw).decode("latin-1") + json.dumps(receiver.snapshot())
    kinds = set(SECRETS.values())
    assert {"access_token", "refresh_token", "authorization_code", "code_verifier",
            "session_cookie", "client_secret"} <= kinds
    leaks = sorted({kind for value, kind in SECRETS.items() if value in blob})
    assert leaks == []


@pytest.mark.parametrize("workers", [pytest.param(1, id="one-process"),
                                     pytest.param(2, id="two-workers")])
async def test_spans_still_batched_at_shutdown_are_sent(
        workers: int, op: OidcProviderProcess, redis_server: RedisServer,
        upstream: EchoUpstream) -> None:
    """A batch that would leave only in a minute is sent when the gateway stops: at exit in
    one process, by Gateway.stop() in a forked worker (which leaves without atexit)."""
    receiver = OtlpReceiver().start()
    port, admin = free_port(), free_port()
    config = _config((port, admin), op, redis_server, upstream, True)
    config["server"]["workers"] = workers
    # the IdP knows only the module's two redirect URIs: this gateway serves no login
    config["routes"] = [{"prefix": "/public", "upstream": upstream.url, "token": "none"}]
    gw = GatewayProcess(config, env={**_otel_env(receiver, "bffgate-stop"),
                                     "OTEL_BSP_SCHEDULE_DELAY": "60000"}).start()
    try:
        async with httpx.AsyncClient(base_url=gw.url, trust_env=False, timeout=10) as http:
            ids = [(await http.get(f"/public/stop/{i}")).headers["x-request-id"]
                   for i in range(4)]
        await asyncio.sleep(0.5)
        assert receiver.raw == []  # still batched
        assert gw.terminate() == 0
        exported = {s["attributes"].get("bffgate.request_id") for s in receiver.snapshot()}
        assert set(ids) <= exported
    finally:
        gw.kill()
        receiver.stop()
