"""``bffgate doctor``: live checks of what the configuration points at. Each failure line
says what failed, where (the URL or the config key), the cause, and what to try."""

from __future__ import annotations

import dataclasses
import email.utils
import html
import re
import secrets
import time
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bffgate.app import Gateway
from bffgate.config import Settings
from bffgate.errors import GatewayError
from bffgate.oidc.client import OidcClient
from bffgate.oidc.discovery import ProviderMetadata, fetch_json_response
from bffgate.oidc.errors import (
    OidcError,
    ProviderMisconfigured,
    ProviderUnavailable,
    TokenRejected,
)

MAX_SKEW = 30.0
BOGUS_CODE = "bffgate-doctor-made-up-code"  # never issued: a working client gets invalid_grant
_PAGE_TEXT = 160  # characters of an IdP error page quoted in a failure line
REDIS_FIX = ("is Redis running there? check redis.url (host, port, password, rediss:// for "
             "TLS) or BFFGATE_REDIS__URL")


class Report:
    """Prints one line per check and counts the failures."""

    def __init__(self) -> None:
        self.failures = 0

    def ok(self, what: str, detail: str = "") -> None:
        print(f"[ok] {what}{': ' + detail if detail else ''}", flush=True)

    def fail(self, what: str, where: str, cause: str, fix: str) -> None:
        self.failures += 1
        print(f"[FAIL] {what}: {where}: {cause}; {fix}", flush=True)

    def note(self, what: str, detail: str) -> None:
        print(f"[??] {what}: {detail}", flush=True)


