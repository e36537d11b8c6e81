"""The login redirect as a browser gets it: ``GET /bff/login`` at the gateway's public URL
must answer 302 to the IdP's authorization endpoint with the parameters the gateway sends
(S256 challenge, state, nonce, the registered redirect URI); compared with the gateway's own
answer (``--direct-url``) when given, so a proxy in front that drops or rewrites one is named;
then followed to the IdP, which must show its login page rather than an error."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from bffgate.config import Settings
from bffgate.doctor.redirect_uri import page_text
from bffgate.doctor.report import cause
from bffgate.oidc.discovery import ProviderMetadata
from bffgate.probe.browser import Browser
from bffgate.probe.result import Findings

_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # base64url of a SHA-256 (RFC 7636 4.2)
RANDOM = ("state", "nonce", "code_challenge", "request_uri")  # new in every redirect
MAX_IDP_STEPS = 10


def expected_params(settings: Settings) -> dict[str, str | None]:
    """What the gateway puts in every authorization request (None: a fresh random value)."""
    o = settings.oidc
    return {**dict(o.extra_auth_params), "response_type": "code", "client_id": o.client_id,
            "redirect_uri": settings.redirect_uri, "scope": " ".join(o.scopes),
            "state": None, "nonce": None, "code_challenge": None,
            "code_challenge_method": "S256"}


def _base(url: str) -> str:
    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}{p.path}"


def redirect_problems(location: str, settings: Settings,
                      meta: ProviderMetadata | None) -> list[str]:
    """What is wrong with a login redirect's Location (empty: nothing). Pure."""
    problems = []
    if meta is not None and _base(location) != _base(meta.authorization_endpoint):
        problems.append(f"it goes to {_base(location)}, not to the IdP's authorization "
                        f"endpoint {meta.authorization_endpoint}")
    params = parse_qs(urlsplit(location).query, keep_blank_values=True)
    twice = sorted(k for k, v in params.items() if len(v) > 1)
    if twice:
        problems.append(f"{', '.join(twice)} sent more than once")
    got = {k: v[0] for k, v in params.items()}
    if "request_uri" in got:  # PAR: the parameters went to the IdP over the back channel
        if got.get("client_id") != settings.oidc.client_id:
            problems.append(f"client_id is {got.get('client_id')!r}, the config says "
                            f"{settings.oidc.client_id!r}")
        return problems
    missing = [k for k in expected_params(settings) if not got.get(k)]
    if missing:
        problems.append(f"{', '.join(missing)} missing")
    for key, want in expected_params(settings).items():
        if want is not None and got.get(key) and got[key] != want:
            problems.append(f"{key} is {got[key]!r}, the gateway sends {want!r}")
    challenge = got.get("code_challenge")
    if challenge and not _CHALLENGE.match(challenge):
        problems.append("code_challenge is not an S256 challenge (43 base64url characters)")
    return problems


def dropped_or_changed(direct: str, public: str) -> list[str]:
    """How the Location a browser got differs from the gateway's own (random values aside)."""
    out = []
    if _base(direct) != _base(public):
        out.append(f"the target changed from {_base(direct)} to {_base(public)}")
    d = parse_qs(urlsplit(direct).query, keep_blank_values=True)
    p = parse_qs(urlsplit(public).query, keep_blank_values=True)
    dropped = sorted(set(d) - set(p))
    added = sorted(set(p) - set(d))
    changed = sorted(k for k in set(d) & set(p) if k not in RANDOM and d[k] != p[k])
    out += [f"{', '.join(ks)} {what}" for ks, what in
            ((dropped, "dropped"), (added, "added"), (changed, "changed")) if ks]
    return out


async def get_login_redirect(browser: Browser, base_url: str,
                             findings: Findings) -> tuple[str | None, str]:
    """``GET base_url/bff/login?returnUrl=/``: the Location (None on failure) and why not."""
    url = base_url.rstrip("/") + "/bff/login"
    try:
        resp = await browser.get(url, params={"returnUrl": "/"})
    except httpx.HTTPError as exc:
        return None, f"GET {url}: {cause(exc)}"
    location = resp.headers.get("location")
    if resp.status_code not in (302, 303) or not location:
        return None, f"GET {url} answered HTTP {resp.status_code}, not a redirect to the IdP"
    location = urljoin(url, location)
    query = parse_qs(urlsplit(location).query)
    findings.secret(*(v for k in RANDOM for v in query.get(k, [])))
    return location, ""


