"""A scripted browser over httpx: a cookie jar that behaves like Chromium on localhost
(Secure cookies work on http://localhost), checks every Set-Cookie the gateway emits
against the cookie invariants, and records every response for the secret scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import httpx

RECORDED: list[tuple[str, int, list[tuple[str, str]], bytes]] = []


@dataclass
class CookieFacts:
    value: str
    attrs: dict[str, str] = field(default_factory=dict)


def check_cookie_invariants(raw: str) -> None:
    """C-8: __Host-, Secure, HttpOnly, Path=/, no Domain, SameSite set, <= 4096 bytes."""
    parts = [p.strip() for p in raw.split(";")]
    name = parts[0].split("=", 1)[0]
    flags = {p.split("=", 1)[0].lower(): (p.split("=", 1)[1] if "=" in p else "")
             for p in parts[1:]}
    assert name.startswith("__Host-"), raw
    assert "secure" in flags, raw
    assert "httponly" in flags, raw
    assert flags.get("path") == "/", raw
    assert "domain" not in flags, raw
    assert flags.get("samesite", "").lower() in ("strict", "lax"), raw
    assert len(raw.encode()) <= 4096, raw


class Browser:
    """Keeps cookies per host (not per port, like real browsers)."""

    def __init__(self, base_url: str, *, check_cookies: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies: dict[str, dict[str, str]] = {}
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=30, trust_env=False)
        self.check_cookies = check_cookies

    async def aclose(self) -> None:
        await self.http.aclose()

    def cookie_header(self, host: str) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.get(host, {}).items())

    def cookie(self, name: str, host: str = "localhost") -> str | None:
        return self.cookies.get(host, {}).get(name)

    def set_cookie(self, name: str, value: str, host: str = "localhost") -> None:
        self.cookies.setdefault(host, {})[name] = value

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.startswith("/"):
            url = self.base_url + url
        host = urlsplit(url).hostname or ""
        headers = dict(kwargs.pop("headers", {}) or {})
        jar = self.cookie_header(host)
        if jar and "cookie" not in {k.lower() for k in headers}:
            headers["cookie"] = jar
        resp = await self.http.request(method, url, headers=headers, **kwargs)
        await resp.aread()
        RECORDED.append((url, resp.status_code, list(resp.headers.multi_items()), resp.content))
        for raw in resp.headers.get_list("set-cookie"):
            if self.check_cookies and url.startswith(self.base_url):
                check_cookie_invariants(raw)
            sc: SimpleCookie = SimpleCookie()
            sc.load(raw)
            for name, morsel in sc.items():
                jar_ = self.cookies.setdefault(host, {})
                if morsel["max-age"] == "0" or morsel.value == "":
                    jar_.pop(name, None)
                else:
                    jar_[name] = morsel.value
        return resp

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF": "1", **(kwargs.pop("headers", {}) or {})}
        return await self.request(method, path, headers=headers, **kwargs)