def safe_url(url: str) -> str:
    """``url`` without its password (redis://:secret@host -> redis://:***@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _cause(exc: BaseException) -> str:
    """The cause in words, from the innermost exception a transport library raised: what
    went wrong, not the name of our wrapper."""
    chain: list[BaseException] = [exc]
    while len(chain) < 10:
        nxt = chain[-1].__cause__ or chain[-1].__context__
        if nxt is None:
            break
        chain.append(nxt)
    if any(isinstance(e, ConnectionRefusedError) or "Error 111 " in str(e)
           or "Connection refused" in str(e) for e in chain):
        return "connection refused (nothing listens there)"
    if any(isinstance(e, TimeoutError | httpx.TimeoutException) for e in chain):
        return "timed out"
    if any(isinstance(e, httpx.ConnectError) for e in chain):
        return f"cannot connect ({chain[-1]})"
    inner = chain[-1]
    text = " ".join(str(inner).split())
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def store_failure(settings: Settings, exc: GatewayError) -> str:
    """One line for an unreachable Redis: where, why, what to try (no password shown)."""
    return f"session store: {_redis_where(settings)}: {_cause(exc)}; {REDIS_FIX}"


def _redis_where(settings: Settings) -> str:
    return f"Redis {safe_url(settings.redis.url.get())} (redis.url)"


async def run_doctor(settings: Settings) -> int:
    report = Report()
    gw = Gateway(settings)
    try:
        await _check_store(settings, gw, report)
        meta = await _check_discovery(settings, gw, report)
        if meta is not None:
            credentials_ok = await _check_client(settings, gw, meta, report)
            await _check_redirect_uri(settings, gw, meta, report, use_par=credentials_ok)
            await _check_jwks(gw, meta, report)
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
        report.fail("session store", _redis_where(settings), _cause(exc), REDIS_FIX)
        return
    report.ok("session store (redis)", f"{safe_url(settings.redis.url.get())} answers PING")


async def _check_discovery(settings: Settings, gw: Gateway,
                           report: Report) -> ProviderMetadata | None:
    issuer = settings.oidc.issuer
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    what = "IdP discovery"
    try:
        doc, _ = await fetch_json_response(gw.idp_http, url)
    except ProviderUnavailable as exc:
        report.fail(what, f"{url} (oidc.issuer)", _cause(exc),
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


async def _check_client(settings: Settings, gw: Gateway, meta: ProviderMetadata,
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
        report.fail(what, where, _cause(exc), "is the token endpoint reachable from here?")
        return False
    report.fail(what, where, "the IdP issued tokens for a made-up code",
                "this IdP is not safe to use: it does not check authorization codes")
    return False


async def _check_redirect_uri(settings: Settings, gw: Gateway, meta: ProviderMetadata,
                              report: Report, *, use_par: bool) -> None:
    """Ask the IdP whether it accepts ``redirect_uri`` for this client: by a pushed
    authorization request when it offers PAR and the client authenticates, else by the
    authorization request itself (an IdP redirects to its login page for a registered
    redirect URI and shows an error page, without redirecting, for any other)."""
    redirect_uri, client_id = settings.redirect_uri, settings.oidc.client_id
    what = f"redirect URI {redirect_uri}"
    fix = (f"register exactly {redirect_uri} as a redirect URI of client {client_id!r} at "
           "the IdP, or fix server.public_url / oidc.redirect_path")
    par = bool(meta.par_endpoint) and (use_par or meta.require_par)
    client = OidcClient(dataclasses.replace(gw.oidc.rp, use_par=par), gw.idp_http,
                        gw.discovery, gw.clock)
    try:
        url = await client.authorization_url(
            state=secrets.token_urlsafe(16), nonce=secrets.token_urlsafe(16),
            code_challenge=secrets.token_urlsafe(32))
    except TokenRejected as exc:
        report.fail(what, f"{meta.par_endpoint} (pushed authorization request)",
                    f"the IdP refused it ({exc.error}"
                    f"{': ' + exc.description if exc.description else ''})",
                    fix if "redirect" in exc.error or exc.error == "invalid_request" else
                    "check oidc.scopes and oidc.extra_auth_params against the client at the IdP")
        return
    except OidcError as exc:
        report.fail(what, meta.par_endpoint or meta.authorization_endpoint, _cause(exc),
                    "is the IdP reachable from here?")
        return
    if par:
        report.ok(what, "accepted by the IdP (pushed authorization request)")
        return
    try:
        resp = await gw.idp_http.get(url, follow_redirects=False)
    except httpx.HTTPError as exc:
        report.fail(what, meta.authorization_endpoint, _cause(exc),
                    "is the authorization endpoint reachable from here?")
        return
    location = resp.headers.get("location", "")
    if resp.is_redirect and location.startswith(redirect_uri):
        error = parse_qs(urlsplit(location).query).get("error", [""])[0]
        if error:
            report.fail(what, meta.authorization_endpoint,
                        f"the IdP accepted the redirect URI but refused the request ({error})",
                        "check oidc.scopes, oidc.extra_auth_params and the client's grant "
                        "types at the IdP")
            return
    if resp.is_redirect:
        report.ok(what, "accepted by the IdP (its authorization endpoint went on to log in)")
    elif 400 <= resp.status_code < 500:
        page = _page_text(resp)
        report.fail(what, meta.authorization_endpoint,
                    f"the IdP refused the authorization request (HTTP {resp.status_code}"
                    f"{': ' + page if page else ''})", fix)
    elif await _refuses_other_redirect_uris(gw, url, redirect_uri, resp.status_code):
        report.ok(what, f"accepted by the IdP (HTTP {resp.status_code}, while a made-up "
                  "redirect URI is refused)")
    else:
        report.note(what, f"cannot tell: the authorization endpoint answered HTTP "
                    f"{resp.status_code} without a redirect; log in once through the gateway "
                    "to check")


async def _refuses_other_redirect_uris(gw: Gateway, url: str, redirect_uri: str,
                                       status: int) -> bool:
    """An IdP that shows its login page (200) instead of redirecting to it: ask again with a
    redirect URI no one registered; a 4xx for that one, and not for ours, tells them apart."""
    parts = urlsplit(url)
    query = [(k, v + "/bffgate-doctor-unregistered" if k == "redirect_uri" else v)
             for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    if not any(k == "redirect_uri" for k, _ in query) or redirect_uri.endswith("-unregistered"):
        return False
    try:
        probe = await gw.idp_http.get(urlunsplit(parts._replace(query=urlencode(query))),
                                      follow_redirects=False)
    except httpx.HTTPError:
        return False
    return 400 <= probe.status_code < 500 and not 400 <= status < 500


def _page_text(resp: httpx.Response) -> str:
    """The start of an error page's text, tags and control characters removed."""
    body = resp.text[:20_000]
    body = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", body)
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:_PAGE_TEXT] + ("…" if len(text) > _PAGE_TEXT else "")


async def _check_jwks(gw: Gateway, meta: ProviderMetadata, report: Report) -> None:
    try:
        jwks, resp = await fetch_json_response(gw.idp_http, meta.jwks_uri)
    except OidcError as exc:
        report.fail("JWKS", meta.jwks_uri, _cause(exc) if isinstance(exc, ProviderUnavailable)
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
