"""Property tests: /bff/callback parameters, through the whole gateway in-process (memory
store, the development IdP in-process). Whatever the query and cookies, and whatever is
done to a real login's state: a 400 problem+json, no session cookie, never a 5xx."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.demo.devidp import create_dev_idp

pytestmark = pytest.mark.fuzz

ISSUER, PUBLIC, CLIENT, SECRET = "https://idp.test", "https://app.test", "bff", "s" * 32
COOKIE = "__Host-bffgate"


@dataclass
class App:
    loop: asyncio.AbstractEventLoop
    gw: Gateway
    browser: httpx.AsyncClient

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)


@pytest.fixture(scope="module")
def app() -> Iterator[App]:
    loop = asyncio.new_event_loop()
    idp = create_dev_idp(ISSUER, CLIENT, SECRET, redirect_uris=[PUBLIC + "/bff/callback"],
                         post_logout_redirect_uris=[PUBLIC + "/"])
    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": PUBLIC},
        "oidc": {"issuer": ISSUER, "client_id": CLIENT, "client_secret": SECRET,
                 "id_token_algs": ["ES256"]},
        "session": {"store": "memory"}, "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "routes": [{"prefix": "/api", "upstream": "http://upstream.invalid", "token": "user"}],
    })
    gw = Gateway(settings, idp_transport=httpx.ASGITransport(app=idp))
    loop.run_until_complete(gw.start())
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.public), base_url=PUBLIC)
    yield App(loop, gw, browser)
    loop.run_until_complete(browser.aclose())
    loop.run_until_complete(gw.stop())
    loop.close()


def _assert_refused(r: httpx.Response) -> None:
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    for value in r.headers.get_list("set-cookie"):
        # the login-binding cookie may be cleared; a session cookie is never set
        assert not value.startswith(COOKIE + "=") or "Max-Age=0" in value, value


NAMES = ["code", "state", "iss", "error", "error_description", "session_state", "id_token",
         "access_token", "token", "refresh_token", "returnUrl", "x"]
param_values = st.one_of(st.sampled_from(["", "x", ISSUER, ISSUER + "/", "https://evil.example",
                                          "access_denied", "<script>", "a" * 5000]),
                         st.text(max_size=30))
params = st.lists(st.tuples(st.sampled_from(NAMES), param_values), max_size=6)
cookie_headers = st.one_of(st.none(), st.text(st.characters(min_codepoint=0x20,
                                                            max_codepoint=0x7E), max_size=60),
                           st.just(f"{COOKIE}-login=abc; {COOKIE}-login=def"))


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)


@given(params, cookie_headers)
def test_any_callback_without_a_login_is_a_400_problem(app: App, pairs: list[tuple[str, str]],
                                                       cookie: str | None) -> None:
    headers = {"cookie": cookie} if cookie else {}
    r = app.run(app.browser.get("/bff/callback?" + _query(pairs), headers=headers))
    _assert_refused(r)


MUTATIONS = ["dup_state", "dup_code", "dup_iss", "iss_other", "iss_slash", "error", "no_code",
             "token_in_url", "no_binding", "other_binding", "dup_binding", "state_case",
             "junk_code"]


@given(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3, unique=True),
       param_values)
def test_a_real_login_state_with_any_tampering_is_refused(app: App, mutations: list[str],
                                                          junk: str) -> None:
    async def go() -> httpx.Response:
        start = await app.browser.get("/bff/login", params={"returnUrl": "/app"})
        assert start.status_code == 302
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        binding = app.browser.cookies.get(COOKIE + "-login")
        app.browser.cookies.clear()
        pairs = [("code", "junk-" + junk), ("state", state), ("iss", ISSUER)]
        cookie = f"{COOKIE}-login={binding}"
        for m in mutations:
            if m.startswith("dup_"):
                name = m[4:]
                if name == "binding":
                    cookie += f"; {COOKIE}-login={binding}"
                else:
                    pairs.append((name, dict(pairs).get(name, junk)))
            elif m == "iss_other":
                pairs = [(k, "https://evil.example" if k == "iss" else v) for k, v in pairs]
            elif m == "iss_slash":
                pairs = [(k, ISSUER + "/" if k == "iss" else v) for k, v in pairs]
            elif m == "error":
                pairs.append(("error", junk or "access_denied"))
            elif m == "no_code":
                pairs = [(k, v) for k, v in pairs if k != "code"]
            elif m == "token_in_url":
                pairs.append(("access_token", "eyJ" + junk))
            elif m == "no_binding":
                cookie = ""
            elif m == "other_binding":
                cookie = f"{COOKIE}-login={secrets.token_urlsafe(32)}"
            elif m == "state_case":
                pairs = [(k, v.swapcase() if k == "state" else v) for k, v in pairs]
        # "junk_code" needs nothing more: the code was never issued by the IdP.
        headers = {"cookie": cookie} if cookie else {}
        return await app.browser.get("/bff/callback?" + _query(pairs), headers=headers)

    _assert_refused(app.run(go()))
