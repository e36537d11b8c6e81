"""Cross-field configuration rules, one function per section: each yields (key, problem) for
every setting that would silently weaken the gateway (explicit checks, never ``assert``)."""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from bffgate.config.model import RouteSettings, Settings
from bffgate.oidc.client_key import ClientKeyError, load_client_key
from bffgate.proxy.routes import DEFAULT_METHODS, FORBIDDEN_METHODS, KNOWN_METHODS

Problems = Iterator[tuple[str, str]]  # (key, what is wrong and what to do)

# Authorization parameters the gateway sets itself: extra_auth_params may not replace them.
_PROTOCOL_PARAMS = frozenset({"response_type", "client_id", "redirect_uri", "scope", "state",
                              "nonce", "code_challenge", "code_challenge_method", "request_uri"})


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check(s: Settings) -> Problems:
    """Every rule of every section, in the order the sections are documented."""
    for section in SECTION_RULES:
        yield from section(s)


def server(s: Settings) -> Problems:
    pu = urlsplit(s.server.public_url)
    if not s.server.public_url:
        yield "server.public_url", ("required (the origin the browser sees, "
                                    "e.g. https://app.example.com)")
    elif pu.scheme not in ("https", "http") or not pu.netloc:
        yield "server.public_url", f"must be an absolute http(s) URL; got {s.server.public_url!r}"
    elif pu.scheme == "http" and not is_loopback_host(pu.hostname):
        yield "server.public_url", ("must use https unless the host is loopback "
                                    "(localhost, 127.0.0.1)")
    elif pu.path not in ("", "/") or pu.query or pu.fragment:
        yield "server.public_url", "must be an origin only (no path, query or fragment)"
    yield from _listen("server.listen", s.server.listen)
    if s.server.admin_listen:
        yield from _listen("server.admin_listen", s.server.admin_listen)
        admin_host = s.server.admin_listen.rpartition(":")[0]
        if (not is_loopback_host(admin_host) and not s.server.admin_listen.startswith("unix:")
                and len(s.server.admin_token.get()) < 16):
            yield ("server.admin_token",
                   "required (>= 16 characters) when admin_listen is not loopback")
    for cidr in s.server.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            yield "server.trusted_proxies", f"not an IP network: {cidr!r}"
    if s.server.max_body_size <= 0:
        yield "server.max_body_size", "must be positive"
    if isinstance(s.server.workers, int) and s.server.workers < 1:
        yield "server.workers", (f'must be 1 or more, or "auto" (one per core); '
                                 f"got {s.server.workers}")


def oidc(s: Settings) -> Problems:
    o = s.oidc
    iu = urlsplit(o.issuer)
    if not o.issuer:
        yield "oidc.issuer", "required (the IdP's issuer URL)"
    elif iu.scheme not in ("https", "http") or not iu.netloc:
        yield "oidc.issuer", f"must be an absolute URL; got {o.issuer!r}"
    elif iu.scheme == "http" and not is_loopback_host(iu.hostname):
        yield "oidc.issuer", "must use https unless the host is loopback"
    if not o.client_id:
        yield "oidc.client_id", "required"
    if o.client_auth in ("client_secret_basic", "client_secret_post"):
        if not o.client_secret:
            yield "oidc.client_secret", f"required for client_auth = {o.client_auth}"
    elif o.client_auth == "private_key_jwt":
        if not o.private_key:
            yield "oidc.private_key", "required for client_auth = private_key_jwt (PEM or JWK)"
        else:
            try:  # the same loading the client does at startup: no surprise at token time
                load_client_key(o.private_key.get())
            except ClientKeyError as exc:
                yield "oidc.private_key", str(exc)
    if "openid" not in o.scopes:
        yield "oidc.scopes", "must include 'openid'"
    if not o.redirect_path.startswith("/") or o.redirect_path.startswith("//"):
        yield "oidc.redirect_path", "must be a local path starting with a single '/'"
    plr = o.post_logout_redirect
    if not (plr.startswith("/") and not plr.startswith("//")) and urlsplit(plr).scheme != "https":
        yield "oidc.post_logout_redirect", "must be a local path or an https URL"
    bad_algs = [a for a in o.id_token_algs if a.lower() == "none" or a.startswith("HS")]
    if bad_algs:
        yield "oidc.id_token_algs", f"must not contain 'none' or HMAC algorithms; got {bad_algs}"
    clash = sorted(_PROTOCOL_PARAMS & set(o.extra_auth_params))
    if clash:
        yield "oidc.extra_auth_params", f"must not override protocol parameters: {clash}"
    if o.clock_skew < 0 or o.clock_skew > 300:
        yield "oidc.clock_skew", "must be between 0 and 300 seconds"
    if o.dpop:  # every user token is DPoP-bound then: a route that can't take one can't work
        for i, r in enumerate(s.routes):
            if not r.dpop and r.token != "none":
                yield f"routes[{i}].dpop", ("false is not possible with oidc.dpop = true: the "
                                            "IdP binds the tokens (a bound token is no bearer)")


