"""Cross-field configuration rules: refuse every setting that would silently weaken the
gateway, each message naming its key (no ``assert``: explicit, always-on checks)."""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bffgate.config_values import Collector
from bffgate.oidc.client_key import ClientKeyError, load_client_key
from bffgate.proxy.routes import DEFAULT_METHODS, FORBIDDEN_METHODS, KNOWN_METHODS

if TYPE_CHECKING:
    from bffgate.config import Settings


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_listen(key: str, value: str, errs: Collector) -> None:
    if value.startswith("unix:"):
        return
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        errs.add(key, f"expected host:port or unix:/path; got {value!r}")


def _check_methods(key: str, methods: tuple[str, ...], errs: Collector) -> None:
    """A route's method list: known methods only, upper-case (methods are case-sensitive),
    never TRACE/TRACK/CONNECT (refused at the edge for every path anyway)."""
    if not methods:
        errs.add(key, f"must list at least one method (default: {', '.join(DEFAULT_METHODS)})")
    forbidden = sorted({m for m in methods if m.upper() in FORBIDDEN_METHODS})
    if forbidden:
        errs.add(key, f"must not contain {', '.join(forbidden)} (never proxied)")
    unknown = sorted({m for m in methods
                      if m not in KNOWN_METHODS and m.upper() not in FORBIDDEN_METHODS})
    if unknown:
        errs.add(key, f"unknown method(s) {', '.join(unknown)} (methods are upper-case; "
                      f"known: {', '.join(sorted(KNOWN_METHODS))})")


