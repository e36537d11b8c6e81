"""The probe's browser: an httpx client with its own cookie jar (Secure cookies count on
http://localhost as in Chromium, so a gateway on a loopback port can be probed) and a small
HTML form reader for the IdP's login page."""

from __future__ import annotations

import http.cookiejar
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx

from bffgate import __version__

USER_AGENT = f"bffgate-probe/{__version__}"
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class _LoopbackIsSecure(http.cookiejar.DefaultCookiePolicy):
    """Browsers treat http://localhost as a secure context: send Secure cookies there too."""

    def return_ok_secure(self, cookie: http.cookiejar.Cookie,
                         request: urllib.request.Request) -> bool:
        host = (urllib.parse.urlsplit(request.get_full_url()).hostname or "").lower()
        return host in _LOOPBACK or super().return_ok_secure(cookie, request)


class Browser:
    """Requests with one cookie jar, no redirects followed, no proxy from the environment.

    The jar is applied here rather than given to httpx: httpx copies a client's jar into a
    default-policy one per request, which would drop Secure cookies on http://localhost."""

    def __init__(self, timeout: float) -> None:
        self.jar = http.cookiejar.CookieJar(policy=_LoopbackIsSecure())
        self._cookies = httpx.Cookies(self.jar)  # wraps the jar itself (policy kept)
        self.timeout = timeout
        self.http = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                      timeout=timeout, headers={"User-Agent": USER_AGENT})

    async def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                      data: dict[str, str] | None = None,
                      headers: dict[str, str] | None = None) -> httpx.Response:
        req = self.http.build_request(method, url, params=params, data=data, headers=headers)
        self._cookies.set_cookie_header(req)
        resp = await self.http.send(req)
        self._cookies.extract_cookies(resp)
        self.http.cookies.clear()  # httpx's own copy; ours is self.jar
        return resp

    async def get(self, url: str, *, params: dict[str, str] | None = None,
                  headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def post(self, url: str, *, data: dict[str, str]) -> httpx.Response:
        return await self.request("POST", url, data=data)

    def has_cookie(self, name: str) -> bool:
        return any(c.name == name for c in self.jar)

    def cookie_values(self) -> list[str]:
        """Every cookie value in the jar (for the scrubber)."""
        return [c.value for c in self.jar if c.value]

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    password: str | None = None  # the name of its password input
    username: str | None = None  # its first text/email input


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = Form(a.get("action", ""), (a.get("method") or "get").lower())
            self.forms.append(self._form)
            return
        form, name = self._form, a.get("name")
        if tag != "input" or form is None or not name:
            return
        kind = a.get("type", "text").lower()
        if kind == "password":
            form.password = form.password or name
        elif kind in ("text", "email") and form.username is None:
            form.username = name
        if kind in ("checkbox", "radio") and "checked" not in a:
            return
        if kind not in ("submit", "button", "image", "reset", "file"):
            form.fields[name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def forms(html: str, base_url: str) -> list[Form]:
    """The page's forms, actions made absolute."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    for form in parser.forms:
        form.action = urljoin(base_url, form.action or base_url)
    return parser.forms
