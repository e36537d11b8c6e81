"""The signed-in half of the probe, with a test account: the IdP's login form, the callback,
``GET /bff/user``, one proxied call and logout, in one cookie jar, each step timed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from bffgate.config import Settings
from bffgate.doctor.report import cause
from bffgate.probe.browser import Browser, forms
from bffgate.probe.result import Findings

MAX_STEPS = 12
CSRF = {"X-CSRF": "1"}
UNREACHABLE = 599  # _get's stand-in status for a transport failure


@dataclass(frozen=True)
class Account:
    user: str
    password: str


def _problem(resp: httpx.Response) -> str:
    """A gateway problem's title (problem+json carries no secret), else the status."""
    if resp.status_code == UNREACHABLE:
        return f"unreachable ({resp.text})"
    if resp.headers.get("content-type", "").startswith("application/problem+json"):
        try:
            doc = resp.json()
        except ValueError:
            doc = {}
        if isinstance(doc, dict) and isinstance(doc.get("title"), str):
            return f"HTTP {resp.status_code} {doc['title'][:120]}"
    return f"HTTP {resp.status_code}"


async def sign_in(browser: Browser, page_url: str, page: httpx.Response,
                  account: Account, settings: Settings, findings: Findings) -> str | None:
    """Check ``idp_login``: fill the IdP's login form, confirm a consent form if one comes,
    and stop at the redirect to the gateway's callback (returned, not requested)."""
    since = time.perf_counter()
    findings.secret(account.password)
    url, resp, signed = page_url, page, False
    data: dict[str, str] | None
    method, data = "GET", None  # the next request (set below before it is sent)
    for _ in range(MAX_STEPS):
        if resp.is_redirect:
            nxt = urljoin(url, resp.headers.get("location", ""))
            if nxt.startswith(settings.redirect_uri):
                query = parse_qs(urlsplit(nxt).query)
                findings.secret(*query.get("code", []), *query.get("state", []))
                if "error" in query:
                    findings.add("idp_login", False, "the IdP sent the browser back with "
                                 f"error {query['error'][0]}", since)
                    return None
                findings.add("idp_login", True, "signed in at the IdP's login form; it "
                             "redirected to the gateway's callback", since)
                return str(nxt)
            url, method, data = nxt, "GET", None
        elif resp.status_code == 200:
            found = forms(resp.text, url)
            login = next((f for f in found if f.password), None)
            if login is not None and signed:
                findings.add("idp_login", False, f"the IdP showed its login form again after "
                             f"the password for {account.user!r}: wrong --user or "
                             "--password-file?", since)
                return None
            form = login or (found[0] if len(found) == 1 else None)
            if form is None:
                findings.add("idp_login", False, f"no login form on the IdP's page "
                             f"{urlsplit(url).path}", since)
                return None
            if login is not None and login.password:
                form.fields[login.password] = account.password
                signed = True
            if form.username and not form.fields.get(form.username):
                form.fields[form.username] = account.user  # also a username-first page
            method = "POST" if form.method == "post" else "GET"
            url, data = form.action, form.fields
        else:
            findings.add("idp_login", False, f"the IdP answered HTTP {resp.status_code} at "
                         f"{urlsplit(url).path}", since)
            return None
        try:
            if method == "POST":
                resp = await browser.post(url, data=data or {})
            else:
                resp = await browser.get(url, params=data)
        except httpx.HTTPError as exc:
            findings.add("idp_login", False, f"{method} {urlsplit(url).path}: {cause(exc)}",
                         since)
            return None
    findings.add("idp_login", False, f"no redirect to the callback in {MAX_STEPS} steps", since)
    return None


async def signed_in_walk(browser: Browser, base_url: str, callback: str,
                         settings: Settings, findings: Findings, path: str | None) -> None:
    """``callback`` → ``user`` → ``proxied_call`` → ``logout``; each needs the one before."""
    base = base_url.rstrip("/")
    since = time.perf_counter()
    try:
        resp = await browser.get(callback)
    except httpx.HTTPError as exc:
        findings.add("callback", False, f"GET {settings.redirect_uri}: {cause(exc)}", since)
        return
    findings.secret(*browser.cookie_values())
    has_session = browser.has_cookie(settings.cookie.name)
    if not resp.is_redirect or not has_session:
        findings.add("callback", False, f"GET {settings.redirect_uri}: {_problem(resp)}"
                     f"{'' if has_session else ', no session cookie'}", since)
        return
    findings.add("callback", True, f"{resp.status_code} to "
                 f"{urlsplit(resp.headers.get('location', '')).path or '/'}, session cookie "
                 "set", since)

    since = time.perf_counter()
    resp = await _get(browser, base + "/bff/user")
    doc = _json(resp)
    logout_url = doc.get("logout_url") if resp.status_code == 200 else None
    if not isinstance(logout_url, str) or not doc.get("sub"):
        findings.add("user", False, f"GET /bff/user: {_problem(resp)}", since)
        return
    findings.secret(*parse_qs(urlsplit(logout_url).query).get("sid", []))
    findings.add("user", True, "200: signed in", since)

    since = time.perf_counter()
    target = path or (settings.routes[0].prefix if settings.routes else None)
    if target is None:
        findings.add("proxied_call", False, "no route in the config and no --path", since)
    else:
        resp = await _get(browser, base + target)
        ok = resp.status_code < 500 and resp.status_code not in (401, 403)
        findings.add("proxied_call", ok, f"GET {target}: {_problem(resp)}"
                     f"{'' if ok else ' (a gateway or upstream failure)'}", since)

    since = time.perf_counter()
    resp = await _get(browser, urljoin(base + "/", logout_url), csrf=False)
    after = await _get(browser, base + "/bff/user")
    ended = resp.is_redirect and after.status_code == 401
    findings.add("logout", ended, f"GET /bff/logout: {_problem(resp)}, then /bff/user: "
                 f"{_problem(after)}{'' if ended else ' (the session did not end)'}", since)


async def _get(browser: Browser, url: str, *, csrf: bool = True) -> httpx.Response:
    try:
        return await browser.get(url, headers=CSRF if csrf else None)
    except httpx.HTTPError as exc:
        return httpx.Response(UNREACHABLE, text=cause(exc))


def _json(resp: httpx.Response) -> dict[str, object]:
    try:
        doc = resp.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
