"""Doctor's run: the session store, IdP discovery, the client's credentials, the redirect
URI and the JWKS (with the clock skew), in that order."""

from __future__ import annotations

import email.utils
import secrets
import time

from bffgate.app import Gateway
from bffgate.config import Settings
from bffgate.doctor.redirect_uri import check_redirect_uri
from bffgate.doctor.report import REDIS_FIX, Report, cause, redis_where, safe_url
from bffgate.errors import GatewayError
from bffgate.oidc.discovery import ProviderMetadata, fetch_json_response
from bffgate.oidc.errors import (
    OidcError,
    ProviderMisconfigured,
    ProviderUnavailable,
    TokenRejected,
)

MAX_SKEW = 30.0
BOGUS_CODE = "bffgate-doctor-made-up-code"  # never issued: a working client gets invalid_grant


async def run_doctor(settings: Settings) -> int:
    report = Report()
    gw = Gateway(settings)
    try:
        await _check_store(settings, gw, report)
        meta = await check_discovery(settings, gw, report)
        if meta is not None:
            credentials_ok = await check_client(settings, gw, meta, report)
            await check_redirect_uri(settings, gw, meta, report, use_par=credentials_ok)
            await check_jwks(gw, meta, report)
    finally:
        await gw.stop()
    print("all checks passed" if report.failures == 0
          else f"{report.failures} check(s) failed", flush=True)
    return 0 if report.failures == 0 else 1


async def _check_store(settings: Settings, gw: Gateway, report: Report) -> None:
    if settings.session.store == "memory":
        report.ok("session store (memory)", "in this process only: development and tests")
        return
    try:
        await gw.store.ping()
    except GatewayError as exc:
        report.fail("session store", redis_where(settings), cause(exc), REDIS_FIX)
        return
    report.ok("session store (redis)", f"{safe_url(settings.redis.url.get())} answers PING")


async def check_discovery(settings: Settings, gw: Gateway,
                           report: Report) -> ProviderMetadata | None:
    issuer = settings.oidc.issuer
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    what = "IdP discovery"
    try:
        doc, _ = await fetch_json_response(gw.idp_http, url)
    except ProviderUnavailable as exc:
        report.fail(what, f"{url} (oidc.issuer)", cause(exc),
                    "is the IdP running and reachable from here? check oidc.issuer")
        return None
    except ProviderMisconfigured as exc:
        report.fail(what, f"{url} (oidc.issuer)", str(exc).removeprefix(f"GET {url}: "),
                    "no discovery document there: set oidc.issuer to the issuer URL the IdP "
                    "documents (the part before /.well-known/openid-configuration)")
        return None
    if doc.get("issuer") != issuer:
        report.fail(what, f"{url} (oidc.issuer)",
                    f"the IdP calls itself {doc.get('issuer')!r}, the config says {issuer!r}",
                    f"set oidc.issuer = {doc.get('issuer')!r} exactly (localhost and 127.0.0.1 "
                    "differ, and so does a trailing slash)")
        return None
    try:
        meta = ProviderMetadata.parse(doc, issuer)
    except ProviderMisconfigured as exc:
        report.fail(what, url, str(exc), "the gateway needs an OpenID provider with the "
                    "authorization code flow and PKCE S256: enable them at the IdP")
        return None
    report.ok(what, issuer)
    report.ok("PKCE S256 advertised")
    return meta


async def check_client(settings: Settings, gw: Gateway, meta: ProviderMetadata,
                        report: Report) -> bool:
    """Authenticate at the token endpoint with a made-up code: ``invalid_grant`` means the
    client got in (only the code was refused); ``invalid_client`` means it did not."""
    method, client_id = settings.oidc.client_auth, settings.oidc.client_id
    if method not in meta.auth_methods:
        report.fail(f"token endpoint auth method {method}", "oidc.client_auth",
                    f"the IdP supports {', '.join(meta.auth_methods)}",
                    "set oidc.client_auth to the method the client is registered with")
    what, where = "client credentials", f"{meta.token_endpoint} (client_id {client_id!r})"
    try:
        await gw.oidc.exchange_code(BOGUS_CODE, secrets.token_urlsafe(48))
    except TokenRejected as exc:
        said = exc.error + (f": {exc.description}" if exc.description else "")
        if exc.error == "invalid_grant":
            report.ok(what, f"the token endpoint authenticated client {client_id!r} "
                      f"({method}; a made-up code got invalid_grant, as it should)")
            return True
        if exc.error in ("invalid_client", "unauthorized", "http_401"):
            secret = ("oidc.private_key" if method == "private_key_jwt"
                      else "oidc.client_secret")
            report.fail(what, where, f"the IdP refused the client ({said})",
                        f"check oidc.client_id, {secret} and oidc.client_auth = {method} "
                        "against the client's registration at the IdP")
        elif exc.error == "unauthorized_client":
            report.fail(what, where, f"the client may not use this grant ({said})",
                        "allow the authorization_code and refresh_token grants for the "
                        "client at the IdP")
        else:
            report.fail(what, where, f"unexpected answer to a made-up code ({said})",
                        "expected invalid_grant; check the client's registration at the IdP")
        return False
    except OidcError as exc:
        report.fail(what, where, cause(exc), "is the token endpoint reachable from here?")
        return False
    report.fail(what, where, "the IdP issued tokens for a made-up code",
                "this IdP is not safe to use: it does not check authorization codes")
    return False


async def check_jwks(gw: Gateway, meta: ProviderMetadata, report: Report) -> None:
    try:
        jwks, resp = await fetch_json_response(gw.idp_http, meta.jwks_uri)
    except OidcError as exc:
        report.fail("JWKS", meta.jwks_uri, cause(exc) if isinstance(exc, ProviderUnavailable)
                    else str(exc), "the IdP's jwks_uri must serve its signing keys")
        return
    n = len(jwks.get("keys", []))
    if n:
        report.ok("JWKS", f"{n} key(s)")
    else:
        report.fail("JWKS", meta.jwks_uri, "no keys", "the IdP must publish its ID-token "
                    "signing keys there")
    date = resp.headers.get("date")
    if not date:
        return
    try:
        skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time())
    except (TypeError, ValueError):
        return
    if skew <= MAX_SKEW:
        report.ok("clock skew vs IdP", f"{skew:.1f}s")
    else:
        report.fail("clock skew vs IdP", f"Date header of {meta.jwks_uri}",
                    f"{skew:.0f}s apart (more than {MAX_SKEW:.0f}s)",
                    "sync this machine's clock (NTP); ID tokens look expired or not yet "
                    "valid beyond oidc.clock_skew")