def session(s: Settings) -> Problems:
    if s.session.idle_timeout <= 0:
        yield "session.idle_timeout", "must be positive"
    if s.session.absolute_timeout < s.session.idle_timeout:
        yield "session.absolute_timeout", "must be >= session.idle_timeout"
    if s.session.refresh_ahead < 0:
        yield "session.refresh_ahead", "must not be negative"
    if not 30 <= s.session.login_timeout <= 3600:
        yield "session.login_timeout", "must be between 30 seconds and 1 hour"
    if not 0 <= s.log.flush_interval <= 1:
        # longer would hold audit lines that a crash loses: Envoy's default is 1 s
        yield "log.flush_interval", "must be between 0 (each line at once) and 1 second"
    if s.session.max_per_user < 0:
        yield "session.max_per_user", ("must be 0 (no limit) or the number of sessions one "
                                       "user may hold at once")
    if s.session.store == "memory" and s.server.workers != 1:
        yield "server.workers", ("must be 1 with session.store = memory (each worker process "
                                 "would have its own sessions); use redis")


def cookie(s: Settings) -> Problems:
    c = s.cookie
    if not c.secret_keys:
        yield ("cookie.secret_keys",
               "required: at least one key of >= 32 characters (oldest to newest)")
    for field, keys in (("secret_keys", c.secret_keys), ("verify_keys", c.verify_keys)):
        for i, k in enumerate(keys):
            if len(k.get()) < 32:
                yield f"cookie.{field}[{i}]", "too short: use at least 32 random characters"
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", c.name):
        yield "cookie.name", "may contain only letters, digits, '-' and '_'"
    if c.name.startswith("__Host-") and not c.secure:
        yield "cookie.secure", "must be true for a __Host- cookie name"
    if not c.secure and not is_loopback_host(urlsplit(s.server.public_url).hostname):
        yield "cookie.secure", "may be false only when server.public_url is loopback"


def redis(s: Settings) -> Problems:
    r = s.redis
    if s.session.store == "redis":
        if urlsplit(r.url.get()).scheme not in ("redis", "rediss", "unix"):
            yield "redis.url", "must start with redis://, rediss:// or unix://"
        if r.cluster and r.sentinel:
            yield "redis.cluster", "cannot be combined with redis.sentinel"
        if r.sentinel and ("master" not in r.sentinel or "hosts" not in r.sentinel):
            yield "redis.sentinel", "needs 'master' (name) and 'hosts' (list of host:port)"
    if not r.key_prefix:
        yield "redis.key_prefix", "must not be empty"
    if not 1 <= r.max_connections <= 10_000:
        yield "redis.max_connections", "must be between 1 and 10000"
    if r.wait_replicas < 0:
        yield "redis.wait_replicas", "must not be negative"
    if r.wait_replicas and r.cluster:
        yield "redis.wait_replicas", "is not supported with redis.cluster"


def routes(s: Settings) -> Problems:
    seen: set[str] = set()
    for i, r in enumerate(s.routes):
        key = f"routes[{i}]"
        if (not r.prefix.startswith("/") or "//" in r.prefix or ".." in r.prefix
                or ";" in r.prefix):
            yield f"{key}.prefix", f"must be a clean absolute path; got {r.prefix!r}"
        if r.prefix.rstrip("/") == "/bff" or r.prefix.startswith("/bff/"):
            yield f"{key}.prefix", "must not shadow the gateway's own /bff/ endpoints"
        norm = r.prefix.rstrip("/") or "/"
        if norm in seen:
            yield f"{key}.prefix", f"duplicate prefix {r.prefix!r}"
        seen.add(norm)
        uu = urlsplit(r.upstream)
        if uu.scheme not in ("http", "https") or not uu.netloc or uu.query or uu.fragment:
            yield f"{key}.upstream", f"must be an http(s) URL without query; got {r.upstream!r}"
        yield from _route_timeouts(key, r)
        yield from _route_token(key, r, s.oidc.client_auth)
        yield from _methods(f"{key}.methods", r.methods)


