"""Doctor's redirect-URI check: does the IdP accept ``redirect_uri`` for this client? Asked
by a pushed authorization request, or by the authorization request itself."""

from __future__ import annotations

import dataclasses
import html
import re
import secrets
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from bffgate.app import Gateway
from bffgate.config import Settings
from bffgate.doctor.report import Report, cause
from bffgate.oidc.client import OidcClient
from bffgate.oidc.discovery import ProviderMetadata
from bffgate.oidc.errors import OidcError, TokenRejected

_PAGE_TEXT = 160  # characters of an IdP error page quoted in a failure line


async def check_redirect_uri(settings: Settings, gw: Gateway, meta: ProviderMetadata,
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
        report.fail(what, meta.par_endpoint or meta.authorization_endpoint, cause(exc),
                    "is the IdP reachable from here?")
        return
    if par:
        report.ok(what, "accepted by the IdP (pushed authorization request)")
        return
    try:
        resp = await gw.idp_http.get(url, follow_redirects=False)
    except httpx.HTTPError as exc:
        report.fail(what, meta.authorization_endpoint, cause(exc),
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
        page = page_text(resp)
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


def page_text(resp: httpx.Response) -> str:
    """The start of an error page's text, tags and control characters removed."""
    body = resp.text[:20_000]
    body = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", body)
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text[:_PAGE_TEXT] + ("…" if len(text) > _PAGE_TEXT else "")