def validate(s: Settings, errs: Collector) -> None:
    """Cross-field rules; refuses configurations that silently weaken security."""
    # server
    pu = urlsplit(s.server.public_url)
    loopback_public = is_loopback_host(pu.hostname)
    if not s.server.public_url:
        errs.add("server.public_url", "required (the origin the browser sees, e.g. https://app.example.com)")
    elif pu.scheme not in ("https", "http") or not pu.netloc:
        errs.add("server.public_url", f"must be an absolute http(s) URL; got {s.server.public_url!r}")
    elif pu.scheme == "http" and not loopback_public:
        errs.add("server.public_url", "must use https unless the host is loopback (localhost, 127.0.0.1)")
    elif pu.path not in ("", "/") or pu.query or pu.fragment:
        errs.add("server.public_url", "must be an origin only (no path, query or fragment)")
    _check_listen("server.listen", s.server.listen, errs)
    if s.server.admin_listen:
        _check_listen("server.admin_listen", s.server.admin_listen, errs)
        admin_host = s.server.admin_listen.rpartition(":")[0]
        if (not is_loopback_host(admin_host) and not s.server.admin_listen.startswith("unix:")
                and len(s.server.admin_token.get()) < 16):
            errs.add("server.admin_token", "required (>= 16 characters) when admin_listen is not loopback")
    for cidr in s.server.trusted_proxies:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            errs.add("server.trusted_proxies", f"not an IP network: {cidr!r}")
    if s.server.max_body_size <= 0:
        errs.add("server.max_body_size", "must be positive")

    # oidc
    iu = urlsplit(s.oidc.issuer)
    if not s.oidc.issuer:
        errs.add("oidc.issuer", "required (the IdP's issuer URL)")
    elif iu.scheme not in ("https", "http") or not iu.netloc:
        errs.add("oidc.issuer", f"must be an absolute URL; got {s.oidc.issuer!r}")
    elif iu.scheme == "http" and not is_loopback_host(iu.hostname):
        errs.add("oidc.issuer", "must use https unless the host is loopback")
    if not s.oidc.client_id:
        errs.add("oidc.client_id", "required")
    if s.oidc.client_auth in ("client_secret_basic", "client_secret_post"):
        if not s.oidc.client_secret:
            errs.add("oidc.client_secret", f"required for client_auth = {s.oidc.client_auth}")
    elif s.oidc.client_auth == "private_key_jwt":
        if not s.oidc.private_key:
            errs.add("oidc.private_key", "required for client_auth = private_key_jwt (PEM or JWK)")
        else:
            try:  # the same loading the client does at startup: no surprise at token time
                load_client_key(s.oidc.private_key.get())
            except ClientKeyError as exc:
                errs.add("oidc.private_key", str(exc))
    if "openid" not in s.oidc.scopes:
        errs.add("oidc.scopes", "must include 'openid'")
    if not s.oidc.redirect_path.startswith("/") or s.oidc.redirect_path.startswith("//"):
        errs.add("oidc.redirect_path", "must be a local path starting with a single '/'")
    plr = s.oidc.post_logout_redirect
    if not (plr.startswith("/") and not plr.startswith("//")) and urlsplit(plr).scheme != "https":
        errs.add("oidc.post_logout_redirect", "must be a local path or an https URL")
    bad_algs = [a for a in s.oidc.id_token_algs if a.lower() == "none" or a.startswith("HS")]
    if bad_algs:
        errs.add("oidc.id_token_algs", f"must not contain 'none' or HMAC algorithms; got {bad_algs}")
    reserved = {"response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
                "code_challenge", "code_challenge_method", "request_uri"}
    clash = sorted(reserved & set(s.oidc.extra_auth_params))
    if clash:
        errs.add("oidc.extra_auth_params", f"must not override protocol parameters: {clash}")
    if s.oidc.clock_skew < 0 or s.oidc.clock_skew > 300:
        errs.add("oidc.clock_skew", "must be between 0 and 300 seconds")

    # session
    if s.session.idle_timeout <= 0:
        errs.add("session.idle_timeout", "must be positive")
    if s.session.absolute_timeout < s.session.idle_timeout:
        errs.add("session.absolute_timeout", "must be >= session.idle_timeout")
    if s.session.refresh_ahead < 0:
        errs.add("session.refresh_ahead", "must not be negative")
    if not 30 <= s.session.login_timeout <= 3600:
        errs.add("session.login_timeout", "must be between 30 seconds and 1 hour")

    # cookie
    if not s.cookie.secret_keys:
        errs.add("cookie.secret_keys", "required: at least one key of >= 32 characters (oldest to newest)")
    for field, keys in (("secret_keys", s.cookie.secret_keys),
                        ("verify_keys", s.cookie.verify_keys)):
        for i, k in enumerate(keys):
            if len(k.get()) < 32:
                errs.add(f"cookie.{field}[{i}]", "too short: use at least 32 random characters")
    if not re.fullmatch(r"[A-Za-z0-9_\-]+", s.cookie.name):
        errs.add("cookie.name", "may contain only letters, digits, '-' and '_'")
    if s.cookie.name.startswith("__Host-") and not s.cookie.secure:
        errs.add("cookie.secure", "must be true for a __Host- cookie name")
    if not s.cookie.secure and not loopback_public:
        errs.add("cookie.secure", "may be false only when server.public_url is loopback")

    # redis
    if s.session.store == "redis":
        url = s.redis.url.get()
        scheme = urlsplit(url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            errs.add("redis.url", "must start with redis://, rediss:// or unix://")
        if s.redis.cluster and s.redis.sentinel:
            errs.add("redis.cluster", "cannot be combined with redis.sentinel")
        if s.redis.sentinel and ("master" not in s.redis.sentinel
                                 or "hosts" not in s.redis.sentinel):
            errs.add("redis.sentinel", "needs 'master' (name) and 'hosts' (list of host:port)")
    if not s.redis.key_prefix:
        errs.add("redis.key_prefix", "must not be empty")
    if not 1 <= s.redis.max_connections <= 10_000:
        errs.add("redis.max_connections", "must be between 1 and 10000")
    if s.redis.wait_replicas < 0:
        errs.add("redis.wait_replicas", "must not be negative")
    if s.redis.wait_replicas and s.redis.cluster:
        errs.add("redis.wait_replicas", "is not supported with redis.cluster")

    # routes
    seen: set[str] = set()
    for i, r in enumerate(s.routes):
        key = f"routes[{i}]"
        if (not r.prefix.startswith("/") or "//" in r.prefix or ".." in r.prefix
                or ";" in r.prefix):
            errs.add(f"{key}.prefix", f"must be a clean absolute path; got {r.prefix!r}")
        if r.prefix.rstrip("/") == "/bff" or r.prefix.startswith("/bff/"):
            errs.add(f"{key}.prefix", "must not shadow the gateway's own /bff/ endpoints")
        norm = r.prefix.rstrip("/") or "/"
        if norm in seen:
            errs.add(f"{key}.prefix", f"duplicate prefix {r.prefix!r}")
        seen.add(norm)
        uu = urlsplit(r.upstream)
        if uu.scheme not in ("http", "https") or not uu.netloc or uu.query or uu.fragment:
            errs.add(f"{key}.upstream", f"must be an http(s) URL without query; got {r.upstream!r}")
        if r.timeout <= 0:
            errs.add(f"{key}.timeout", "must be positive")
        if r.token == "client":
            errs.add(f"{key}.token", "'client' (client-credentials tokens) is not supported yet")
        if r.websocket:
            errs.add(f"{key}.websocket", "websocket proxying is not supported yet")
        _check_methods(f"{key}.methods", r.methods, errs)