def _route_timeouts(key: str, r: RouteSettings) -> Problems:
    """Seconds, each named: only idle_timeout may be 0 (no limit between body bytes, for
    a quiet event stream); a connect or response timeout of 0 would wait forever."""
    for name in ("timeout", "connect_timeout", "response_timeout", "idle_timeout"):
        value = getattr(r, name)
        if value is None:
            continue
        if not math.isfinite(value):  # TOML's inf and nan
            yield f"{key}.{name}", "must be a finite number of seconds" + (
                " (0 for no idle limit)" if name == "idle_timeout" else "")
        elif name == "idle_timeout" and value < 0:
            yield f"{key}.{name}", "must not be negative (seconds; 0 for no idle limit)"
        elif name != "idle_timeout" and value <= 0:
            yield f"{key}.{name}", "must be positive"


# The token modes that ask the IdP for a token of their own (scope, audience, resource).
_REQUESTING_MODES = frozenset({"client", "user_or_client", "exchange"})
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 3.3 scope-token


def _route_token(key: str, r: RouteSettings, client_auth: str) -> Problems:
    """A route's token mode and what it asks for: a request setting on a mode that sends
    none would be silently ignored, so it is refused."""
    if r.token in ("client", "user_or_client") and client_auth == "none":
        yield f"{key}.token", (f"{r.token!r} needs a confidential client (client credentials "
                               "are the client's own): oidc.client_auth = none has none")
    if r.token not in _REQUESTING_MODES:
        for name in ("scope", "audience", "resource"):
            if getattr(r, name):
                yield f"{key}.{name}", (f"only used with token = client, user_or_client or "
                                        f"exchange (this route has token = {r.token})")
    for scope in r.scope:
        if not _SCOPE_TOKEN.fullmatch(scope):
            yield f"{key}.scope", f"not a scope token (RFC 6749 3.3): {scope!r}"
    if r.resource:
        ru = urlsplit(r.resource)
        if not ru.scheme or not ru.netloc or ru.fragment:
            yield f"{key}.resource", ("must be an absolute URI without a fragment "
                                      f"(RFC 8707); got {r.resource!r}")
    if r.audience and not r.audience.isprintable():
        yield f"{key}.audience", "must be printable text"
    if r.token == "exchange" and not (r.audience or r.resource):
        # RFC 8693 lets an IdP pick a default target; a token for an unstated audience
        # would reach the upstream by guess, so the route must name one.
        yield f"{key}.audience", ("token = exchange needs audience or resource (what the "
                                  "user's token is exchanged for)")


def _listen(key: str, value: str) -> Problems:
    if value.startswith("unix:"):
        return
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        yield key, f"expected host:port or unix:/path; got {value!r}"


def _methods(key: str, methods: tuple[str, ...]) -> Problems:
    """A route's method list: known methods only, upper-case (methods are case-sensitive),
    never TRACE/TRACK/CONNECT (refused at the edge for every path anyway)."""
    if not methods:
        yield key, f"must list at least one method (default: {', '.join(DEFAULT_METHODS)})"
    forbidden = sorted({m for m in methods if m.upper() in FORBIDDEN_METHODS})
    if forbidden:
        yield key, f"must not contain {', '.join(forbidden)} (never proxied)"
    unknown = sorted({m for m in methods
                      if m not in KNOWN_METHODS and m.upper() not in FORBIDDEN_METHODS})
    if unknown:
        yield key, (f"unknown method(s) {', '.join(unknown)} (methods are upper-case; "
                    f"known: {', '.join(sorted(KNOWN_METHODS))})")


OTEL_MISSING = ("true needs the otel extra: pip install 'bffgate[otel]' "
                "(opentelemetry-sdk and its OTLP/HTTP exporter are not installed)")


def otel_installed() -> bool:
    """Whether the otel extra is importable (asked only when tracing is on: finding it
    imports the ``opentelemetry`` namespace package)."""
    return all(importlib.util.find_spec(m) is not None for m in (
        "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"))


def telemetry(s: Settings) -> Problems:
    if s.telemetry.tracing and not otel_installed():
        yield "telemetry.tracing", OTEL_MISSING


SECTION_RULES: tuple[Callable[[Settings], Problems], ...] = (
    server, oidc, session, cookie, redis, routes, telemetry)