async def check_login_redirect(browser: Browser, base_url: str, settings: Settings,
                               meta: ProviderMetadata | None, findings: Findings,
                               direct_url: str | None) -> str | None:
    """Checks ``login_redirect`` (and ``proxy_passthrough`` with a direct URL); the Location
    the browser got, for the walk to the IdP."""
    since = time.perf_counter()
    location, why = await get_login_redirect(browser, base_url, findings)
    if location is None:
        findings.add("login_redirect", False, why, since)
        return None
    problems = redirect_problems(location, settings, meta)
    if problems:
        hint = ("" if direct_url else "; the gateway always sends these: a proxy in front of "
                f"{base_url} may strip them (compare with --direct-url)")
        findings.add("login_redirect", False,
                     f"the redirect from {base_url}/bff/login: {'; '.join(problems)}{hint}",
                     since)
    else:
        via = ("a pushed authorization request (request_uri)"
               if "request_uri=" in location else
               f"code_challenge (S256), state, nonce, redirect_uri {settings.redirect_uri}")
        findings.add("login_redirect", True,
                     f"302 to {_base(location)} with {via}", since)
    if direct_url and direct_url.rstrip("/") != base_url.rstrip("/"):
        await _compare_direct(direct_url, base_url, location, findings, browser.timeout)
    return location


async def _compare_direct(direct_url: str, base_url: str, public: str, findings: Findings,
                          timeout: float) -> None:
    since = time.perf_counter()
    async with Browser(timeout) as other:  # a browser of its own: its own login cookie
        direct, why = await get_login_redirect(other, direct_url, findings)
    if direct is None:
        findings.add("proxy_passthrough", False, f"the gateway itself (--direct-url): {why}",
                      since)
        return
    diff = dropped_or_changed(direct, public)
    if diff:
        findings.add("proxy_passthrough", False,
                     f"the login redirect at {base_url} differs from the gateway's own at "
                     f"{direct_url}: {'; '.join(diff)}: something in between (a proxy, "
                     "ingress or CDN rewriting Location) alters it; fix it there", since)
    else:
        findings.add("proxy_passthrough", True,
                     f"the redirect at {base_url} carries every parameter the gateway sent "
                     f"at {direct_url}", since)


async def follow_to_idp(browser: Browser, location: str, settings: Settings,
                        findings: Findings) -> tuple[str, httpx.Response] | None:
    """Check ``idp_authorize``: follow the redirect through the IdP's own redirects to its
    login page. Returns (page URL, page), or (callback URL, response) when the IdP sent the
    browser straight back without an error (a session it already had); None on failure."""
    since, url = time.perf_counter(), location
    idp = urlsplit(location).netloc
    for step in range(MAX_IDP_STEPS):
        try:
            resp = await browser.get(url)
        except httpx.HTTPError as exc:
            findings.add("idp_authorize", False, f"GET {_base(url)}: {cause(exc)}", since)
            return None
        where = f"the IdP ({urlsplit(url).scheme}://{idp})"
        if resp.is_redirect:
            nxt = urljoin(url, resp.headers.get("location", ""))
            if nxt.startswith(settings.redirect_uri):
                query = parse_qs(urlsplit(nxt).query)
                findings.secret(*query.get("code", []))
                if "error" in query:
                    said = query["error"][0] + "".join(
                        f": {d}" for d in query.get("error_description", [])[:1])
                    findings.add("idp_authorize", False,
                                 f"{where} refused the authorization request and sent the "
                                 f"browser back to the gateway: {said}", since)
                    return None
                findings.add("idp_authorize", True, f"{where} accepted the request and "
                             "signed in at once (an existing IdP session)", since)
                return nxt, resp
            url = nxt
            continue
        if resp.status_code == 200:
            findings.add("idp_authorize", True, f"{where} accepted the request and showed its "
                         f"login page (HTTP 200 after {step} redirect(s))", since)
            return url, resp
        # scrubbed before page_text shortens it: a cut-off state would escape the scrubber
        page = page_text(httpx.Response(resp.status_code, text=findings.scrub(resp.text)))
        findings.add("idp_authorize", False,
                     f"{where} refused the authorization request (HTTP {resp.status_code}"
                     f"{': ' + page if page else ''})", since)
        return None
    findings.add("idp_authorize", False, f"more than {MAX_IDP_STEPS} redirects at the IdP",
                 since)
    return None
